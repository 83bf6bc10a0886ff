import AtriumText
public import Foundation
import PostgresPool

/// One record write from the change log, as consumers see it.
public struct Change: Sendable {
    public enum Operation: String, Sendable {
        case create, update, delete
    }

    /// Order of the log; a consumer resumes after it.
    public let position: Int64
    public let tenant: UUID
    public let occurredAt: Date
    public let collectionID: UUID
    public let collection: String
    public let recordID: UUID
    public let operation: Operation
    /// The record's version after the write (for a delete, the version deleted).
    public let version: Int64
    public let actor: Actor
    /// Names of the fields the write changed.
    public let fields: [String]
    /// The record after the write; nil for a delete.
    public let record: RecordText?
    /// Who created the record: "own" rules are checked against it, deletes included.
    public let createdBy: Actor
    /// The collection's read rule at the write.
    let readRule: AccessRule

    /// The columns `init(row:from:)` reads, in order.
    static let columns = """
        position, tenant_id, occurred_at, collection_id, collection_name, record_id, operation, version, actor_id, actor_kind, \
        created_at, created_by, created_by_kind, updated_at, read_role, read_own, fields, data
        """

    /// From a row holding `columns` from column `first` on.
    init(row: PostgresRow, from first: Int) throws {
        func column<T: PostgresDecodable>(_ offset: Int, _ type: T.Type = T.self) throws -> T {
            try row.decode(T.self, column: first + offset)
        }
        guard let operation = Operation(rawValue: try column(6, String.self)) else {
            throw PostgresError(code: .decoding, message: "unknown change operation")
        }
        self.position = try column(0)
        self.tenant = try column(1)
        self.occurredAt = try column(2)
        self.collectionID = try column(3)
        self.collection = try column(4)
        self.recordID = try column(5)
        self.operation = operation
        self.version = try column(7)
        self.actor = Actor(id: try column(8), kind: try column(9))
        self.createdBy = Actor(id: try column(11), kind: try column(12))
        self.readRule = AccessRule(role: Role(rawValue: try column(14, String.self)) ?? .owner, own: try column(15))
        self.fields = try column(16)
        let createdAt: Date = try column(10)
        let updatedAt: Date = try column(13)
        let data = try row.withUnsafeBytes(column: first + 17) { bytes in bytes.map { Array($0) } }
        let (id, version, createdBy, actor) = (self.recordID, self.version, self.createdBy, self.actor)
        self.record = data.map {
            RecordText(id: id, version: version, createdAt: createdAt, createdBy: createdBy, updatedAt: updatedAt, updatedBy: actor, data: $0)
        }
    }

    /// Whether `principal` could read the record (GET it), by `rule` or, when the collection is
    /// gone, by the rule at the write. A delete is judged on the record as it was.
    public func isVisible(to principal: Principal, currentRule rule: AccessRule?) -> Bool {
        guard principal.tenant.tenantID == self.tenant else { return false }
        for rule in [self.readRule, rule].compactMap({ $0 }) {
            guard principal.role.allows(rule.role) else { return false }
            if rule.restrictsToOwn(principal), self.createdBy != Actor(principal) { return false }
        }
        return true
    }
}
