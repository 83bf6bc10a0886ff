public import AtriumCore
import AtriumText
import Foundation

/// The JSON representations of records, their authors and audit entries. One shape for all:
/// `{"id","version","createdAt","createdBy":{"type","id"},"updatedAt","updatedBy","data"}`.
public enum RecordJSON {
    /// `{"type":"user"|"apikey","id":"…"}`
    public static func actor(_ actor: Actor) -> JSONValue {
        .object(JSONObject([("type", .string(actor.kind)), ("id", .string(actor.id.lowercasedString))]))
    }

    /// A record; `fields` limits `data` to those fields (sparse fieldsets).
    public static func record(_ record: StoredRecord, fields: Set<String>? = nil) -> JSONValue {
        var data = record.data
        if let fields {
            data = JSONObject(data.entries.filter { fields.contains($0.key) })
        }
        return .object(JSONObject([
            ("id", .string(record.id.lowercasedString)),
            ("version", .number(JSONNumber(record.version))),
            ("createdAt", .string(RFC3339.string(record.createdAt))),
            ("createdBy", Self.actor(record.createdBy)),
            ("updatedAt", .string(RFC3339.string(record.updatedAt))),
            ("updatedBy", Self.actor(record.updatedBy)),
            ("data", .object(data)),
        ]))
    }

    /// The same bytes as `JSONSerializer.bytes(record(…))` for the record the text holds,
    /// written straight from it: the data is passed on as PostgreSQL printed it, never parsed.
    public static func bytes(_ record: RecordText) -> [UInt8] {
        var json: [UInt8] = []
        json.reserveCapacity(256 + record.data.count)
        Self.append(record, to: &json)
        return json
    }

    /// A page of a list, written from the records' text: the same bytes as
    /// `{"data":[record(…), …],"nextCursor":…,"count":…}` through `JSONSerializer`.
    public static func page(_ page: RecordPage) -> [UInt8] {
        var json: [UInt8] = []
        json.reserveCapacity(64 + page.records.reduce(0) { $0 + 256 + $1.data.count })
        json.append(contentsOf: #"{"data":["#.utf8)
        for (index, record) in page.records.enumerated() {
            if index > 0 { json.append(UInt8(ascii: ",")) }
            Self.append(record, to: &json)
        }
        json.append(contentsOf: #"],"nextCursor":"#.utf8)
        if let cursor = page.nextCursor {
            JSONSerializer.write(cursor, into: &json)
        } else {
            json.append(contentsOf: "null".utf8)
        }
        if let count = page.count {
            json.append(contentsOf: #","count":"#.utf8)
            json.append(contentsOf: count.description.utf8)
        }
        json.append(UInt8(ascii: "}"))
        return json
    }

    /// Appends the record as `bytes(_:)` writes it.
    public static func append(_ record: RecordText, to json: inout [UInt8]) {
        json.append(contentsOf: #"{"id":""#.utf8)
        record.id.appendLowercased(to: &json)
        json.append(contentsOf: #"","version":"#.utf8)
        json.append(contentsOf: record.version.description.utf8)
        Self.appendStamp(time: ("createdAt", record.createdAt), actor: ("createdBy", record.createdBy), to: &json)
        Self.appendStamp(time: ("updatedAt", record.updatedAt), actor: ("updatedBy", record.updatedBy), to: &json)
        json.append(contentsOf: #","data":"#.utf8)
        record.data.withUnsafeBytes { JSONText.appendCompact($0, to: &json) }
        json.append(UInt8(ascii: "}"))
    }

    /// `,"createdAt":"…","createdBy":{"type":"user","id":"…"}`
    private static func appendStamp(time: (key: StaticString, value: Date), actor: (key: StaticString, value: Actor), to json: inout [UInt8]) {
        json.append(contentsOf: #",""#.utf8)
        time.key.withUTF8Buffer { json.append(contentsOf: $0) }
        json.append(contentsOf: #"":""#.utf8)
        RFC3339.write(time.value, into: &json)
        json.append(contentsOf: #"",""#.utf8)
        actor.key.withUTF8Buffer { json.append(contentsOf: $0) }
        json.append(contentsOf: #"":{"type":"#.utf8)
        JSONSerializer.write(actor.value.kind, into: &json)
        json.append(contentsOf: #","id":""#.utf8)
        actor.value.id.appendLowercased(to: &json)
        json.append(contentsOf: #""}"#.utf8)
    }

    /// One entry of the audit log.
    public static func audit(_ entry: AuditEntry) -> JSONValue {
        .object(JSONObject([
            ("id", .string(entry.id.lowercasedString)),
            ("occurredAt", .string(RFC3339.string(entry.occurredAt))),
            ("actor", Self.actor(entry.actor)),
            ("requestId", entry.requestID.map(JSONValue.string) ?? .null),
            ("collection", .string(entry.collection)),
            ("recordId", .string(entry.recordID.lowercasedString)),
            ("operation", .string(entry.operation)),
            ("changes", entry.changes),
        ]))
    }
}
