import Foundation

/// Reading collection definitions from JSON (requests, storage) and writing them back.
extension CollectionDefinition {
    typealias Failure = AtriumError.FieldFailure

    static let nameRule = "a lower-case letter, then up to 62 lower-case letters, digits, _ or -"

    public static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...63).contains(bytes.count), (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(bytes[0]) else { return false }
        return bytes.allSatisfy { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    static func isValidFieldName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...63).contains(bytes.count), bytes[0].isASCIILetter else { return false }
        return bytes.allSatisfy { $0.isASCIILetter || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "_") }
    }

    /// Parses `{name, fields, rules}`, collecting every problem with its JSON pointer.
    ///
    /// `stored` is for definitions read back from the database: they were checked when they were
    /// made, and rules added since (the pattern budget) must not make an existing collection
    /// unreadable. A stored field whose pattern is over the budget is held to it when records are
    /// validated instead, and a change to the collection has to bring it within.
    public static func parse(_ value: JSONValue, stored: Bool = false) -> (definition: CollectionDefinition?, failures: [AtriumError.FieldFailure]) {
        var failures: [Failure] = []
        guard case .object(let object) = value else { return (nil, [Failure(field: "/", reason: "must be an object")]) }
        for key in object.keys where !["name", "fields", "rules"].contains(key) {
            failures.append(Failure(field: "/\(key)", reason: "is not a known field"))
        }
        var name = ""
        switch object["name"] {
        case .string(let text) where Self.isValidName(text): name = text
        case nil: failures.append(Failure(field: "/name", reason: "is required"))
        default: failures.append(Failure(field: "/name", reason: "must be \(Self.nameRule)"))
        }
        var fields: [FieldDefinition] = []
        switch object["fields"] {
        case .object(let specs):
            if specs.count > Self.maximumFields {
                failures.append(Failure(field: "/fields", reason: "at most \(Self.maximumFields) fields"))
            }
            for (fieldName, spec) in specs {
                if let field = Self.parseField(fieldName, spec, stored: stored, failures: &failures) { fields.append(field) }
            }
        case nil: break
        default: failures.append(Failure(field: "/fields", reason: "must be an object of field definitions"))
        }
        let rules = Self.parseRules(object["rules"], failures: &failures)
        let patternCost = fields.reduce(0) { total, field in
            let (sum, overflow) = total.addingReportingOverflow(field.patternCost ?? 0)
            return overflow ? .max : sum
        }
        if !stored, failures.isEmpty, patternCost > FieldDefinition.patternBudget {
            failures.append(Failure(
                field: "/fields",
                reason: "the patterns together could take \(patternCost) steps to check on one record, over the limit of "
                    + "\(FieldDefinition.patternBudget); lower maxLength or simplify the patterns"
            ))
        }
        guard failures.isEmpty else { return (nil, failures) }
        return (CollectionDefinition(name: name, fields: fields, rules: rules), [])
    }

    static func parseField(_ name: String, _ spec: JSONValue, stored: Bool, failures: inout [Failure]) -> FieldDefinition? {
        let path = "/fields/\(name)"
        guard Self.isValidFieldName(name) else {
            failures.append(Failure(field: path, reason: "field names are a letter, then up to 62 letters, digits or _"))
            return nil
        }
        guard !Self.systemFields.contains(name) else {
            failures.append(Failure(field: path, reason: "\(name) is a system field"))
            return nil
        }
        guard case .object(let options) = spec else {
            failures.append(Failure(field: path, reason: "must be an object with at least a type"))
            return nil
        }
        let known: Set = ["type", "required", "unique", "indexed", "default", "min", "max", "minLength", "maxLength", "pattern", "values", "collection"]
        for key in options.keys where !known.contains(key) {
            failures.append(Failure(field: "\(path)/\(key)", reason: "is not a known option"))
        }
        guard let typeName = options["type"]?.stringValue, let type = FieldType(rawValue: typeName) else {
            failures.append(Failure(field: "\(path)/type", reason: "must be one of \(FieldType.allCases.map(\.rawValue).joined(separator: ", "))"))
            return nil
        }
        var field = FieldDefinition(name: name, type: type)
        let start = failures.count
        func flag(_ key: String) -> Bool {
            switch options[key] {
            case nil, .bool(false): return false
            case .bool(true): return true
            default:
                failures.append(Failure(field: "\(path)/\(key)", reason: "must be true or false"))
                return false
            }
        }
        func number(_ key: String) -> Double? {
            switch options[key] {
            case nil: return nil
            case .number(let number): return number.double
            default:
                failures.append(Failure(field: "\(path)/\(key)", reason: "must be a number"))
                return nil
            }
        }
        func count(_ key: String) -> Int? {
            guard let value = number(key) else { return nil }
            guard value >= 0, value <= 1_000_000, value.rounded() == value else {
                failures.append(Failure(field: "\(path)/\(key)", reason: "must be a whole number from 0 to 1000000"))
                return nil
            }
            return Int(value)
        }
        func refuse(_ key: String, unless allowed: Bool) {
            if !allowed, options[key] != nil {
                failures.append(Failure(field: "\(path)/\(key)", reason: "does not apply to \(type.rawValue) fields"))
            }
        }
        field.required = flag("required")
        field.unique = flag("unique")
        field.indexed = flag("indexed")
        field.minimum = number("min")
        field.maximum = number("max")
        field.minLength = count("minLength")
        field.maxLength = count("maxLength")
        refuse("unique", unless: ![.json, .array, .text].contains(type))
        refuse("indexed", unless: ![.json, .text].contains(type))
        refuse("min", unless: [.integer, .number].contains(type))
        refuse("max", unless: [.integer, .number].contains(type))
        refuse("minLength", unless: [.string, .text, .array].contains(type))
        refuse("maxLength", unless: [.string, .text, .array].contains(type))
        refuse("pattern", unless: [.string, .text].contains(type))
        refuse("values", unless: type == .enumeration)
        refuse("collection", unless: type == .reference)
        if let minimum = field.minimum, let maximum = field.maximum, minimum > maximum {
            failures.append(Failure(field: "\(path)/min", reason: "must not be greater than max"))
        }
        if let minimum = field.minLength, let maximum = field.maxLength, minimum > maximum {
            failures.append(Failure(field: "\(path)/minLength", reason: "must not be greater than maxLength"))
        }
        if type == .string, (field.maxLength ?? 0) > FieldDefinition.maximumStringLength {
            failures.append(Failure(field: "\(path)/maxLength", reason: "strings are at most \(FieldDefinition.maximumStringLength) characters; use text"))
        }
        if let pattern = options["pattern"] {
            if case .string(let text) = pattern {
                do {
                    field.pattern = try SafeRegex(text)
                } catch {
                    failures.append(Failure(field: "\(path)/pattern", reason: error.description))
                }
            } else {
                failures.append(Failure(field: "\(path)/pattern", reason: "must be a string"))
            }
        }
        if !stored, let cost = field.patternCost, cost > FieldDefinition.patternBudget {
            if field.effectiveMaxLength == nil {
                failures.append(Failure(field: "\(path)/maxLength", reason: "is required with a pattern on text fields"))
            } else {
                failures.append(Failure(
                    field: "\(path)/pattern",
                    reason: "checking it on \(field.effectiveMaxLength!) characters could take \(cost) steps, over the limit of "
                        + "\(FieldDefinition.patternBudget); lower maxLength or simplify the pattern"
                ))
            }
        }
        if type == .enumeration {
            if case .array(let items) = options["values"], !items.isEmpty, items.count <= 100,
               let strings = Optional(items.compactMap(\.stringValue)), strings.count == items.count,
               Set(strings).count == strings.count, strings.allSatisfy({ !$0.isEmpty && $0.count <= 200 }) {
                field.values = strings
            } else {
                failures.append(Failure(field: "\(path)/values", reason: "must be 1 to 100 distinct non-empty strings"))
            }
        }
        if type == .reference {
            if case .string(let target) = options["collection"], Self.isValidName(target) {
                field.collection = target
            } else {
                failures.append(Failure(field: "\(path)/collection", reason: "must name the referenced collection"))
            }
        }
        if let defaultValue = options["default"], failures.count == start {
            if type == .reference {
                failures.append(Failure(field: "\(path)/default", reason: "references cannot have a default"))
            } else if let problem = RecordValidator.problem(with: defaultValue, for: field) {
                failures.append(Failure(field: "\(path)/default", reason: problem))
            } else if defaultValue != .null {
                field.defaultValue = defaultValue
            }
        }
        return failures.count == start ? field : nil
    }

    static func parseRules(_ value: JSONValue?, failures: inout [Failure]) -> CollectionRules {
        var rules = CollectionRules()
        guard let value else { return rules }
        guard case .object(let object) = value else {
            failures.append(Failure(field: "/rules", reason: "must be an object"))
            return rules
        }
        for (operation, spec) in object {
            let path = "/rules/\(operation)"
            guard ["read", "create", "update", "delete"].contains(operation) else {
                failures.append(Failure(field: path, reason: "must be read, create, update or delete"))
                continue
            }
            guard case .object(let options) = spec else {
                failures.append(Failure(field: path, reason: "must be an object like {\"role\": \"member\", \"own\": true}"))
                continue
            }
            var rule = AccessRule(role: operation == "read" ? .viewer : .member)
            for (key, option) in options {
                switch (key, option) {
                case ("role", .string(let name)) where Role(rawValue: name) != nil: rule.role = Role(rawValue: name)!
                case ("role", _): failures.append(Failure(field: "\(path)/role", reason: "must be viewer, member, admin or owner"))
                case ("own", .bool(let own)): rule.own = own
                case ("own", _): failures.append(Failure(field: "\(path)/own", reason: "must be true or false"))
                default: failures.append(Failure(field: "\(path)/\(key)", reason: "is not a known option"))
                }
            }
            switch operation {
            case "read": rules.read = rule
            case "create": rules.create = rule
            case "update": rules.update = rule
            default: rules.delete = rule
            }
        }
        return rules
    }

    /// The definition as JSON, as stored and as the API shows it.
    public var json: JSONValue {
        var fields = JSONObject()
        for field in self.fields {
            var spec = JSONObject()
            spec["type"] = .string(field.type.rawValue)
            if field.required { spec["required"] = .bool(true) }
            if field.unique { spec["unique"] = .bool(true) }
            if field.indexed { spec["indexed"] = .bool(true) }
            if let value = field.defaultValue { spec["default"] = value }
            if let value = field.minimum { spec["min"] = .number(JSONNumber(value)) }
            if let value = field.maximum { spec["max"] = .number(JSONNumber(value)) }
            if let value = field.minLength { spec["minLength"] = .number(JSONNumber(Int64(value))) }
            if let value = field.maxLength { spec["maxLength"] = .number(JSONNumber(Int64(value))) }
            if let value = field.pattern { spec["pattern"] = .string(value.pattern) }
            if let values = field.values { spec["values"] = .array(values.map(JSONValue.string)) }
            if let target = field.collection { spec["collection"] = .string(target) }
            fields[field.name] = .object(spec)
        }
        func rule(_ rule: AccessRule) -> JSONValue {
            .object(JSONObject([("role", .string(rule.role.rawValue)), ("own", .bool(rule.own))]))
        }
        return .object(JSONObject([
            ("name", .string(self.name)),
            ("fields", .object(fields)),
            ("rules", .object(JSONObject([
                ("read", rule(self.rules.read)), ("create", rule(self.rules.create)),
                ("update", rule(self.rules.update)), ("delete", rule(self.rules.delete)),
            ]))),
        ]))
    }
}

extension UInt8 {
    var isASCIILetter: Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
    }
}
