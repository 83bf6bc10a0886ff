import AtriumCrypto
import Foundation
import PostgresPool

/// One entry of the record audit log.
public struct AuditEntry: Sendable {
    public let id: UUID
    public let occurredAt: Date
    public let actor: Actor
    public let requestID: String?
    public let collection: String
    public let recordID: UUID
    public let operation: String
    public let changes: JSONValue

    public var json: JSONValue {
        .object(JSONObject([
            ("id", .string(self.id.lowercasedString)),
            ("occurredAt", .string(StoredRecord.timestamp(self.occurredAt))),
            ("actor", self.actor.json),
            ("requestId", self.requestID.map(JSONValue.string) ?? .null),
            ("collection", .string(self.collection)),
            ("recordId", .string(self.recordID.lowercasedString)),
            ("operation", .string(self.operation)),
            ("changes", self.changes),
        ]))
    }
}

/// Filters of `GET /v1/audit`.
public struct AuditQuery: Sendable {
    public var collection: String?
    public var recordID: UUID?
    public var actorID: UUID?
    public var operation: String?
    public var since: Date?
    public var until: Date?
    public var limit = 50
    public var cursor: String?

    public init() {}

    public static func parse(_ parameters: [(name: String, value: String)]) throws -> AuditQuery {
        var query = AuditQuery()
        var failures: [AtriumError.FieldFailure] = []
        for (name, value) in parameters {
            switch name {
            case "collection": query.collection = value
            case "recordId":
                if let id = UUID(uuidString: value) { query.recordID = id } else { failures.append(.init(field: name, reason: "must be an id")) }
            case "actor":
                if let id = UUID(uuidString: value) { query.actorID = id } else { failures.append(.init(field: name, reason: "must be an id")) }
            case "operation":
                if ["create", "update", "delete"].contains(value) { query.operation = value } else {
                    failures.append(.init(field: name, reason: "must be create, update or delete"))
                }
            case "since", "until":
                guard let date = RFC3339.dateTime(value) else {
                    failures.append(.init(field: name, reason: "must be an RFC 3339 date-time"))
                    continue
                }
                if name == "since" { query.since = date } else { query.until = date }
            case "limit":
                if let limit = Int(value), (1...200).contains(limit) { query.limit = limit } else {
                    failures.append(.init(field: name, reason: "must be a whole number from 1 to 200"))
                }
            case "cursor": query.cursor = value
            default: failures.append(.init(field: name, reason: "is not a known parameter"))
            }
        }
        guard failures.isEmpty else { throw AtriumError(.badRequest, "the query is invalid", fields: failures) }
        return query
    }
}

