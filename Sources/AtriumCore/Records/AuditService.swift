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
        let (statement, context) = try RecordStore.auditPage(query, tenant: principal.tenant.tenantID, cursors: self.cursors)
        let rows = try await self.database.reading { try await $0.query(in: principal.tenant, statement) }
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
