import AtriumCrypto
import AtriumText
import Foundation
import PostgresPool

extension RecordStore {
    /// A page of the audit log, newest first, with `query`'s filters (and the list's cursor
    /// context: a cursor only continues the list it was made for).
    static func auditPage(_ query: AuditQuery, tenant: UUID, cursors: CursorCodec) throws -> (PostgresQuery, context: String) {
        var builder = SQLBuilder()
        builder.sql = "a.tenant_id = \(builder.bind(tenant))"
        var signature: [String] = []
        if let value = query.collection { builder.sql += " AND a.collection_name = \(builder.bind(value))"; signature.append("c=\(value)") }
        if let value = query.recordID { builder.sql += " AND a.record_id = \(builder.bind(value))"; signature.append("r=\(value)") }
        if let value = query.actorID { builder.sql += " AND a.actor_id = \(builder.bind(value))"; signature.append("a=\(value)") }
        if let value = query.operation { builder.sql += " AND a.operation = \(builder.bind(value))"; signature.append("o=\(value)") }
        if let value = query.since { builder.sql += " AND a.occurred_at >= \(builder.bind(value))"; signature.append("s=\(value.timeIntervalSince1970)") }
        if let value = query.until { builder.sql += " AND a.occurred_at < \(builder.bind(value))"; signature.append("u=\(value.timeIntervalSince1970)") }
        let context = "audit|\(tenant.lowercasedString)|" + Hex.encode(SHA256.hash(signature.joined(separator: "\u{1}")))
        if let cursor = query.cursor {
            let position = try cursors.decode(cursor, context: context, keys: 1)
            let time = builder.bind(position.values[0] ?? "")
            builder.sql += " AND (a.occurred_at, a.audit_id) < (\(time)::timestamptz, \(builder.bind(position.id)))"
        }
        builder.sql = """
            SELECT a.audit_id, a.occurred_at, a.actor_id, a.actor_kind, a.request_id, a.collection_name, a.record_id, a.operation,
                   a.changes, a.occurred_at::text
            FROM atrium.record_audit a WHERE \(builder.sql)
            ORDER BY a.occurred_at DESC, a.audit_id DESC LIMIT \(builder.bind(query.limit + 1))
            """
        return (builder.query, context)
    }
}
