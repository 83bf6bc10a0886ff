import AtriumCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PostgresPool
import Testing

@Suite struct RecordTests {
    @Test func createReadReplacePatchAndDeleteWithETags() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            try await client.createTasks(owner.accessToken)
            let created = try await client.createRecord(owner.accessToken, ["title": "Write tests", "priority": 3, "code": "ATR-1", "tags": ["a"]])
            #expect(created.status == .created)
            let id = try #require(created.string("id"))
            #expect(created.headers[.location] == "/v1/collections/tasks/records/\(id)")
            #expect(created.headers[.eTag] == "\"1\"")
            #expect(created.string("data.status") == "open", "defaults fill in")
            #expect(created.string("createdBy.type") == "user")
            #expect(created.string("createdBy.id") == owner.userID)
            let path = "/v1/collections/tasks/records/\(id)"

            let read = try await client.call(.get, path, token: owner.accessToken)
            #expect(read.headers[.eTag] == "\"1\"")
            let notModified = try await client.call(.get, path, token: owner.accessToken, headers: [.ifNoneMatch: "\"1\""])
            #expect(notModified.status == .notModified)
            #expect(notModified.body.isEmpty)

            // PUT replaces; a stale If-Match is refused and changes nothing.
            let stale = try await client.call(.put, path, token: owner.accessToken, json: ["title": "x"], headers: [.ifMatch: "\"7\""])
            #expect(stale.status == .preconditionFailed)
            let replaced = try await client.call(.put, path, token: owner.accessToken, json: ["title": "Replaced", "priority": 2], headers: [.ifMatch: "\"1\""])
            #expect(replaced.status == .ok)
            #expect(replaced.headers[.eTag] == "\"2\"")
            #expect(replaced["data.code"] == nil, "PUT replaces the whole data")
            #expect(replaced.string("data.status") == "open")

            // PATCH is a JSON Merge Patch: null removes.
            let patched = try await client.raw(.patch, path, token: owner.accessToken, body: #"{"priority": null, "tags": ["x", "y"]}"#, contentType: "application/merge-patch+json")
            #expect(patched.status == .ok)
            #expect(patched["data.priority"] == nil)
            #expect((patched["data.tags"] as? [String]) == ["x", "y"])
            #expect(patched["version"] as? Int == 3)
            // A patch that changes nothing keeps the version.
            let same = try await client.raw(.patch, path, token: owner.accessToken, body: #"{"title": "Replaced"}"#, contentType: "application/merge-patch+json")
            #expect(same["version"] as? Int == 3)
            #expect(try await client.raw(.patch, path, token: owner.accessToken, body: #"{"version": 9}"#).errorFields == ["/version"])

            #expect(try await client.call(.delete, path, token: owner.accessToken, headers: [.ifMatch: "\"2\""]).status == .preconditionFailed)
            #expect(try await client.call(.delete, path, token: owner.accessToken, headers: [.ifMatch: "\"3\""]).status == .noContent)
            #expect(try await client.call(.get, path, token: owner.accessToken).status == .notFound)
            #expect(try await client.call(.get, "/v1/collections/tasks/records/not-an-id", token: owner.accessToken).status == .notFound)
        }
    }

