import AtriumText
import Foundation
import PostgresPool

/// What a record contributes to `record_values` (typed copies for indexed filters) and
/// `record_unique_values` (uniqueness).
enum RecordIndexing {
    struct Entry: Sendable, Hashable {
        let field: String
        let position: Int
        var text: String?
        var number: String?
        var time: Date?
    }

    static func entries(_ data: JSONObject, _ definition: CollectionDefinition) -> [Entry] {
        var entries: [Entry] = []
        for field in definition.fields where field.isIndexed {
            guard let value = data[field.name] else { continue }
            switch (field.type, value) {
            case (.array, .array(let items)):
                for (position, item) in items.enumerated() {
                    if let text = item.stringValue { entries.append(Entry(field: field.name, position: position, text: text)) }
                }
            case (.integer, .number(let number)), (.number, .number(let number)):
                entries.append(Entry(field: field.name, position: 0, number: number.text))
            case (.boolean, .bool(let flag)):
                entries.append(Entry(field: field.name, position: 0, number: flag ? "1" : "0"))
            case (.datetime, .string(let text)):
                entries.append(Entry(field: field.name, position: 0, time: RFC3339.dateTime(text)))
            case (.date, .string(let text)):
                entries.append(Entry(field: field.name, position: 0, time: RFC3339.date(text)))
            case (.reference, .string(let text)):
                entries.append(Entry(field: field.name, position: 0, text: text.lowercased()))
            case (_, .string(let text)):
                entries.append(Entry(field: field.name, position: 0, text: text))
            default:
                continue
            }
        }
        return entries
    }

    /// The fields whose entries differ between two versions of a record (entries come grouped
    /// by field, in the definition's order).
    static func changedFields(from before: [Entry], to after: [Entry]) -> Set<String> {
        var old: [String: [Entry]] = [:]
        var new: [String: [Entry]] = [:]
        for entry in before { old[entry.field, default: []].append(entry) }
        for entry in after { new[entry.field, default: []].append(entry) }
        return Set(old.keys).union(new.keys).filter { old[$0] != new[$0] }
    }

    /// The entries as objects for `jsonb_to_recordset`, each naming its record.
    static func rows(_ entries: [Entry], record: UUID) -> [JSONValue] {
        entries.map { entry -> JSONValue in
            var object = JSONObject()
            object["record_id"] = .string(record.lowercasedString)
            object["field"] = .string(entry.field)
            object["position"] = .number(JSONNumber(Int64(entry.position)))
            if let text = entry.text { object["text_value"] = .string(text) }
            if let number = entry.number { object["num_value"] = .number(JSONNumber(text: number, double: Double(number) ?? 0)) }
            if let time = entry.time { object["time_value"] = .string(RFC3339.string(time)) }
            return .object(object)
        }
    }

    /// `(field, canonical value)` for every unique field the record has.
    static func uniqueKeys(_ data: JSONObject, _ definition: CollectionDefinition) -> [(field: String, key: String)] {
        definition.fields.compactMap { field in
            guard field.unique, let value = data[field.name] else { return nil }
            switch value {
            case .number(let number):
                // 1, 1.0 and 1e0 are the same value.
                return (field.name, number.double.rounded() == number.double && abs(number.double) < 1e15 ? String(Int64(number.double)) : "\(number.double)")
            case .string(let text) where field.type == .reference:
                return (field.name, text.lowercased())
            default:
                return (field.name, JSONSerializer.text(value))
            }
        }
    }
}
