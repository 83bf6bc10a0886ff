import AtriumCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PostgresPool
import Testing

@Suite struct CollectionTests {
    @Test func adminsManageCollectionsAndEveryoneReadsTheirDefinitions() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            let viewer = try await client.addMember("viewer@example.com", role: "viewer", by: owner)
            let member = try await client.addMember("member@example.com", role: "member", by: owner)
            let created = try await client.createTasks(owner.accessToken)
            #expect(created.headers[.location] == "/v1/collections/tasks")
            #expect(created["version"] as? Int == 1)
            #expect(try await client.call(.get, "/v1/collections/tasks", token: viewer.accessToken).string("name") == "tasks")
            #expect((try await client.call(.get, "/v1/collections", token: viewer.accessToken)["data"] as? [Any])?.count == 1)
            #expect(try await client.call(.post, "/v1/collections", token: member.accessToken, json: ["name": "other"]).status == .forbidden)
            #expect(try await client.call(.patch, "/v1/collections/tasks", token: member.accessToken, json: ["rules": [:]]).status == .forbidden)
            #expect(try await client.call(.delete, "/v1/collections/tasks", token: member.accessToken).status == .forbidden)
            let again = try await client.call(.post, "/v1/collections", token: owner.accessToken, json: ["name": "tasks"])
            #expect(again.status == .conflict)
            #expect(again.string("reason") == "name_taken")
            #expect(try await client.call(.get, "/v1/collections/nope", token: viewer.accessToken).status == .notFound)
        }
    }

    @Test func invalidDefinitionsAreRefusedWithEveryProblem() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            let response = try await client.call(.post, "/v1/collections", token: owner.accessToken, json: [
                "name": "Bad Name",
                "fields": [
                    "id": ["type": "string"],
                    "a": ["type": "nope"],
                    "b": ["type": "string", "pattern": "(a)\\1"],
                    "c": ["type": "integer", "min": 5, "max": 1],
                    "d": ["type": "reference", "collection": "missing"],
                    "e": ["type": "enum", "values": []],
                    "f": ["type": "text", "unique": true],
                    "g": ["type": "integer", "default": "x"],
                    "h": ["type": "string", "colour": "red"],
                ],
                "rules": ["read": ["role": "god"], "smite": [:]],
                "extra": true,
            ])
            #expect(response.status == .unprocessableContent)
            #expect(response.errorFields == [
                "/name", "/extra", "/fields/id", "/fields/a/type", "/fields/b/pattern", "/fields/c/min", "/fields/e/values",
                "/fields/f/unique", "/fields/g/default", "/fields/h/colour", "/rules/read/role", "/rules/smite",
            ])
            // A reference to a collection that does not exist is caught once the rest is valid.
            let dangling = try await client.call(.post, "/v1/collections", token: owner.accessToken, json: [
                "name": "notes", "fields": ["task": ["type": "reference", "collection": "missing"]],
            ])
            #expect(dangling.errorFields == ["/fields/task/collection"])
        }
    }

    @Test func patternsAreCostedWhenTheCollectionIsDefined() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            // 541 steps per character: affordable on 400 characters, not on a string's default 1000.
            let costly = "(a?){60}(b?){60}(c?){60}"
            let refused = try await client.call(.post, "/v1/collections", token: owner.accessToken, json: [
                "name": "notes",
                "fields": [
                    "a": ["type": "text", "pattern": "^x+$"],
                    "b": ["type": "string", "pattern": costly],
                    "c": ["type": "string", "pattern": "((a?){100}){19}b"],
                ],
            ])
            #expect(refused.status == .unprocessableContent)
            #expect(refused.errorFields == ["/fields/a/maxLength", "/fields/b/pattern", "/fields/c/pattern"])

            // Each affordable alone, two together are over the budget of one record.
            let together = try await client.call(.post, "/v1/collections", token: owner.accessToken, json: [
                "name": "notes",
                "fields": ["a": ["type": "string", "maxLength": 400, "pattern": costly], "b": ["type": "text", "maxLength": 400, "pattern": costly]],
            ])
            #expect(together.errorFields == ["/fields"])

            let created = try await client.call(.post, "/v1/collections", token: owner.accessToken, json: [
                "name": "notes",
                "fields": ["code": ["type": "text", "maxLength": 400, "pattern": "^" + costly + "$"]],
            ])
            #expect(created.status == .created, "\(created.body)")
            #expect(try await client.createRecord(owner.accessToken, ["code": "aabbcc"], collection: "notes").status == .created)
            let mismatch = try await client.createRecord(owner.accessToken, ["code": "abcd"], collection: "notes")
            #expect(mismatch.errorFields == ["/code"])
            // 400 characters, but more code points than that: refused before matching.
            let combining = try await client.createRecord(owner.accessToken, ["code": String(repeating: "a\u{301}", count: 300)], collection: "notes")
            #expect(combining.status == .unprocessableContent)
            #expect(combining.body.contains("code points"), "\(combining.body)")
        }
    }

    @Test func schemaChangesLoosenFreelyAndTightenOnlyWhenEveryRecordFits() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            try await client.createTasks(owner.accessToken)
            let long = try await client.createRecord(owner.accessToken, ["title": String(repeating: "x", count: 80), "code": "AAA-1"])
            let short = try await client.createRecord(owner.accessToken, ["title": "short", "code": "AAA-2"])
            let longID = try #require(long.string("id"))

            // Tightening that a record breaks is refused, naming the record.
            let tighter = try await client.call(.patch, "/v1/collections/tasks", token: owner.accessToken, json: ["fields": ["title": ["maxLength": 50]]])
            #expect(tighter.status == .unprocessableContent)
            #expect(tighter.errorFields == ["/records/\(longID)/title"])
            // A required field without a default cannot be added while records lack it…
            let required = try await client.call(.patch, "/v1/collections/tasks", token: owner.accessToken, json: ["fields": ["owner": ["type": "string", "required": true]]])
            #expect(required.status == .unprocessableContent)
            #expect(required.errorFields.count == 2)
            // …but with a default it is filled in, and the records' versions move on.
            let withDefault = try await client.call(.patch, "/v1/collections/tasks", token: owner.accessToken, json: [
                "fields": ["owner": ["type": "string", "required": true, "default": "nobody"], "notes": NSNull()],
            ])
            #expect(withDefault.status == .ok)
            #expect(withDefault["version"] as? Int == 2)
            let filled = try await client.call(.get, "/v1/collections/tasks/records/\(short.string("id")!)", token: owner.accessToken)
            #expect(filled.string("data.owner") == "nobody")
            #expect(filled["version"] as? Int == 2)
            #expect(try await client.createRecord(owner.accessToken, ["title": "n", "notes": "gone"]).errorFields == ["/notes"])
            // Loosening passes.
            #expect(try await client.call(.patch, "/v1/collections/tasks", token: owner.accessToken, json: ["fields": ["title": ["maxLength": 500]]]).status == .ok)
            // Making a field unique checks existing duplicates.
            _ = try await client.createRecord(owner.accessToken, ["title": "same", "priority": 1])
            _ = try await client.createRecord(owner.accessToken, ["title": "same", "priority": 1])
            let unique = try await client.call(.patch, "/v1/collections/tasks", token: owner.accessToken, json: ["fields": ["title": ["unique": true]]])
            #expect(unique.status == .unprocessableContent)
            #expect(unique.errorFields.count == 1)
        }
    }

    @Test func deletingACollectionNeedsForceWhenItHasRecordsAndIsRefusedWhileReferenced() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            try await client.createTasks(owner.accessToken)
            _ = try await client.call(.post, "/v1/collections", token: owner.accessToken, json: [
                "name": "comments", "fields": ["task": ["type": "reference", "collection": "tasks", "required": true], "body": ["type": "text"]],
            ])
            let task = try await client.createRecord(owner.accessToken, ["title": "t"])
            let comment = try await client.createRecord(owner.accessToken, ["task": task.string("id")!.uppercased(), "body": "hi"], collection: "comments")
            #expect(comment.status == .created)
            #expect(comment.string("data.task") == task.string("id"), "ids are stored lower-case")
            #expect(try await client.createRecord(owner.accessToken, ["task": UUID().uuidString], collection: "comments").errorFields == ["/task"])
            // A referenced record cannot go.
            let referenced = try await client.call(.delete, "/v1/collections/tasks/records/\(task.string("id")!)", token: owner.accessToken)
            #expect(referenced.status == .conflict)
            #expect(referenced.string("reason") == "referenced")
            #expect(try await client.call(.delete, "/v1/collections/tasks?force=true", token: owner.accessToken).string("reason") == "referenced")
            #expect(try await client.call(.delete, "/v1/collections/comments", token: owner.accessToken).string("reason") == "not_empty")
            #expect(try await client.call(.delete, "/v1/collections/comments?force=true", token: owner.accessToken).status == .noContent)
            #expect(try await client.call(.delete, "/v1/collections/tasks/records/\(task.string("id")!)", token: owner.accessToken).status == .noContent)
        }
    }
}