    @Test func validationListsEveryFailingFieldAndRefusesUnknownAndSystemFields() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            try await client.createTasks(owner.accessToken)
            let response = try await client.createRecord(owner.accessToken, [
                "priority": 9, "score": "high", "code": "nope", "tags": ["ok", 3], "due": "2030-02-30", "done": "yes",
                "status": "later", "id": "mine", "surprise": 1,
            ])
            #expect(response.status == .unprocessableContent)
            #expect(response.headers[.contentType] == "application/problem+json")
            #expect(response.errorFields == ["/title", "/priority", "/score", "/code", "/tags", "/due", "/done", "/status", "/id", "/surprise"])
            let integers = try await client.createRecord(owner.accessToken, ["title": "t", "priority": 2.5])
            #expect(integers.errorFields == ["/priority"])
            #expect(try await client.createRecord(owner.accessToken, ["title": "t", "priority": 2.0]).status == .created)
        }
    }

    @Test func awkwardJSONIsHandledDeliberatelyNeverA500() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            try await client.createTasks(owner.accessToken)
            let path = "/v1/collections/tasks/records"
            let bodies: [(String, HTTPResponse.Status)] = [
                (#"{"title": "a", "title": "b"}"#, .badRequest),
                (#"{"title": "nul \u0000 here"}"#, .badRequest),
                (#"{"title": "lone \ud800 surrogate"}"#, .badRequest),
                (#"{"title": "t", "score": 1e400}"#, .badRequest),
                (#"{"title": "t", "score": NaN}"#, .badRequest),
                (#"{"title": "t", "score": Infinity}"#, .badRequest),
                (#"{"title": "t", "score": 01}"#, .badRequest),
                (#"{"title": "t",}"#, .badRequest),
                (#"{"title": "t"} trailing"#, .badRequest),
                (String(repeating: "[", count: 200) + String(repeating: "]", count: 200), .badRequest),
                (#"{"title": "t", "meta": "# + String(repeating: "{\"a\":", count: 100) + "1" + String(repeating: "}", count: 100) + "}", .badRequest),
                ("[1, 2]", .unprocessableContent),
                ("\"just a string\"", .unprocessableContent),
                (#"{"title": "emoji 🎉 and \ud83c\udf89"}"#, .created),
                (#"{"title": "t", "score": 1.50, "meta": {"nested": [1, "two", null, true]}}"#, .created),
            ]
            for (body, expected) in bodies {
                let response = try await client.raw(.post, path, token: owner.accessToken, body: body)
                #expect(response.status == expected, "\(body.prefix(60)) got \(response.status): \(response.body.prefix(200))")
                #expect(response.status != .internalServerError)
            }
            // Invalid UTF-8 in the body.
            var headers: HTTPFields = [.contentType: "application/json", .authorization: "Bearer \(owner.accessToken)"]
            headers[.init("X-Forwarded-For")!] = "192.0.2.1"
            let invalid = try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(bytes: Array(#"{"title": ""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8))) { $0.status }
            #expect(invalid == .badRequest)
            // What was accepted is what is stored: the number keeps its literal form.
            let stored = try await app.database.withSuperuser { admin in
                try await admin.query("SELECT data->>'score', data->'meta'->'nested'->>1 FROM atrium.records WHERE data ? 'meta'").single!.decode((String, String).self)
            }
            #expect(stored.0 == "1.50" && stored.1 == "two")
        }
    }

    /// GET sends the stored JSON text without parsing it; the bytes must be exactly what the
    /// create answered with (serialized from the parsed row), whatever the data holds.
    @Test func readSendsTheSameBytesAsTheWriteAnswered() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            try await client.createTasks(owner.accessToken)
            let bodies = [
                #"{"title": "quotes \" and \\ back\/slash", "notes": "tab\tnew\nline\rcr \b\f \u0001\u001f <b>&amp;</b>"}"#,
                #"{"title": "unicode é 漢字 🎉 \u2028 \u00e9", "score": 1.50, "tags": ["a b", " lead", "trail ", ""]}"#,
                #"{"title": "numbers", "score": -0.000120, "priority": 5, "meta": {"z": [1e3, -2E-2, 0, true, false, null], "a": {"": " : , "}, "long key name": "x"}}"#,
                #"{"title": "   spaced   ", "meta": [ ]}"#,
            ]
            for body in bodies {
                let created = try await client.raw(.post, "/v1/collections/tasks/records", token: owner.accessToken, body: body)
                #expect(created.status == .created, "\(created.body)")
                let path = try #require(created.headers[.location])
                let read = try await client.call(.get, path, token: owner.accessToken)
                #expect(read.status == .ok)
                #expect(read.headers[.contentType] == "application/json")
                #expect(read.headers[.eTag] == created.headers[.eTag])
                #expect(read.body == created.body)
            }
        }
    }

    @Test func batchesAreAllOrNothing() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            try await client.createTasks(owner.accessToken)
            let path = "/v1/collections/tasks/records/batch"
            let good = (0..<100).map { ["title": "task \($0)", "priority": $0 % 5 + 1] as [String: Any] }
            let created = try await client.call(.post, path, token: owner.accessToken, json: ["records": good])
            #expect(created.status == .created)
            #expect(created.dataIDs.count == 100)
            #expect(((created["data"] as? [[String: Any]])?.last?["data"] as? [String: Any])?["title"] as? String == "task 99")
            #expect(try await client.call(.post, path, token: owner.accessToken, json: ["records": good + [["title": "one too many"]]]).status == .unprocessableContent)

            let oneBad = try await client.call(.post, path, token: owner.accessToken, json: ["records": [["title": "fine"], ["title": "also fine", "priority": 0]]])
            #expect(oneBad.errorFields == ["/records/1/priority"])
            let dupes = try await client.call(.post, path, token: owner.accessToken, json: ["records": [["title": "a", "code": "DUP-1"], ["title": "b", "code": "DUP-1"]]])
            #expect(dupes.errorFields == ["/records/1/code"])
            _ = try await client.createRecord(owner.accessToken, ["title": "holder", "code": "TAK-1"])
            let clash = try await client.call(.post, path, token: owner.accessToken, json: ["records": [["title": "a", "code": "NEW-1"], ["title": "b", "code": "TAK-1"]]])
            #expect(clash.errorFields == ["/records/1/code"])
            let count = try await client.call(.get, "/v1/collections/tasks/records?count=exact&limit=1", token: owner.accessToken)
            #expect(count["count"] as? Int == 101, "nothing from the failed batches was kept")
        }
    }

    @Test func idempotencyKeysReplayTheFirstResponse() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            try await client.createTasks(owner.accessToken)
            let key: HTTPFields = [.init("Idempotency-Key")!: "order-42"]
            let first = try await client.call(.post, "/v1/collections/tasks/records", token: owner.accessToken, json: ["title": "once"], headers: key)
            #expect(first.status == .created)
            #expect(first.headers[.init("Idempotent-Replayed")!] == nil)
            let second = try await client.call(.post, "/v1/collections/tasks/records", token: owner.accessToken, json: ["title": "once"], headers: key)
            #expect(second.status == .created)
            #expect(second.headers[.init("Idempotent-Replayed")!] == "true")
            #expect(second.string("id") == first.string("id"))
            #expect(second.headers[.location] == first.headers[.location])
            #expect(second.headers[.eTag] == first.headers[.eTag])
            let different = try await client.call(.post, "/v1/collections/tasks/records", token: owner.accessToken, json: ["title": "twice"], headers: key)
            #expect(different.status == .unprocessableContent)
            #expect(different.errorFields == ["Idempotency-Key"])

            // Concurrent retries of one request create one record.
            let concurrentKey: HTTPFields = [.init("Idempotency-Key")!: "burst"]
            let ids = try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        try await client.call(.post, "/v1/collections/tasks/records", token: owner.accessToken, json: ["title": "burst"], headers: concurrentKey).string("id")
                    }
                }
                return try await group.reduce(into: Set<String?>()) { $0.insert($1) }
            }
            #expect(ids.count == 1 && ids.first! != nil)
            // A validation failure is not remembered: the key can be used once the body is fixed.
            let invalidKey: HTTPFields = [.init("Idempotency-Key")!: "fix-me"]
            #expect(try await client.call(.post, "/v1/collections/tasks/records", token: owner.accessToken, json: ["priority": 1], headers: invalidKey).status == .unprocessableContent)
            #expect(try await client.call(.post, "/v1/collections/tasks/records", token: owner.accessToken, json: ["title": "fixed"], headers: invalidKey).status == .created)
            let count = try await client.call(.get, "/v1/collections/tasks/records?count=exact&limit=1", token: owner.accessToken)
            #expect(count["count"] as? Int == 3)
        }
    }
}
