import AtriumText
import Foundation

/// Checks record data against a collection definition and says, for every failing field, why.
enum RecordValidator {
    typealias Failure = AtriumError.FieldFailure

    static let maximumSafeInteger = 9_007_199_254_740_991.0

    /// Validates a whole record body (create or replace, or the result of a merge patch).
    ///
    /// Returns the data to store: defaults filled in when `applyDefaults`, and `null` on an
    /// optional field meaning "absent" (it is left out). Unknown fields are failures.
    static func validate(_ value: JSONValue, against definition: CollectionDefinition, applyDefaults: Bool, at prefix: String = "") -> (data: JSONObject, failures: [Failure]) {
        guard case .object(let object) = value else {
            return (JSONObject(), [Failure(field: prefix.isEmpty ? "/" : prefix, reason: "a record must be a JSON object")])
        }
        var failures: [Failure] = []
        var data = JSONObject()
        let names = Set(definition.fields.map(\.name))
        for key in object.keys where !names.contains(key) {
            let reason = CollectionDefinition.systemFields.contains(key) ? "is a system field and cannot be written" : "is not a field of \(definition.name)"
            failures.append(Failure(field: "\(prefix)/\(JSONPointer.escape(key))", reason: reason))
        }
        for field in definition.fields {
            let pointer = "\(prefix)/\(JSONPointer.escape(field.name))"
            var candidate = object[field.name]
            if candidate == nil || candidate == .null, applyDefaults, let defaultValue = field.defaultValue {
                candidate = defaultValue
            }
            guard let candidate, candidate != .null else {
                if field.required { failures.append(Failure(field: pointer, reason: "is required")) }
                continue
            }
            if let problem = self.problem(with: candidate, for: field) {
                failures.append(Failure(field: pointer, reason: problem))
            } else if field.type == .reference, case .string(let id) = candidate {
                // Ids are stored in PostgreSQL's lower-case form, so they compare as text.
                data[field.name] = .string(id.lowercased())
            } else {
                data[field.name] = candidate
            }
        }
        return (data, failures)
    }

    /// Why `value` does not fit `field` (type and constraints), or nil.
    static func problem(with value: JSONValue, for field: FieldDefinition) -> String? {
        switch field.type {
        case .string, .text:
            guard case .string(let text) = value else { return "must be a string" }
            let length = text.count
            let maximum = field.effectiveMaxLength
            if let minimum = field.minLength, length < minimum { return "must be at least \(minimum) characters" }
            if let maximum, length > maximum { return "must be at most \(maximum) characters" }
            if field.isIndexed || field.unique, text.utf8.count > FieldDefinition.maximumIndexedBytes {
                return "is too long for an indexed or unique field (at most \(FieldDefinition.maximumIndexedBytes) bytes)"
            }
            if let pattern = field.pattern {
                // Patterns run on Unicode scalars; the step bound the definition was allowed
                // assumes no more of them than characters.
                if let maximum, text.unicodeScalars.count > maximum { return "must be at most \(maximum) characters (Unicode code points)" }
                switch pattern.evaluate(text, stepLimit: field.patternCost.map { min($0, FieldDefinition.patternBudget) } ?? 0).matched {
                case true?: break
                case false?: return "must match the pattern \(pattern.pattern)"
                case nil: return "is too long to check against the pattern; give the field a maxLength"
                }
            }
        case .integer:
            guard case .number(let number) = value else { return "must be an integer" }
            guard number.double.rounded() == number.double, abs(number.double) <= Self.maximumSafeInteger else {
                return "must be a whole number within ±9007199254740991"
            }
            return self.bounds(number.double, field)
        case .number:
            guard case .number(let number) = value else { return "must be a number" }
            return self.bounds(number.double, field)
        case .boolean:
            guard case .bool = value else { return "must be true or false" }
        case .datetime:
            guard case .string(let text) = value, RFC3339.dateTime(text) != nil else {
                return "must be an RFC 3339 date-time with a time zone, like 2030-01-02T03:04:05Z"
            }
        case .date:
            guard case .string(let text) = value, RFC3339.date(text) != nil else { return "must be a date like 2030-01-02" }
        case .enumeration:
            guard case .string(let text) = value, field.values?.contains(text) == true else {
                return "must be one of \((field.values ?? []).joined(separator: ", "))"
            }
        case .reference:
            guard case .string(let text) = value, UUID(canonical: text) != nil else { return "must be a record id" }
        case .json:
            break
        case .array:
            guard case .array(let items) = value else { return "must be an array of strings" }
            guard items.allSatisfy({ $0.stringValue != nil }) else { return "must contain only strings" }
            if let minimum = field.minLength, items.count < minimum { return "must have at least \(minimum) items" }
            if let maximum = field.maxLength, items.count > maximum { return "must have at most \(maximum) items" }
            let limit = field.isIndexed ? FieldDefinition.maximumIndexedBytes : FieldDefinition.maximumArrayItemLength
            if items.contains(where: { ($0.stringValue?.utf8.count ?? 0) > limit }) { return "items must be at most \(limit) bytes" }
        }
        return nil
    }

    private static func bounds(_ value: Double, _ field: FieldDefinition) -> String? {
        if let minimum = field.minimum, value < minimum { return "must be at least \(JSONNumber(minimum))" }
        if let maximum = field.maximum, value > maximum { return "must be at most \(JSONNumber(maximum))" }
        return nil
    }
}
