import AtriumCore
import AtriumCrypto
import AtriumText
import AtriumWire
import Foundation
import PostgresPool

/// A parser or codec that takes input from outside, with the properties it must keep on any
/// input. A target returns normally or stops the process (a failed precondition, a trap):
/// that, a leak, or an input slower than libFuzzer's `-timeout` is a finding.
public struct FuzzTarget: Sendable {
    public let name: String
    let body: @Sendable ([UInt8]) -> Void

    public func run(_ input: [UInt8]) {
        self.body(input)
    }

    public static let all: [FuzzTarget] = [.json, .query, .cursor, .regex, .rfc3339, .postgresText]

    public static func named(_ name: String) -> FuzzTarget? {
        self.all.first { $0.name == name }
    }

    /// The strict JSON parser; what it accepts must survive writing and reading back unchanged,
    /// and the text writer used for stored records must reproduce the serializer's bytes.
    static let json = FuzzTarget(name: "json") { input in
        guard let value = try? JSONParser.parse(input) else { return }
        let text = JSONSerializer.bytes(value)
        guard let again = try? JSONParser.parse(text, limits: .stored) else { preconditionFailure("serialized JSON does not parse") }
        precondition(again == value, "a value changed on the way through the serializer")
        precondition(JSONSerializer.bytes(again) == text, "serializing is not stable")
        var compact: [UInt8] = []
        text.withUnsafeBytes { JSONText.appendCompact($0, to: &compact) }
        precondition(compact == text, "JSONText does not reproduce the serializer's bytes")
    }

    /// The query-string decoding and the list and audit query grammars.
    static let query = FuzzTarget(name: "query") { input in
        guard let pairs = try? QueryString.pairs(String(decoding: input, as: UTF8.self)) else { return }
        if let query = try? RecordQuery(parameters: pairs) {
            precondition(query.filters.count <= RecordQuery.maximumFilters)
            precondition((1...RecordQuery.maximumLimit).contains(query.limit))
        }
        _ = try? AuditQuery(parameters: pairs)
    }

    static let cursorKey = Array(repeating: UInt8(7), count: 32)

    /// List cursors: a forged one is refused; one whose signature is right (signed here, as the
    /// server would) but whose payload is anything must be refused or read, never crash.
    static let cursor = FuzzTarget(name: "cursor") { input in
        let codec = CursorCodec(key: Self.cursorKey)
        _ = try? codec.decode(String(decoding: input, as: UTF8.self), context: "fuzz", keys: 1)
        let body = Base64.encode(input)
        let mac = HMACSHA256.authenticationCode(for: Array(("fuzz\n" + body).utf8), key: Self.cursorKey)
        let signed = body + "." + Base64.encode(mac)
        for keys in 0...3 {
            if let position = try? codec.decode(signed, context: "fuzz", keys: keys) {
                let again = try? codec.decode(codec.encode(position, context: "fuzz"), context: "fuzz", keys: keys)
                precondition(again == position, "a cursor did not survive encoding")
            }
        }
    }

    /// Patterns and texts (split at the first NUL): compiling never crashes, and matching never
    /// takes more steps than the bound collections are checked against.
    static let regex = FuzzTarget(name: "regex") { input in
        let split = input.firstIndex(of: 0) ?? input.count
        let pattern = String(decoding: input[..<split], as: UTF8.self)
        let text = String(decoding: input[min(split + 1, input.count)...], as: UTF8.self)
        guard let regex = try? SafeRegex(pattern) else { return }
        let evaluation = regex.evaluate(text)
        precondition(evaluation.matched != nil)
        precondition(evaluation.steps <= regex.cost(forLength: text.unicodeScalars.count), "matching took more steps than its bound")
    }

    /// RFC 3339 dates and times: what parses is printed back in a form that parses to the same
    /// instant, and printing that again changes nothing.
    static let rfc3339 = FuzzTarget(name: "rfc3339") { input in
        let text = String(decoding: input, as: UTF8.self)
        _ = RFC3339.date(text)
        guard let date = RFC3339.dateTime(text) else { return }
        let printed = RFC3339.string(date)
        guard let again = RFC3339.dateTime(printed) else { preconditionFailure("printed date-time \(printed) does not parse") }
        precondition(RFC3339.string(again) == printed, "printing \(printed) is not stable")
    }

    /// The decoders of PostgreSQL's text output: anything that decodes is written back the same.
    static let postgresText = FuzzTarget(name: "pgtext") { input in
        input.withUnsafeBytes { bytes in
            _ = PostgresTextCoding.parseTimestamp(bytes)
            _ = PostgresTextCoding.parseByteaHex(bytes)
            _ = PostgresArrayParser.parse(bytes)
            if let integer = PostgresTextCoding.parseInteger(bytes) {
                var written: [UInt8] = []
                PostgresTextCoding.appendDecimal(integer, to: &written)
                precondition(written.withUnsafeBytes { PostgresTextCoding.parseInteger($0) } == integer)
            }
            if let uuid = PostgresTextCoding.parseUUID(bytes) {
                var written: [UInt8] = []
                PostgresTextCoding.appendUUID(uuid, to: &written)
                precondition(written.withUnsafeBytes { PostgresTextCoding.parseUUID($0) } == uuid)
            }
        }
    }
}