extension RecordService {
    /// The tenant's record audit log, newest first (admin or above).
    public func audit(_ principal: Principal, query: AuditQuery) async throws -> (entries: [AuditEntry], nextCursor: String?) {
        try principal.require(.admin)
        var builder = SQLBuilder()
        builder.sql = "a.tenant_id = \(builder.bind(principal.tenant.tenantID))"
        var signature: [String] = []
        if let value = query.collection { builder.sql += " AND a.collection_name = \(builder.bind(value))"; signature.append("c=\(value)") }
        if let value = query.recordID { builder.sql += " AND a.record_id = \(builder.bind(value))"; signature.append("r=\(value)") }
        if let value = query.actorID { builder.sql += " AND a.actor_id = \(builder.bind(value))"; signature.append("a=\(value)") }
        if let value = query.operation { builder.sql += " AND a.operation = \(builder.bind(value))"; signature.append("o=\(value)") }
        if let value = query.since { builder.sql += " AND a.occurred_at >= \(builder.bind(value))"; signature.append("s=\(value.timeIntervalSince1970)") }
        if let value = query.until { builder.sql += " AND a.occurred_at < \(builder.bind(value))"; signature.append("u=\(value.timeIntervalSince1970)") }
        let context = "audit|\(principal.tenant.tenantID.lowercasedString)|" + Hex.encode(SHA256.hash(signature.joined(separator: "\u{1}")))
        if let cursor = query.cursor {
            let position = try self.cursors.decode(cursor, context: context, keys: 1)
            let time = builder.bind(position.values[0] ?? "")
            builder.sql += " AND (a.occurred_at, a.audit_id) < (\(time)::timestamptz, \(builder.bind(position.id)))"
        }
        builder.sql = """
            SELECT a.audit_id, a.occurred_at, a.actor_id, a.actor_kind, a.request_id, a.collection_name, a.record_id, a.operation,
                   a.changes, a.occurred_at::text
            FROM atrium.record_audit a WHERE \(builder.sql)
            ORDER BY a.occurred_at DESC, a.audit_id DESC LIMIT \(builder.bind(query.limit + 1))
            """
        let rows = try await self.database.query(in: principal.tenant, builder.query)
        var entries: [AuditEntry] = []
        var lastTime: String?
        for row in rows.prefix(query.limit) {
            let (id, at, actor, kind, request, collection, record, operation, changes, atText) =
                try row.decode((UUID, Date, UUID, String, String?, String, UUID, String, String, String).self)
            entries.append(AuditEntry(
                id: id, occurredAt: at, actor: Actor(id: actor, kind: kind), requestID: request, collection: collection,
                recordID: record, operation: operation, changes: (try? JSONParser.parse(changes, limits: .stored)) ?? .null
            ))
            lastTime = atText
        }
        let next = rows.count > query.limit ? entries.last.map { self.cursors.encode(.init(values: [lastTime], id: $0.id), context: context) } : nil
        return (entries, next)
    }

    /// Streams the tenant's collections and records as NDJSON lines (admin or above), from one
    /// consistent snapshot, a page at a time: memory use does not grow with the data.
    public func export(_ principal: Principal, into sink: inout some ChunkWriter) async throws {
        try principal.require(.admin)
        let tenant = principal.tenant.tenantID
        try await self.database.withSnapshot(in: principal.tenant) { transaction in
            func write(_ chunk: String) async throws { try await sink.write(chunk) }
            let tenantRows = try await transaction.query("SELECT tenant_id, name, slug, created_at FROM atrium.tenants WHERE tenant_id = \(tenant)")
            guard let tenantRow = tenantRows.single else { throw AtriumError.notFound("tenant") }
            let (id, tenantName, slug, created) = try tenantRow.decode((UUID, String, String, Date).self)
            try await write(JSONSerializer.text(.object(JSONObject([
                ("type", .string("tenant")),
                ("tenant", .object(JSONObject([("id", .string(id.lowercasedString)), ("name", .string(tenantName)),
                                               ("slug", .string(slug)), ("createdAt", .string(StoredRecord.timestamp(created)))]))),
            ]))) + "\n")
            let collections = try await transaction.query("""
                SELECT collection_id, version, definition, created_at, updated_at FROM atrium.collections WHERE tenant_id = \(tenant) ORDER BY name
                """)
            for row in collections {
                let collection = try CollectionService.collection(row, tenant: tenant)
                try await write(JSONSerializer.text(.object(JSONObject([
                    ("type", .string("collection")), ("version", .number(JSONNumber(collection.version))), ("collection", collection.definition.json),
                ]))) + "\n")
                var last: UUID?
                while true {
                    let page = try await transaction.query("""
                        SELECT \(unescaped: StoredRecord.columns) FROM atrium.records
                        WHERE tenant_id = \(tenant) AND collection_id = \(collection.id) AND (\(last)::uuid IS NULL OR record_id > \(last))
                        ORDER BY record_id LIMIT 500
                        """)
                    guard !page.isEmpty else { break }
                    var chunk = ""
                    for row in page {
                        let record = try StoredRecord(row: row)
                        last = record.id
                        chunk += JSONSerializer.text(.object(JSONObject([
                            ("type", .string("record")), ("collection", .string(collection.name)), ("record", record.json()),
                        ]))) + "\n"
                    }
                    try await write(chunk)
                }
            }
        }
    }
}

/// Where an export goes, a chunk of NDJSON lines at a time.
public protocol ChunkWriter {
    mutating func write(_ chunk: String) async throws
}
