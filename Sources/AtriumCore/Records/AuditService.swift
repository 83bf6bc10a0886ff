import AtriumCrypto
import AtriumText
public import Foundation
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
}
