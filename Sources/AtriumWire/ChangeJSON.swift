public import AtriumCore
import AtriumText
import Foundation

/// The JSON of a change event: `{"collection","id","operation","version","actor",
/// "changedFields","occurredAt","record"}`, `record` (the record as GET returns it) absent for
/// deletes. One line: it is an SSE `data` field and a webhook body.
public enum ChangeJSON {
    /// The event name: `record.created`, `record.updated` or `record.deleted`.
    public static func event(_ change: Change) -> String {
        switch change.operation {
        case .create: "record.created"
        case .update: "record.updated"
        case .delete: "record.deleted"
        }
    }

    public static func bytes(_ change: Change) -> [UInt8] {
        var json: [UInt8] = []
        json.reserveCapacity(320 + (change.record?.data.count ?? 0))
        JSONSerializer.write(.object(JSONObject([
            ("collection", .string(change.collection)),
            ("id", .string(change.recordID.lowercasedString)),
            ("operation", .string(change.operation.rawValue)),
            ("version", .number(JSONNumber(change.version))),
            ("actor", RecordJSON.actor(change.actor)),
            ("changedFields", .array(change.fields.map(JSONValue.string))),
            ("occurredAt", .string(RFC3339.string(change.occurredAt))),
        ])), into: &json)
        if let record = change.record {
            json.removeLast()
            json.append(contentsOf: #","record":"#.utf8)
            json.append(contentsOf: RecordJSON.bytes(record))
            json.append(UInt8(ascii: "}"))
        }
        return json
    }
}
