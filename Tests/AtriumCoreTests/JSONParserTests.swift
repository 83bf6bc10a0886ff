@testable import AtriumCore
import Testing

@Suite struct JSONParserTests {
    @Test(arguments: [
        (#"{"a":1}"#, #"{"a":1}"#),
        (#" [ 1 , -0.5e+3 , true , false , null ] "#, #"[1,-0.5e+3,true,false,null]"#),
        (#""\"\\\/\b\f\n\r\t""#, #""\"\\/\u0008\u000c\n\r\t""#),
        (#""\u00e9\u20ac\ud83d\ude00""#, "\"é€😀\""),
        (#""<&>""#, #""\u003c\u0026\u003e""#),
        (#"{"x":{"y":[{}]}}"#, #"{"x":{"y":[{}]}}"#),
        ("1E400", nil),
    ] as [(String, String?)])
    func acceptsJSONAndWritesItBackCompact(input: String, output: String?) {
        let parsed = try? JSONParser.parse(input)
        #expect(parsed.map(JSONSerializer.text) == output, "\(input)")
    }

    @Test(arguments: [
        ("", "unexpected end of input", 0),
        (#"{"a":1,"a":2}"#, "duplicate key \"a\"", 7),
        (#""\u0000""#, "\\u0000 is not allowed (PostgreSQL text cannot hold NUL)", 1),
        ("\"a\u{01}\"", "control characters must be escaped", 2),
        (#""\ud800""#, "unpaired surrogate \\ud800", 1),
        (#""\udc00""#, "unpaired surrogate", 1),
        ("01", "invalid number: leading zeros are not allowed", 0),
        ("1.", "invalid number: digits must follow '.'", 0),
        ("[1,]", "unexpected character", 3),
        (#"{"a" 1}"#, "expected ':' after a key", 5),
        ("tru", "invalid literal", 0),
        ("[] []", "unexpected data after the JSON value", 3),
        (#""\x""#, "invalid escape", 1),
    ] as [(String, String, Int)])
    func refusesBrokenInputSayingWhere(input: String, reason: String, offset: Int) {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(input) }
        do {
            _ = try JSONParser.parse(input)
        } catch {
            #expect(error.kind == .syntax)
            #expect(error.reason == reason, "\(input)")
            #expect(error.offset == offset, "\(input)")
        }
    }

    @Test func invalidUTF8IsRefused() {
        for bytes: [UInt8] in [[0x22, 0xC0, 0x80, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xF5, 0x80, 0x80, 0x80, 0x22], [0x22, 0xE2, 0x82, 0x22]] {
            #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(bytes) }
        }
    }

    @Test func lineAndColumnCountCharactersNotBytes() throws {
        do {
            _ = try JSONParser.parse("{\n  \"é\": x}")
            Issue.record("parsed")
        } catch {
            #expect(error.line == 2)
            #expect(error.column == 8)
        }
    }

    @Test func depthIsLimited() throws {
        let limit = JSONParser.Limits.request.maximumDepth
        _ = try JSONParser.parse(String(repeating: "[", count: limit) + String(repeating: "]", count: limit))
        #expect(throws: JSONParser.Failure.self) {
            try JSONParser.parse(String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1))
        }
    }

    @Test func keysPerObjectAreLimited() throws {
        let limits = JSONParser.Limits(maximumDepth: 8, maximumKeysPerObject: 300, maximumValues: 10_000)
        func object(_ keys: Int) -> String { "{" + (0..<keys).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + "}" }
        let parsed = try JSONParser.parse(object(300), limits: limits)
        #expect(parsed.objectValue?.count == 300)
        do {
            _ = try JSONParser.parse(object(301), limits: limits)
            Issue.record("301 keys were accepted")
        } catch {
            #expect(error.kind == .limit)
            #expect(error.reason == "more than 300 keys in one object")
        }
    }

    @Test func valuesPerDocumentAreLimited() throws {
        let limits = JSONParser.Limits(maximumDepth: 8, maximumKeysPerObject: 100, maximumValues: 1000)
        // The array itself is one value.
        _ = try JSONParser.parse("[" + Array(repeating: "0", count: 999).joined(separator: ",") + "]", limits: limits)
        do {
            _ = try JSONParser.parse("[" + Array(repeating: "0", count: 1000).joined(separator: ",") + "]", limits: limits)
            Issue.record("1001 values were accepted")
        } catch {
            #expect(error.kind == .limit)
        }
    }

    @Test func aDuplicateFarIntoALargeObjectIsFound() {
        let keys = (0..<5000).map { "\"k\($0)\":0" } + ["\"k17\":1"]
        do {
            _ = try JSONParser.parse("{" + keys.joined(separator: ",") + "}")
            Issue.record("the duplicate was accepted")
        } catch {
            #expect(error.reason == "duplicate key \"k17\"")
        }
    }
}

@Suite struct JSONObjectTests {
    /// Objects below and above the size where lookups switch to an index behave the same.
    static let sizes = [3, JSONObject.indexThreshold - 1, JSONObject.indexThreshold, 200]

    @Test(arguments: sizes)
    func lookupsUpdatesAndRemovalsKeepOrder(size: Int) {
        let entries: [(key: String, value: JSONValue)] = (0..<size).map { index in ("k\(index)", JSONValue.number(JSONNumber(Int64(index)))) }
        var object = JSONObject(entries)
        #expect(object.count == size)
        for index in 0..<size { #expect(object["k\(index)"] == JSONValue.number(JSONNumber(Int64(index)))) }
        #expect(object["missing"] == nil)

        object["k1"] = .string("changed")
        #expect(object.keys[1] == "k1")
        #expect(object["k1"] == .string("changed"))

        object["k0"] = nil
        #expect(object.count == size - 1)
        #expect(object["k0"] == nil)
        #expect(object.keys.first == "k1")
        for index in 2..<size { #expect(object["k\(index)"] == JSONValue.number(JSONNumber(Int64(index)))) }

        object["new"] = .bool(true)
        #expect(object.keys.last == "new")
        #expect(object["new"] == .bool(true))
    }

    @Test(arguments: sizes)
    func equalityAndHashIgnoreKeyOrder(size: Int) {
        let entries: [(key: String, value: JSONValue)] = (0..<size).map { ("k\($0)", .string("v\($0)")) }
        let forward = JSONObject(entries)
        let backward = JSONObject(entries.reversed())
        #expect(forward == backward)
        #expect(forward.hashValue == backward.hashValue)
        var different = forward
        different["k2"] = .string("other")
        #expect(forward != different)
        var fewer = forward
        fewer["k0"] = nil
        #expect(forward != fewer)
    }

    @Test func aRepeatedKeyKeepsItsPlaceAndTheLastValue() {
        let entries: [(key: String, value: JSONValue)] = [("a", .number(JSONNumber(Int64(1)))), ("b", .null), ("a", .number(JSONNumber(Int64(2))))]
        let object = JSONObject(entries)
        #expect(object.keys == ["a", "b"])
        #expect(object["a"] == JSONValue.number(JSONNumber(Int64(2))))
    }
}

@Suite struct MergePatchTests {
    /// RFC 7396, Appendix A.
    @Test(arguments: [
        (#"{"a":"b"}"#, #"{"a":"c"}"#, #"{"a":"c"}"#),
        (#"{"a":"b"}"#, #"{"b":"c"}"#, #"{"a":"b","b":"c"}"#),
        (#"{"a":"b"}"#, #"{"a":null}"#, #"{}"#),
        (#"{"a":"b","b":"c"}"#, #"{"a":null}"#, #"{"b":"c"}"#),
        (#"{"a":["b"]}"#, #"{"a":"c"}"#, #"{"a":"c"}"#),
        (#"{"a":"c"}"#, #"{"a":["b"]}"#, #"{"a":["b"]}"#),
        (#"{"a":{"b":"c"}}"#, #"{"a":{"b":"d","c":null}}"#, #"{"a":{"b":"d"}}"#),
        (#"{"a":[{"b":"c"}]}"#, #"{"a":[1]}"#, #"{"a":[1]}"#),
        (#"["a","b"]"#, #"["c","d"]"#, #"["c","d"]"#),
        (#"{"a":"b"}"#, #"["c"]"#, #"["c"]"#),
        (#"{"a":"foo"}"#, "null", "null"),
        (#"{"a":"foo"}"#, #""bar""#, #""bar""#),
        (#"{"e":null}"#, #"{"a":1}"#, #"{"e":null,"a":1}"#),
        (#"[1,2]"#, #"{"a":"b","c":null}"#, #"{"a":"b"}"#),
        (#"{}"#, #"{"a":{"bb":{"ccc":null}}}"#, #"{"a":{"bb":{}}}"#),
        // Beyond the RFC's table: the target's order stays, and removing what is absent is no change.
        (#"{"z":1,"a":2}"#, #"{"m":3,"z":4}"#, #"{"z":4,"a":2,"m":3}"#),
        (#"{"a":1}"#, #"{"missing":null}"#, #"{"a":1}"#),
    ])
    func appliesLikeTheRFC(target: String, patch: String, result: String) throws {
        let merged = MergePatch.apply(try JSONParser.parse(patch), to: try JSONParser.parse(target))
        #expect(merged == (try JSONParser.parse(result)))
        #expect(JSONSerializer.text(merged) == result)
    }

    @Test func aLargePatchOnALargeObjectKeepsTheTargetsOrder() throws {
        let target = "{" + (0..<3000).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + "}"
        let patch = "{" + (0..<3000).filter { $0 % 2 == 0 }.map { "\"k\($0)\":null" }.joined(separator: ",") + ",\"z\":1}"
        let merged = try #require(MergePatch.apply(try JSONParser.parse(patch), to: try JSONParser.parse(target)).objectValue)
        #expect(merged.keys == (0..<3000).filter { $0 % 2 == 1 }.map { "k\($0)" } + ["z"])
        #expect(merged["k2999"] == JSONValue.number(JSONNumber(Int64(2999))))
    }
}
