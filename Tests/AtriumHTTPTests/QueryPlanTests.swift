import AtriumCore
import AtriumWire
import Foundation
import HTTPTypes
import HummingbirdTesting
import PostgresPool
import Testing

/// Filters on indexed fields and on system fields must be answered from an index, not by
/// reading the whole collection: checked with EXPLAIN over 120,000 records.
@Suite struct QueryPlanTests {
    static let size = 120_000

    @Test func indexedAndSystemFieldFiltersUseAnIndexAt120kRecords() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            let neighbour = try await client.signUp("neighbour@example.com", tenant: "Neighbour")
            let definition: [String: Any] = [
                "name": "big",
                "fields": [
                    "n": ["type": "integer", "indexed": true],
                    "label": ["type": "string", "indexed": true],
                    "tags": ["type": "array", "indexed": true],
                    "at": ["type": "datetime", "indexed": true],
                    "plain": ["type": "string"],
                ],
            ]
            for signedIn in [owner, neighbour] {
                #expect(try await client.call(.post, "/v1/collections", token: signedIn.accessToken, json: definition).status == .created)
            }
            try await Self.seed(app, tenant: owner.tenantID, user: owner.userID, count: Self.size)
            try await Self.seed(app, tenant: neighbour.tenantID, user: neighbour.userID, count: Self.size / 4)

