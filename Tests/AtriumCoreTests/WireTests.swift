@testable import AtriumCore
import AtriumText
import AtriumWire
import Foundation
import Testing

/// The HTTP side's codecs that need no server: entity tags and the query-string grammar.
@Suite struct EntityTagTests {
    @Test(arguments: [
        (#""5""#, VersionCondition.oneOf([5])),
        (#""5", "7""#, .oneOf([5, 7])),
        (#" "5" ,"7" "#, .oneOf([5, 7])),
        ("\t\"5\"\t,\t\"7\"", .oneOf([5, 7])),  // optional whitespace is spaces and tabs
        ("\u{00A0}\"5\"", .oneOf([])),  // and nothing else
        ("*", .any),
        (#""5", *"#, .any),
        (#"W/"5""#, .oneOf([])),  // If-Match compares strongly: a weak tag never matches
        (#"W/"5", "6""#, .oneOf([6])),
        (#""05""#, .oneOf([])),  // not an ETag this server writes
        (#""+5""#, .oneOf([])),
        (#""5"#, .oneOf([])),
        (#"5"#, .oneOf([])),
        (#""""#, .oneOf([])),
        (#""99999999999999999999""#, .oneOf([])),
        ("", .oneOf([])),
        (",,", .oneOf([])),
    ])
    func ifMatch(header: String, condition: VersionCondition) {
        #expect(EntityTag.condition(ifMatch: header) == condition, "\(header)")
    }

    @Test(arguments: [
        (#""5""#, true), (#"W/"5""#, true), (#""4", W/"5""#, true), ("*", true),
        (#""4""#, false), (#"W/"4""#, false), (#""05""#, false), ("", false), (#"W/5"#, false),
    ])
    func ifNoneMatch(header: String, matchesVersionFive: Bool) {
        #expect(EntityTag.matches(ifNoneMatch: header, version: 5) == matchesVersionFive, "\(header)")
    }

    @Test func tagsAreTheQuotedVersion() {
        #expect(EntityTag.of(version: 1) == #""1""#)
        #expect(EntityTag.condition(ifMatch: EntityTag.of(version: Int64.max)) == .oneOf([Int64.max]))
    }
}

@Suite struct HTTPListTests {
    @Test(arguments: [
        ("a", ["a"]),
        (" a , b ", ["a", "b"]),
        ("\ta,\t\tb\t", ["a", "b"]),
        ("a,,b, ,", ["a", "b"]),
        ("a b , c", ["a b", "c"]),  // inner whitespace is part of the element
        ("", []),
        (" \t ", []),
        ("\u{00A0}a", ["\u{00A0}a"]),  // only RFC 9110's OWS (space, tab) is trimmed
    ])
    func elements(header: String, expected: [String]) {
        #expect(HTTPList.elements(header).map(String.init) == expected, "\(header)")
    }
}

@Suite struct QueryStringTests {
    @Test(arguments: [
        ("", []),
        ("a=1", [("a", "1")]),
        ("a=1&a=2", [("a", "1"), ("a", "2")]),  // repeated names stay, in order
        ("a&b=", [("a", ""), ("b", "")]),
        ("&&a=1&&", [("a", "1")]),
        ("a=1=2", [("a", "1=2")]),
        ("filter%5Bstatus%5D=open", [("filter[status]", "open")]),  // percent-encoded names
        ("q=a+b%20c%2B", [("q", "a b c+")]),
        ("q=%E2%82%AC", [("q", "€")]),
        ("q=%zz", [("q", "%zz")]),  // not an escape: kept as written
        ("q=100%", [("q", "100%")]),
    ] as [(String, [(String, String)])])
    func pairs(query: String, expected: [(String, String)]) throws {
        let pairs = try QueryString.pairs(query)
        #expect(pairs.map(\.name) == expected.map(\.0))
        #expect(pairs.map(\.value) == expected.map(\.1))
    }

    @Test(arguments: ["a=%00", "%00=1", "filter[title]=x%00y"])
    func nulIsRefused(query: String) {
        #expect(throws: AtriumError.self) { try QueryString.pairs(query) }
    }

    @Test func listGrammar() throws {
        let query = try RecordQuery(parameters: try QueryString.pairs(
            "filter%5Bstatus%5D=open&filter[priority][gte]=3&sort=-priority,createdAt&limit=50&fields=title,status&count=exact&cursor=abc"
        ))
        #expect(query.filters == [
            .init(field: "status", op: .eq, value: "open", parameter: "filter[status]"),
            .init(field: "priority", op: .gte, value: "3", parameter: "filter[priority][gte]"),
        ])
        #expect(query.sort.map(\.field) == ["priority", "createdAt"])
        #expect(query.sort.map(\.descending) == [true, false])
        #expect(query.limit == 50)
        #expect(query.fields == ["title", "status"])
        #expect(query.count == .exact)
        #expect(query.cursor == "abc")
    }

    @Test(arguments: [
        ("limit=1&limit=2", "limit"), ("limit=0", "limit"), ("limit=101", "limit"), ("limit=x", "limit"),
        ("sort=", "sort"), ("sort=-", "sort"), ("sort=a,a", "sort"), ("sort=a,b,c,d", "sort"), ("sort=a,,b", "sort"),
        ("count=maybe", "count"), ("fields=", "fields"), ("page=2", "page"),
        ("filter[a][like]=x", "filter[a][like]"), ("filter[]=x", "filter[]"), ("filter[a=x", "filter[a"),
        ("filter[a][eq][x]=1", "filter[a][eq][x]"), ("filter[a[b]]=1", "filter[a[b]]"),
    ])
    func listGrammarNamesWhatIsWrong(query: String, parameter: String) throws {
        do {
            _ = try RecordQuery(parameters: try QueryString.pairs(query))
            Issue.record("\(query) was accepted")
        } catch let error as AtriumError {
            #expect(error.code == .badRequest)
            #expect(error.fields.map(\.field) == [parameter], "\(query)")
        }
    }

    @Test func tooManyFiltersAreRefused() throws {
        let many = (0...RecordQuery.maximumFilters).map { "filter[f\($0)]=1" }.joined(separator: "&")
        #expect(throws: AtriumError.self) { try RecordQuery(parameters: try QueryString.pairs(many)) }
        let enough = (1...RecordQuery.maximumFilters).map { "filter[f\($0)]=1" }.joined(separator: "&")
        #expect(try RecordQuery(parameters: try QueryString.pairs(enough)).filters.count == RecordQuery.maximumFilters)
    }

    @Test(arguments: [
        ("recordId=nope", "recordId"), ("actor=1", "actor"), ("operation=read", "operation"),
        ("since=yesterday", "since"), ("until=2026-13-01T00:00:00Z", "until"), ("limit=201", "limit"), ("x=1", "x"),
    ])
    func auditGrammarNamesWhatIsWrong(query: String, parameter: String) throws {
        do {
            _ = try AuditQuery(parameters: try QueryString.pairs(query))
            Issue.record("\(query) was accepted")
        } catch let error as AtriumError {
            #expect(error.fields.map(\.field) == [parameter], "\(query)")
        }
    }
}

/// Each representation, byte for byte: what clients parse must not drift when code moves.
@Suite struct RepresentationTests {
    static let id = UUID(canonical: "01234567-89ab-cdef-fedc-ba9876543210")!
    static let user = Actor(id: UUID(canonical: "11111111-2222-3333-4444-555555555555")!, kind: "user")
    static let key = Actor(id: UUID(canonical: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")!, kind: "apikey")
    static let created = Date(timeIntervalSince1970: 1_796_475_728.123)
    static let updated = Date(timeIntervalSince1970: 1_796_475_729.5)
    static let golden = #"{"id":"01234567-89ab-cdef-fedc-ba9876543210","version":3,"createdAt":"2026-12-05T13:02:08.123Z","#
        + #""createdBy":{"type":"user","id":"11111111-2222-3333-4444-555555555555"},"updatedAt":"2026-12-05T13:02:09.500Z","#
        + #""updatedBy":{"type":"apikey","id":"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"},"#
        + #""data":{"title":"<b> & \"q\"","n":1.5,"tags":["a"],"none":null}}"#

    @Test func aRecord() throws {
        let data = try #require(try JSONParser.parse(#"{"title":"<b> & \"q\"","n":1.5,"tags":["a"],"none":null}"#).objectValue)
        let record = StoredRecord(id: Self.id, version: 3, createdAt: Self.created, createdBy: Self.user, updatedAt: Self.updated, updatedBy: Self.key, data: data)
        let expected = Self.golden.replacingOccurrences(of: "<b> & ", with: #"\u003cb\u003e \u0026 "#)
        #expect(JSONSerializer.text(RecordJSON.record(record)) == expected)
        #expect(JSONSerializer.text(RecordJSON.record(record, fields: ["n", "absent"])).hasSuffix(#""data":{"n":1.5}}"#))
    }

    @Test func aRecordAsPostgreSQLPrintedIt() {
        // jsonb's own output: spaces after ':' and ',', keys in its order, '<' and '&' unescaped.
        let text = RecordText(
            id: Self.id, version: 3, createdAt: Self.created, createdBy: Self.user, updatedAt: Self.updated, updatedBy: Self.key,
            data: Array(#"{"n": 1.5, "none": null, "tags": ["a"], "title": "<b> & \"q\""}"#.utf8)
        )
        let expected = Self.golden
            .replacingOccurrences(of: #"{"title":"<b> & \"q\"","n":1.5,"tags":["a"],"none":null}"#, with: #"{"n":1.5,"none":null,"tags":["a"],"title":"\u003cb\u003e \u0026 \"q\""}"#)
        #expect(String(decoding: RecordJSON.bytes(text), as: UTF8.self) == expected)
    }

    /// A list page written from the text equals the page built from the parsed records.
    @Test(arguments: [nil, "next-cursor"] as [String?], [nil, 7] as [Int?])
    func aPageAsPostgreSQLPrintedIt(cursor: String?, count: Int?) throws {
        let texts = [
            #"{"n": 1.5, "none": null, "tags": ["a"], "title": "<b> & \"q\""}"#, #"{}"#, #"{"a": {"b": [1, 2e3, "é\n"]}}"#,
        ].map { RecordText(id: UUID(), version: 1, createdAt: Self.created, createdBy: Self.user, updatedAt: Self.updated, updatedBy: Self.key, data: Array($0.utf8)) }
        let page = RecordPage(records: texts, nextCursor: cursor, count: count, fields: nil)
        var parsed = JSONObject()
        parsed["data"] = .array(try texts.map { text in
            let data = try #require(try JSONParser.parse(String(decoding: text.data, as: UTF8.self)).objectValue)
            return RecordJSON.record(StoredRecord(
                id: text.id, version: text.version, createdAt: text.createdAt, createdBy: text.createdBy,
                updatedAt: text.updatedAt, updatedBy: text.updatedBy, data: data
            ))
        })
        parsed["nextCursor"] = cursor.map(JSONValue.string) ?? .null
        if let count { parsed["count"] = .number(JSONNumber(Int64(count))) }
        #expect(RecordJSON.page(page) == JSONSerializer.bytes(.object(parsed)))
    }

    @Test func anAuditEntry() {
        let entry = AuditEntry(
            id: Self.id, occurredAt: Self.created, actor: Self.key, requestID: nil, collection: "notes",
            recordID: Self.id, operation: "update", changes: .object(JSONObject([("n", .object(JSONObject([("before", .number(JSONNumber(Int64(1)))), ("after", .number(JSONNumber(Int64(2))))])))]))
        )
        #expect(JSONSerializer.text(RecordJSON.audit(entry)) == #"{"id":"01234567-89ab-cdef-fedc-ba9876543210","occurredAt":"2026-12-05T13:02:08.123Z","#
            + #""actor":{"type":"apikey","id":"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"},"requestId":null,"collection":"notes","#
            + #""recordId":"01234567-89ab-cdef-fedc-ba9876543210","operation":"update","changes":{"n":{"before":1,"after":2}}}"#)
    }
}
