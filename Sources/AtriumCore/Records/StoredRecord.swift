import AtriumText
public import Foundation

/// Who wrote: a user or an API key.
public struct Actor: Sendable, Hashable {
    public let id: UUID
    /// `user` or `apikey`.
    public let kind: String

    public init(id: UUID, kind: String) {
        self.id = id
        self.kind = kind
    }

    init(_ principal: Principal) {
        switch principal.credential {
        case .session(let user, _): self.init(id: user, kind: "user")
        case .apiKey(let key): self.init(id: key, kind: "apikey")
        }
    }
}

/// A record with its system fields.
public struct StoredRecord: Sendable, Hashable {
    public let id: UUID
    public let version: Int64
    public let createdAt: Date
    public let createdBy: Actor
    public let updatedAt: Date
    public let updatedBy: Actor
    public let data: JSONObject

    /// The columns a query must select, in order, for `init(row:)`.
    static let columns = "record_id, version, created_at, created_by, created_by_kind, updated_at, updated_by, updated_by_kind, data"
}

/// A record as PostgreSQL printed it: the system fields decoded, the data still the `jsonb`
/// text, never parsed (it can be passed on as is, see `JSONText`). Reading one record is the
/// busiest route, and this is what keeps it cheap.
public struct RecordText: Sendable {
    public let id: UUID
    public let version: Int64
    public let createdAt: Date
    public let createdBy: Actor
    public let updatedAt: Date
    public let updatedBy: Actor
    /// The data as `jsonb` prints it: valid JSON, with spaces after `:` and `,`.
    public let data: [UInt8]
}

/// The before/after of each field that changed, for the audit log.
enum RecordChanges {
    static func diff(before: JSONObject?, after: JSONObject?) -> JSONValue {
        var changes = JSONObject()
        var keys: [String] = before?.keys ?? []
        for key in after?.keys ?? [] where !keys.contains(key) { keys.append(key) }
        for key in keys {
            let old = before?[key]
            let new = after?[key]
            guard old != new else { continue }
            var change = JSONObject()
            if let old { change["before"] = old }
            if let new { change["after"] = new }
            changes[key] = .object(change)
        }
        return .object(changes)
    }
}

/// A write's answer as the caller renders it — opaque to the services — which an
/// Idempotency-Key stores in the write's own transaction and a retry gets back as it was.
public struct StoredResponse: Sendable {
    public let status: Int
    public let headers: [(name: String, value: String)]
    public let body: String
    /// True when this is the stored answer to an earlier request with the same key.
    public var replayed = false

    public init(status: Int, headers: [(name: String, value: String)], body: String) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// What a write requires of the record's current version (`If-Match`).
public enum VersionCondition: Sendable, Hashable {
    /// Any version, as long as the record exists.
    case any
    /// One of these versions.
    case oneOf(Set<Int64>)

    func holds(for version: Int64) -> Bool {
        switch self {
        case .any: true
        case .oneOf(let versions): versions.contains(version)
        }
    }
}

import PostgresPool

extension RecordText {
    /// The columns `init(row:id:)` reads, in order: `StoredRecord.columns` without the id.
    static let columns = "version, created_at, created_by, created_by_kind, updated_at, updated_by, updated_by_kind, data"

    /// From a row of `columns` for the record `id`.
    init(row: PostgresRow, id: UUID) throws {
        try self.init(row: row, id: id, from: 0)
    }

    /// From a row of `StoredRecord.columns` (the id first).
    init(row: PostgresRow) throws {
        try self.init(row: row, id: row.decode(UUID.self, column: 0), from: 1)
    }

    /// From `columns` starting at column `first`. Column by column rather than as one tuple:
    /// a list decodes this for every record, and a tuple of eight types costs a runtime
    /// metadata lookup each time.
    private init(row: PostgresRow, id: UUID, from first: Int) throws {
        let version = try row.decode(Int64.self, column: first)
        let createdAt = try row.decode(Date.self, column: first + 1)
        let createdBy = try row.decode(UUID.self, column: first + 2)
        let createdKind = try row.decode(String.self, column: first + 3)
        let updatedAt = try row.decode(Date.self, column: first + 4)
        let updatedBy = try row.decode(UUID.self, column: first + 5)
        let updatedKind = try row.decode(String.self, column: first + 6)
        guard let data = try row.withUnsafeBytes(column: first + 7, { bytes in bytes.map { Array($0) } }) else {
            throw PostgresError(code: .decoding, message: "record data is NULL")
        }
        self.init(
            id: id, version: version, createdAt: createdAt, createdBy: Actor(id: createdBy, kind: createdKind),
            updatedAt: updatedAt, updatedBy: Actor(id: updatedBy, kind: updatedKind), data: data
        )
    }
}

extension StoredRecord {
    /// The record with its data parsed.
    init(_ text: RecordText) throws {
        guard case .object(let data) = try JSONParser.parse(String(decoding: text.data, as: UTF8.self), limits: .stored) else {
            throw PostgresError(code: .decoding, message: "record data is not an object")
        }
        self.init(
            id: text.id, version: text.version, createdAt: text.createdAt, createdBy: text.createdBy,
            updatedAt: text.updatedAt, updatedBy: text.updatedBy, data: data
        )
    }

    /// From a row of `StoredRecord.columns`.
    init(row: PostgresRow) throws {
        try self.init(RecordText(row: row))
    }
}