            let principal = try await app.services.auth.authenticate(bearer: owner.accessToken)
            let some = try await app.database.withSuperuser { admin in
                try await admin.query("SELECT record_id, created_at FROM atrium.records WHERE tenant_id = \(owner.tenantID)::uuid AND data->>'n' = '4242'")
            }
            let (someID, someCreated) = try some[0].decode((UUID, Date).self)
            let createdText = someCreated.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))

            let filters: [[(String, String)]] = [
                [("filter[n]", "4242")],
                [("filter[n][gte]", "119990")],
                [("filter[n][lt]", "10")],
                [("filter[n][in]", "1,2,3,99999")],
                [("filter[label]", "label-7")],
                [("filter[label][prefix]", "label-99")],
                [("filter[label][gt]", "label-998")],
                [("filter[tags][contains]", "t42")],
                [("filter[at][gte]", "2030-01-01T03:00:00Z"), ("filter[at][lt]", "2030-01-01T03:01:00Z")],
                [("filter[n][gte]", "100"), ("filter[label]", "label-100")],
                [("filter[id]", someID.uuidString)],
                [("filter[id][in]", "\(someID.uuidString),\(UUID().uuidString)")],
                [("filter[createdAt][gte]", createdText)],
                [("filter[createdAt][lt]", "2000-01-01T00:00:00Z")],
                [("filter[updatedAt][gt]", createdText)],
                [("filter[createdBy]", owner.userID)],
                [("filter[updatedBy]", owner.userID)],
                [("filter[version][gt]", "1")],
                [("filter[n]", "4242"), ("sort", "-n")],
                [("filter[label]", "label-7"), ("sort", "createdAt")],
            ]
            for parameters in filters {
                let query = try RecordQuery(parameters: parameters.map { (name: $0.0, value: $0.1) })
                let sql = try await app.services.records.sql(for: query, collection: "big", principal: principal)
                let explained = PostgresQuery(unsafeSQL: "EXPLAIN (FORMAT JSON) " + sql.sql, bindings: sql.bindings)
                let plan = try await app.services.database.query(in: principal.tenant, explained)
                let text = try plan[0].decode(String.self, column: 0)
                let scans = Self.scans(in: text)
                #expect(!scans.isEmpty, "\(parameters): no scans in \(text)")
                for scan in scans where scan.relation == "records" || scan.relation == "record_values" {
                    #expect(scan.type != "Seq Scan", "\(parameters) reads all of \(scan.relation):\n\(text)")
                }
                #expect(scans.contains { $0.type.contains("Index") || $0.type.contains("Bitmap") }, "\(parameters) uses no index:\n\(text)")
                // And the answer is right.
                let page = try await app.services.records.list(principal, collection: "big", query: query)
                #expect(!page.records.isEmpty || parameters.contains { $0.1.hasPrefix("2000") || $0.0 == "filter[version][gt]" || $0.0 == "filter[updatedAt][gt]" }, "\(parameters)")
            }
            // Deep pages start where the cursor points, by an index range, not by skipping rows.
            var cursor: String?
            for _ in 0..<3 {
                let pageQuery = try RecordQuery(parameters: [(name: "limit", value: "100")] + (cursor.map { [(name: "cursor", value: $0)] } ?? []))
                cursor = try await app.services.records.list(principal, collection: "big", query: pageQuery).nextCursor
            }
            let deep = try RecordQuery(parameters: [(name: "cursor", value: try #require(cursor))])
            let deepSQL = try await app.services.records.sql(for: deep, collection: "big", principal: principal)
            let deepPlan = try await app.services.database.query(
                in: principal.tenant, PostgresQuery(unsafeSQL: "EXPLAIN (FORMAT JSON) " + deepSQL.sql, bindings: deepSQL.bindings)
            )
            let deepText = try deepPlan[0].decode(String.self, column: 0)
            #expect(deepText.contains("\"Index Name\": \"records_created_idx\""), "\(deepText)")
            #expect(deepText.contains("ROW(created_at, record_id) < ROW("), "the cursor bounds the index scan:\n\(deepText)")
            #expect(!Self.scans(in: deepText).contains { $0.type == "Seq Scan" })

            // Sorting by an indexed field walks its value index from the cursor: a page reads
            // about a page of rows, however deep, where sorting the field's expression on the
            // records read all 120,000 for every page.
            // A selective filter with the sort fetches its few matches instead (label-7 is one
            // record in 1,000): the page is planned for its values, not prepared.
            let sorts: [(parameters: [(String, String)], bound: Int)] = [
                ([("sort", "-n")], 84), ([("sort", "label"), ("filter[n][gte]", "100")], 84), ([("sort", "-at"), ("limit", "50")], 204),
                ([("sort", "-n"), ("filter[label]", "label-7")], 1_000),
            ]
            for (parameters, bound) in sorts {
                var cursor: String?
                for page in 0..<3 {
                    let query = try RecordQuery(parameters: (parameters + (cursor.map { [("cursor", $0)] } ?? [])).map { (name: $0.0, value: $0.1) })
                    let sql = try await app.services.records.sql(for: query, collection: "big", principal: principal)
                    #expect(!sql.isPrepared, "\(parameters) depends on its values, so it is planned for them")
                    var explained = PostgresQuery(unsafeSQL: "EXPLAIN (ANALYZE, FORMAT JSON) " + sql.sql, bindings: sql.bindings)
                    explained.isPrepared = sql.isPrepared
                    let analysed = try await app.services.database.query(in: principal.tenant, explained)
                    let text = try analysed[0].decode(String.self, column: 0)
                    let read = Self.scans(in: text).filter { $0.relation == "records" || $0.relation == "record_values" }.map(\.rows).reduce(0, +)
                    #expect(read <= bound, "\(parameters) page \(page + 1) read \(read) rows:\n\(text)")
                    #expect(Self.scans(in: text).contains { $0.relation == "record_values" && $0.type.contains("Index") }, "\(text)")
                    cursor = try await app.services.records.list(principal, collection: "big", query: query).nextCursor
                    #expect(cursor != nil || page == 2)
                }
            }

            // count=estimated reads its sample of 1,001 ids in the order of their random last
            // bytes, from records_sample_idx: about 1,001 rows, not all 120,000 sorted.
            for parameters in [[("count", "estimated")], [("count", "estimated"), ("filter[createdBy]", owner.userID)]] {
                let query = try RecordQuery(parameters: parameters.map { (name: $0.0, value: $0.1) })
                let count = try #require(try await app.services.records.statements(for: query, collection: "big", principal: principal).count)
                let analysed = try await app.services.database.query(
                    in: principal.tenant, PostgresQuery(unsafeSQL: "EXPLAIN (ANALYZE, FORMAT JSON) " + count.sql, bindings: count.bindings)
                )
                let text = try analysed[0].decode(String.self, column: 0)
                #expect(text.contains("\"Index Name\": \"records_sample_idx\""), "\(parameters):\n\(text)")
                let read = Self.scans(in: text).filter { $0.relation == "records" }.map(\.rows).reduce(0, +)
                #expect(read <= RecordStore.estimateSample + 1, "\(parameters) read \(read) rows:\n\(text)")
                let estimate = try #require(try await app.services.records.list(principal, collection: "big", query: query).count)
                #expect(abs(Double(estimate - Self.size)) <= 0.15 * Double(Self.size), "estimated \(estimate) of \(Self.size)")
            }

            // The control: a filter on a field that is not indexed cannot use the value index.
            let plain = try RecordQuery(parameters: [(name: "filter[plain]", value: "p-5"), (name: "sort", value: "createdAt")])
            let plainSQL = try await app.services.records.sql(for: plain, collection: "big", principal: principal)
            let plainPlan = try await app.services.database.query(
                in: principal.tenant, PostgresQuery(unsafeSQL: "EXPLAIN (FORMAT JSON) " + plainSQL.sql, bindings: plainSQL.bindings)
            )
            #expect(!plainSQL.isPrepared, "a filtered list is planned for its values")
            let plainScans = Self.scans(in: try plainPlan[0].decode(String.self, column: 0))
            #expect(!plainScans.contains { $0.relation == "record_values" })
        }
    }

    /// A request's statement runs in its connection's backend alone: even where the planner is
    /// told parallel workers cost nothing, a page of the service has no `Gather`, while the
    /// same statement with PostgreSQL's default of two workers gets one.
    @Test func requestsNeverRunParallelPlans() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            let definition: [String: Any] = ["name": "big", "fields": ["n": ["type": "integer", "indexed": true], "label": ["type": "string", "indexed": true]]]
            #expect(try await client.call(.post, "/v1/collections", token: owner.accessToken, json: definition).status == .created)
            try await Self.seed(app, tenant: owner.tenantID, user: owner.userID, count: 20_000)
            let principal = try await app.services.auth.authenticate(bearer: owner.accessToken)
            #expect(try await app.services.database.serverSetting("max_parallel_workers_per_gather") == "0")

            let free = PostgresQuery(unsafeSQL: """
                SELECT set_config('parallel_setup_cost', '0', true), set_config('parallel_tuple_cost', '0', true),
                       set_config('min_parallel_index_scan_size', '0', true), set_config('min_parallel_table_scan_size', '0', true)
                """)
            for parameters in [[("filter[label][prefix]", "label-1"), ("sort", "-n")], [("sort", "label")], [("filter[n][gte]", "10")]] {
                let query = try RecordQuery(parameters: parameters.map { (name: $0.0, value: $0.1) })
                let sql = try await app.services.records.sql(for: query, collection: "big", principal: principal)
                let explained = PostgresQuery(unsafeSQL: "EXPLAIN (FORMAT JSON) " + sql.sql, bindings: sql.bindings)
                let served = try await app.services.database.transaction(in: principal.tenant, [free, explained])
                let plan = try served[1][0].decode(String.self, column: 0)
                #expect(!plan.contains("Gather"), "\(parameters) runs in parallel:\n\(plan)")
                // The control: with parallel workers allowed, PostgreSQL would use them here.
                let allowed = PostgresQuery(unsafeSQL: "SELECT set_config('max_parallel_workers_per_gather', '2', true)")
                let control = try await app.database.withSuperuser { admin in
                    try await admin.execute(PipelineBatch(statements: [allowed, free, explained], transaction: true))
                }
                let defaultPlan = try control[2][0].decode(String.self, column: 0)
                #expect(defaultPlan.contains("Gather"), "\(parameters) would not go parallel anyway:\n\(defaultPlan)")
            }
        }
    }

    /// Seeds `count` records the way the service writes them: data plus typed index rows. The
    /// secondary indexes are dropped for the load and built again after it (a sorted build is
    /// several times faster than maintaining them row by row); the test database is its own.
    /// The load is not bounded by the service's 30 s statement timeout: alongside the rest of
    /// the suite on a busy machine one of its statements once took longer than that.
    static func seed(_ app: TestApp, tenant: String, user: String, count: Int) async throws {
        let statements: [PostgresQuery] = [
                "SET LOCAL statement_timeout = '10min'",
                "SET LOCAL maintenance_work_mem = '256MB'",
                """
                CREATE TEMP TABLE seed_indexes AS
                SELECT i.indexname, i.indexdef FROM pg_indexes i
                WHERE i.schemaname = 'atrium' AND i.tablename IN ('records', 'record_values')
                  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = format('atrium.%I', i.indexname)::regclass)
                """,
                "DO $$ DECLARE i record; BEGIN FOR i IN SELECT * FROM seed_indexes LOOP EXECUTE format('DROP INDEX atrium.%I', i.indexname); END LOOP; END $$",
                """
                CREATE TEMP TABLE seed AS
                SELECT gen_random_uuid() AS record_id, i,
                       jsonb_build_object('n', i, 'label', 'label-' || (i % 1000), 'tags', jsonb_build_array('t' || (i % 100), 'all'),
                                          'at', to_char(timestamptz '2030-01-01 00:00:00+00' + i * interval '1 second', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                                          'plain', 'p-' || (i % 10)) AS data
                FROM generate_series(1, \(count)) AS i
                """,
                """
                INSERT INTO atrium.records (tenant_id, collection_id, record_id, data, created_at, updated_at, created_by, created_by_kind, updated_by, updated_by_kind)
                SELECT c.tenant_id, c.collection_id, s.record_id, s.data,
                       now() - (\(count) - s.i) * interval '1 millisecond', now() - (\(count) - s.i) * interval '1 millisecond',
                       \(user)::uuid, 'user', \(user)::uuid, 'user'
                FROM seed s, atrium.collections c WHERE c.tenant_id = \(tenant)::uuid AND c.name = 'big'
                """,
                """
                INSERT INTO atrium.record_values (tenant_id, collection_id, record_id, field, position, text_value, num_value, time_value)
                SELECT c.tenant_id, c.collection_id, s.record_id, v.field, v.position, v.text_value, v.num_value, v.time_value
                FROM seed s
                CROSS JOIN atrium.collections c
                CROSS JOIN LATERAL (VALUES
                    ('n', 0, NULL, s.i::numeric, NULL::timestamptz),
                    ('label', 0, 'label-' || (s.i % 1000), NULL, NULL),
                    ('tags', 0, 't' || (s.i % 100), NULL, NULL),
                    ('tags', 1, 'all', NULL, NULL),
                    ('at', 0, NULL, NULL, timestamptz '2030-01-01 00:00:00+00' + s.i * interval '1 second')
                ) AS v(field, position, text_value, num_value, time_value)
                WHERE c.tenant_id = \(tenant)::uuid AND c.name = 'big'
                """,
                "DROP TABLE seed",
                "DO $$ DECLARE i record; BEGIN FOR i IN SELECT * FROM seed_indexes LOOP EXECUTE i.indexdef; END LOOP; END $$",
                "DROP TABLE seed_indexes",
                "ANALYZE atrium.records",
                "ANALYZE atrium.record_values",
        ]
        try await app.database.withSuperuser { admin in
            _ = try await admin.execute(PipelineBatch(statements: statements, transaction: true))
        }
    }

    struct Scan: Hashable {
        let type: String
        let relation: String
        /// Rows the scan returned over all its loops (EXPLAIN ANALYZE only; 0 otherwise).
        var rows = 0
    }

    /// Every scan node of an EXPLAIN (FORMAT JSON) plan.
    static func scans(in plan: String) -> [Scan] {
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(plan.utf8)) as? [[String: Any]] else { return [] }
        var scans: [Scan] = []
        func visit(_ node: [String: Any]) {
            if let type = node["Node Type"] as? String, type.contains("Scan") {
                let rows = (node["Actual Rows"] as? Int ?? 0) * (node["Actual Loops"] as? Int ?? 0)
                scans.append(Scan(type: type, relation: node["Relation Name"] as? String ?? "", rows: rows))
            }
            for child in node["Plans"] as? [[String: Any]] ?? [] { visit(child) }
        }
        for top in parsed { if let plan = top["Plan"] as? [String: Any] { visit(plan) } }
        return scans
    }
}
