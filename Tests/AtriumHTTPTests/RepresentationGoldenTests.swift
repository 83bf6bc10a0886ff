@testable import AtriumCore
@testable import AtriumHTTP
import AtriumText
import Foundation
import Testing

/// The HTTP side's representations, byte for byte (records and audit entries are pinned in
/// AtriumCoreTests' RepresentationTests): what clients parse must not drift when code moves.
@Suite struct HTTPRepresentationTests {
    static let id = UUID(canonical: "01234567-89ab-cdef-fedc-ba9876543210")!
    static let at = Date(timeIntervalSince1970: 1_796_475_728.123)
    static let tenant = Tenant(id: Self.id, name: "Acme <Ltd>", slug: "acme", requireVerifiedEmail: false, createdAt: Self.at, updatedAt: Self.at)

    static func collection() throws -> StoredCollection {
        let parsed = CollectionDefinition.parse(try JSONParser.parse(
            #"{"name":"notes","fields":{"title":{"type":"string","required":true,"maxLength":80},"n":{"type":"integer","indexed":true}}}"#
        ))
        return StoredCollection(id: Self.id, tenantID: Self.id, version: 2, definition: try #require(parsed.definition), createdAt: Self.at, updatedAt: Self.at)
    }

    @Test func aCollection() throws {
        #expect(JSONSerializer.text(CollectionRoutes.json(try Self.collection())) == Self.goldenCollection)
    }

    @Test func aTenant() throws {
        #expect(JSONSerializer.text(TenantJSON(Self.tenant).json) == Self.goldenTenant)
    }

    @Test func anAPIKeyLeavesOutWhatItDoesNotHave() {
        let key = APIKey(
            id: Self.id, name: "ci & deploy", role: .member, prefix: "ak_0123", createdAt: Self.at,
            expiresAt: nil, revokedAt: nil, lastUsedAt: Self.at, createdBy: Self.id
        )
        #expect(JSONSerializer.text(APIKeyJSON(key).json) == Self.goldenAPIKey)
        #expect(JSONSerializer.text(JSONValue.list([APIKeyJSON(key, secret: "s3cret")])) == Self.goldenAPIKeyList)
    }

    @Test func aProblem() {
        let problem = Problem(.validation, detail: "2 fields are not valid", errors: [.init(field: "/title", reason: "is required"), .init(field: "/n", reason: "must be < 10")])
        #expect(String(buffer: problem.body(requestID: "req-1")) == Self.goldenProblem)
        #expect(String(buffer: Problem(.notFound).body(requestID: "req-2")) == Self.goldenBareProblem)
    }

    @Test func exportLines() throws {
        let record = StoredRecord(
            id: Self.id, version: 1, createdAt: Self.at, createdBy: Actor(id: Self.id, kind: "user"),
            updatedAt: Self.at, updatedBy: Actor(id: Self.id, kind: "apikey"), data: JSONObject([("title", .string("a\nb"))])
        )
        let items: [TenantExport.Item] = [.tenant(Self.tenant), .collection(try Self.collection()), .records(collection: "notes", [record]), .end(collections: 1, records: 1)]
        let text = items.map { String(decoding: ExportRoutes.lines($0), as: UTF8.self) }.joined()
        #expect(text == Self.goldenExport)
    }

    static let goldenCollection = #"{"name":"notes","fields":{"title":{"type":"string","required":true,"maxLength":80},"n":{"type":"integer","indexed":true}},"rules":{"read":{"role":"viewer","own":false},"create":{"role":"member","own":false},"update":{"role":"member","own":false},"delete":{"role":"member","own":false}},"id":"01234567-89ab-cdef-fedc-ba9876543210","version":2,"createdAt":"2026-12-05T13:02:08.123Z","updatedAt":"2026-12-05T13:02:08.123Z"}"#
    /// Identity models list their keys alphabetically; every representation escapes `<`, `>`, `&`.
    static let goldenTenant = #"{"createdAt":"2026-12-05T13:02:08.123Z","id":"01234567-89ab-cdef-fedc-ba9876543210","name":"Acme \u003cLtd\u003e","requireVerifiedEmail":false,"slug":"acme","updatedAt":"2026-12-05T13:02:08.123Z"}"#
    static let goldenAPIKey = #"{"createdAt":"2026-12-05T13:02:08.123Z","createdBy":"01234567-89ab-cdef-fedc-ba9876543210","id":"01234567-89ab-cdef-fedc-ba9876543210","lastUsedAt":"2026-12-05T13:02:08.123Z","name":"ci \u0026 deploy","prefix":"ak_0123","role":"member"}"#
    static let goldenAPIKeyList = #"{"data":[{"createdAt":"2026-12-05T13:02:08.123Z","createdBy":"01234567-89ab-cdef-fedc-ba9876543210","id":"01234567-89ab-cdef-fedc-ba9876543210","lastUsedAt":"2026-12-05T13:02:08.123Z","name":"ci \u0026 deploy","prefix":"ak_0123","role":"member","secret":"s3cret"}]}"#
    static let goldenProblem = #"{"detail":"2 fields are not valid","errors":[{"field":"/title","reason":"is required"},{"field":"/n","reason":"must be \u003c 10"}],"requestId":"req-1","status":422,"title":"Validation failed","type":"/problems/validation-failed"}"#
    static let goldenBareProblem = #"{"requestId":"req-2","status":404,"title":"Not found","type":"/problems/not-found"}"#
    static let goldenExport = [
        #"{"type":"tenant","tenant":{"id":"01234567-89ab-cdef-fedc-ba9876543210","name":"Acme \u003cLtd\u003e","slug":"acme","createdAt":"2026-12-05T13:02:08.123Z"}}"#,
        #"{"type":"collection","version":2,"collection":{"name":"notes","fields":{"title":{"type":"string","required":true,"maxLength":80},"n":{"type":"integer","indexed":true}},"rules":{"read":{"role":"viewer","own":false},"create":{"role":"member","own":false},"update":{"role":"member","own":false},"delete":{"role":"member","own":false}}}}"#,
        #"{"type":"record","collection":"notes","record":{"id":"01234567-89ab-cdef-fedc-ba9876543210","version":1,"createdAt":"2026-12-05T13:02:08.123Z","createdBy":{"type":"user","id":"01234567-89ab-cdef-fedc-ba9876543210"},"updatedAt":"2026-12-05T13:02:08.123Z","updatedBy":{"type":"apikey","id":"01234567-89ab-cdef-fedc-ba9876543210"},"data":{"title":"a\nb"}}}"#,
        #"{"type":"end","collections":1,"records":1}"#,
    ].map { $0 + "\n" }.joined()
}
