import AtriumCore
import AtriumCrypto
import AtriumHTTP
import AtriumText
import Foundation
import PostgresPool

/// Tenants with an `items` collection and records written straight into the tables (with
/// their index rows), as the service would store them.
enum RecordSeed {
    struct Owner {
        let tenant: UUID
        let user: UUID
        let token: String
    }

    /// Records of the seed: some to read, others (disjoint) to change.
    struct Sample {
        var read: [(tenant: UUID, record: UUID)]
        var written: [(tenant: UUID, record: UUID)]
        var averageBytes: Int
    }

    static let definition = """
        {"name": "items", "fields": {
            "title": {"type": "string", "required": true, "maxLength": 200},
            "status": {"type": "enum", "values": ["open", "doing", "done"], "default": "open", "indexed": true},
            "priority": {"type": "integer", "min": 1, "max": 5, "indexed": true},
            "body": {"type": "text"},
            "done": {"type": "boolean"}
        }}
        """

    /// Tenant number `number` with its owner signed in and the `items` collection made.
    static func owner(services: AtriumServices, number: Int) async throws -> Owner {
        let origin = RequestOrigin(clientAddress: "127.0.0.1", requestID: "bench-seed")
        let signIn = try await services.auth.signUp(
            email: "owner\(number)@bench.example", password: "benchmark password \(number)",
            tenantName: "Bench \(number)", tenantSlug: "bench-\(number)", origin: origin
        )
        let principal = try await services.auth.authenticate(bearer: signIn.tokens.accessToken)
        _ = try await services.collections.create(principal, body: try JSONParser.parse(Self.definition))
        return Owner(tenant: signIn.tenant.tenantID, user: signIn.user.id, token: signIn.tokens.accessToken)
    }

    /// `records` records of ~200 bytes in each owner's `items`, one record in 50 sampled to
    /// read and another one in 50 to change.
    static func insert(_ owners: [Owner], records: Int, on admin: PostgresConnection) async throws -> Sample {
        let ownerList = owners.map { "('\($0.tenant.lowercasedString)'::uuid, '\($0.user.lowercasedString)'::uuid)" }.joined(separator: ", ")
        try await admin.simpleQuery("""
            CREATE TEMP TABLE seed AS
            SELECT o.tenant_id, c.collection_id, o.user_id, i, gen_random_uuid() AS record_id,
                   jsonb_build_object(
                       'title', 'Item ' || i || ' of ' || c.collection_id,
                       'status', (ARRAY['open', 'doing', 'done'])[1 + i % 3],
                       'priority', 1 + i % 5,
                       'body', md5(i::text) || md5(o.tenant_id::text) || md5(i::text || 'x'),
                       'done', i % 2 = 0) AS data
            FROM (VALUES \(ownerList)) AS o(tenant_id, user_id)
            JOIN atrium.collections c ON c.tenant_id = o.tenant_id AND c.name = 'items'
            CROSS JOIN generate_series(1, \(records)) AS i;
            INSERT INTO atrium.records (tenant_id, collection_id, record_id, data, created_at, updated_at, created_by, created_by_kind, updated_by, updated_by_kind)
            SELECT tenant_id, collection_id, record_id, data, now() - (\(records) - i) * interval '1 ms', now() - (\(records) - i) * interval '1 ms',
                   user_id, 'user', user_id, 'user'
            FROM seed ORDER BY tenant_id, i;
            INSERT INTO atrium.record_values (tenant_id, collection_id, record_id, field, position, text_value, num_value)
            SELECT tenant_id, collection_id, record_id, 'status', 0, data->>'status', NULL FROM seed
            UNION ALL
            SELECT tenant_id, collection_id, record_id, 'priority', 0, NULL, (data->>'priority')::numeric FROM seed;
            """)
        let read = try await admin.query("SELECT tenant_id, record_id FROM seed WHERE i % 50 = 0")
        let written = try await admin.query("SELECT tenant_id, record_id FROM seed WHERE i % 50 = 25")
        let average = try await admin.query("SELECT avg(octet_length(data::text))::int8 FROM seed")
        try await admin.simpleQuery("DROP TABLE seed")
        return Sample(
            read: try read.map { try $0.decode((UUID, UUID).self) },
            written: try written.map { try $0.decode((UUID, UUID).self) },
            averageBytes: (try? average.first?.decode(Int.self, column: 0)) ?? 0
        )
    }
}
