import AtriumCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import PostgresPool
import Testing

/// Who may do what with collections and records: roles, "own" rules, API keys, other tenants.
@Suite struct DataAccessTests {
    /// A list page is written from PostgreSQL's text, as GET writes one record: the page must
    /// be its records exactly as GET returns them (GET is pinned to the parsed representation).
    @Test func aListPageIsItsRecordsAsGETWritesThem() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("pages@example.com", tenant: "Pages")
            try await client.createTasks(owner.accessToken)
            let bodies: [[String: Any]] = [
                ["title": "<b>Fish & chips</b>", "score": 1.5e3, "tags": ["a", "é"], "meta": ["nested": [1, nil, "x\n"]]],
                ["title": "plain", "done": false, "due": "2030-02-28"],
                ["title": "\u{1F600} emoji", "notes": "line\nbreak\t\"quoted\""],
            ]
            for body in bodies {
                #expect(try await client.createRecord(owner.accessToken, body).status == .created)
            }
            let first = try await client.call(.get, "/v1/collections/tasks/records?limit=2&count=exact", token: owner.accessToken)
            let cursor = try #require(first.string("nextCursor"))
            var expected = #"{"data":["#
            for (index, id) in first.dataIDs.enumerated() {
                let one = try await client.call(.get, "/v1/collections/tasks/records/\(id)", token: owner.accessToken)
                expected += (index > 0 ? "," : "") + one.body
            }
            expected += #"],"nextCursor":"\#(cursor)","count":3}"#
            #expect(first.body == expected)

            let rest = try await client.call(.get, "/v1/collections/tasks/records?cursor=\(cursor)", token: owner.accessToken)
            let last = try await client.call(.get, "/v1/collections/tasks/records/\(try #require(rest.dataIDs.first))", token: owner.accessToken)
            #expect(rest.body == #"{"data":["# + last.body + #"],"nextCursor":null}"#)

            // Sparse fieldsets: only the fields asked for, the system fields always.
            let sparse = try await client.call(.get, "/v1/collections/tasks/records?fields=title,tags", token: owner.accessToken)
            let items = try #require(sparse["data"] as? [[String: Any]])
            #expect(items.count == 3)
            for item in items {
                let data = try #require(item["data"] as? [String: Any])
                #expect(Set(data.keys).isSubset(of: ["title", "tags"]) && data["title"] != nil, "\(data)")
                #expect(item["version"] as? Int == 1 && item["createdBy"] != nil)
            }
            #expect(sparse.body.contains(#""title":"\u003cb\u003eFish \u0026 chips\u003c/b\u003e""#))
        }
    }

    @Test func viewersReadButNeverWrite() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            try await client.createTasks(owner.accessToken)
            let viewer = try await client.addMember("viewer@example.com", role: "viewer", by: owner)
            let id = try #require(try await client.createRecord(owner.accessToken, ["title": "mine"]).string("id"))
            let record = "/v1/collections/tasks/records/\(id)"
            #expect(try await client.call(.get, record, token: viewer.accessToken).status == .ok)
            #expect(try await client.call(.get, "/v1/collections/tasks/records", token: viewer.accessToken).dataIDs == [id])
            #expect(try await client.call(.get, "/v1/collections/tasks", token: viewer.accessToken).status == .ok)
            let writes: [(HTTPRequest.Method, String, [String: Any]?)] = [
                (.post, "/v1/collections/tasks/records", ["title": "no"]),
                (.post, "/v1/collections/tasks/records/batch", ["records": [["title": "no"]]]),
                (.put, record, ["title": "no"]),
                (.patch, record, ["title": "no"]),
                (.delete, record, nil),
                (.post, "/v1/collections", ["name": "mine", "fields": ["a": ["type": "string"]]]),
                (.patch, "/v1/collections/tasks", ["fields": ["extra": ["type": "string"]]]),
                (.delete, "/v1/collections/tasks", nil),
                (.get, "/v1/audit", nil),
                (.get, "/v1/tenant/export", nil),
            ]
            for (method, path, body) in writes {
                let response = try await client.call(method, path, token: viewer.accessToken, json: body)
                #expect(response.status == .forbidden, "\(method) \(path): \(response.status)")
            }
            let after = try await client.call(.get, record, token: owner.accessToken)
            #expect(after["version"] as? Int == 1)
            #expect(try await client.call(.get, "/v1/collections/tasks/records?count=exact", token: owner.accessToken)["count"] as? Int == 1)
        }
    }

    @Test func ownRulesHoldForMembersAndKeysWhileAdminsSeeEverything() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            let created = try await client.call(.post, "/v1/collections", token: owner.accessToken, json: [
                "name": "diary",
                "fields": ["entry": ["type": "text", "required": true]],
                "rules": [
                    "read": ["role": "member", "own": true],
                    "create": ["role": "member"],
                    "update": ["role": "member", "own": true],
                    "delete": ["role": "admin"],
                ],
            ])
            #expect(created.status == .created)
            let ann = try await client.addMember("ann@example.com", role: "member", by: owner)
            let ben = try await client.addMember("ben@example.com", role: "member", by: owner)
            let viewer = try await client.addMember("vic@example.com", role: "viewer", by: owner)
            let admin = try await client.addMember("ada@example.com", role: "admin", by: owner)
            let key = try #require(try await client.call(.post, "/v1/api-keys", token: owner.accessToken, json: ["name": "sync", "role": "member"]).string("secret"))

            let annsID = try #require(try await client.createRecord(ann.accessToken, ["entry": "ann's"], collection: "diary").string("id"))
            let bensID = try #require(try await client.createRecord(ben.accessToken, ["entry": "ben's"], collection: "diary").string("id"))
            let keysRecord = try await client.createRecord(key, ["entry": "the key's"], collection: "diary")
            let keysID = try #require(keysRecord.string("id"))
            #expect((keysRecord["createdBy"] as? [String: Any])?["type"] as? String == "apikey")

            let list = "/v1/collections/diary/records"
            #expect(Set(try await client.call(.get, list, token: ann.accessToken).dataIDs) == [annsID])
            #expect(Set(try await client.call(.get, list, token: ben.accessToken).dataIDs) == [bensID])
            #expect(Set(try await client.call(.get, list, token: key).dataIDs) == [keysID])
            #expect(try await client.call(.get, list + "?count=exact", token: ann.accessToken)["count"] as? Int == 1)
            #expect(try await client.call(.get, list + "?filter[id]=\(bensID)", token: ann.accessToken).dataIDs == [])
            #expect(Set(try await client.call(.get, list, token: admin.accessToken).dataIDs) == [annsID, bensID, keysID])
            #expect(Set(try await client.call(.get, list, token: owner.accessToken).dataIDs) == [annsID, bensID, keysID])
            #expect(try await client.call(.get, list, token: viewer.accessToken).status == .forbidden)

            // Someone else's record does not exist for a member, whatever the method.
            let bens = "\(list)/\(bensID)"
            #expect(try await client.call(.get, bens, token: ann.accessToken).status == .notFound)
            #expect(try await client.call(.patch, bens, token: ann.accessToken, json: ["entry": "hijacked"]).status == .notFound)
            #expect(try await client.call(.put, bens, token: key, json: ["entry": "hijacked"]).status == .notFound)
            #expect(try await client.call(.delete, bens, token: ann.accessToken).status == .forbidden, "deleting needs an admin at all")
            #expect(try await client.call(.get, bens, token: owner.accessToken).string("data.entry") == "ben's")

            // One's own: readable and changeable, not deletable below admin.
            #expect(try await client.call(.patch, "\(list)/\(annsID)", token: ann.accessToken, json: ["entry": "ann's, edited"]).status == .ok)
            #expect(try await client.call(.patch, "\(list)/\(keysID)", token: key, json: ["entry": "edited by key"]).status == .ok)
            #expect(try await client.call(.delete, "\(list)/\(annsID)", token: ann.accessToken).status == .forbidden)
            // Admins look after everyone's records.
            #expect(try await client.call(.patch, bens, token: admin.accessToken, json: ["entry": "moderated"]).status == .ok)
            #expect(try await client.call(.delete, bens, token: admin.accessToken).status == .noContent)
            #expect(try await client.call(.get, "\(list)/\(annsID)", token: owner.accessToken).string("data.entry") == "ann's, edited")

            // With an update rule that is "own" but reads that are not, others' records are visible but not changeable.
            let patched = try await client.call(.patch, "/v1/collections/diary", token: owner.accessToken, json: ["rules": ["read": ["role": "viewer", "own": false]]])
            #expect(patched.status == .ok)
            try await waitUntil { try await client.call(.get, "\(list)/\(annsID)", token: ben.accessToken).status == .ok }
            let refused = try await client.call(.patch, "\(list)/\(annsID)", token: ben.accessToken, json: ["entry": "not mine"])
            #expect(refused.status == .forbidden)
            #expect(try await client.call(.get, "\(list)/\(annsID)", token: owner.accessToken).string("data.entry") == "ann's, edited")
        }
    }

    @Test func apiKeysActWithinTheirRoleOnData() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            try await client.createTasks(owner.accessToken)
            let reader = try #require(try await client.call(.post, "/v1/api-keys", token: owner.accessToken, json: ["name": "r", "role": "viewer"]).string("secret"))
            let writer = try #require(try await client.call(.post, "/v1/api-keys", token: owner.accessToken, json: ["name": "w", "role": "member"]).string("secret"))
            let adminKey = try #require(try await client.call(.post, "/v1/api-keys", token: owner.accessToken, json: ["name": "a", "role": "admin"]).string("secret"))
            #expect(try await client.createRecord(reader, ["title": "no"]).status == .forbidden)
            let created = try await client.createRecord(writer, ["title": "by key"])
            #expect(created.status == .created)
            #expect(try await client.call(.get, "/v1/collections/tasks/records", token: reader).dataIDs == [created.string("id")!])
            #expect(try await client.call(.post, "/v1/collections", token: writer, json: ["name": "x", "fields": ["a": ["type": "string"]]]).status == .forbidden)
            #expect(try await client.call(.get, "/v1/audit", token: writer).status == .forbidden)
            #expect(try await client.call(.post, "/v1/collections", token: adminKey, json: ["name": "x", "fields": ["a": ["type": "string"]]]).status == .created)
            #expect(try await client.call(.get, "/v1/audit", token: adminKey).status == .ok)
        }
    }

    @Test func anotherTenantsCollectionsAndRecordsAreNotFoundAndUntouched() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let alice = try await client.signUp("alice@example.com", tenant: "Alpha")
            let bob = try await client.signUp("bob@example.com", tenant: "Beta")
            try await client.createTasks(bob.accessToken)
            #expect(try await client.call(.post, "/v1/collections", token: bob.accessToken, json: ["name": "secrets", "fields": ["s": ["type": "string"]]]).status == .created)
            let bobsID = try #require(try await client.createRecord(bob.accessToken, ["title": "bob's", "code": "BOB-1"]).string("id"))
            let aliceKey = try #require(try await client.call(.post, "/v1/api-keys", token: alice.accessToken, json: ["name": "a", "role": "admin"]).string("secret"))
            let before = try await Self.snapshot(app, tenant: bob.tenantID)

            func attempts(_ collection: String) -> [(HTTPRequest.Method, String, [String: Any]?)] {
                let record = "/v1/collections/\(collection)/records/\(bobsID)"
                return [
                    (.get, "/v1/collections/secrets", nil),
                    (.patch, "/v1/collections/secrets", ["fields": ["t": ["type": "string"]]]),
                    (.delete, "/v1/collections/secrets", nil),
                    (.delete, "/v1/collections/secrets?force=true", nil),
                    (.get, "/v1/collections/secrets/records", nil),
                    (.post, "/v1/collections/secrets/records", ["s": "planted"]),
                    (.post, "/v1/collections/secrets/records/batch", ["records": [["s": "planted"]]]),
                    (.get, record, nil),
                    (.put, record, ["title": "overwritten"]),
                    (.patch, record, ["title": "patched"]),
                    (.delete, record, nil),
                ]
            }
            for credential in [alice.accessToken, aliceKey] {
                for (method, path, body) in attempts("tasks") + attempts("secrets") {
                    let response = try await client.call(method, path, token: credential, json: body)
                    #expect(response.status == .notFound, "\(method) \(path): \(response.status)")
                }
            }
            // Alice has her own "tasks": Bob's ids are still not found through it, nor do his values clash with hers.
            try await client.createTasks(alice.accessToken)
            for (method, path, body) in attempts("tasks").filter({ $0.1.contains(bobsID) }) {
                #expect(try await client.call(method, path, token: alice.accessToken, json: body).status == .notFound, "\(method) \(path)")
            }
            #expect(try await client.createRecord(alice.accessToken, ["title": "alice's", "code": "BOB-1"]).status == .created)
            #expect(try await client.call(.get, "/v1/collections/tasks/records?filter[id]=\(bobsID)", token: alice.accessToken).dataIDs == [])
            // References cannot point into another tenant either.
            let linked = try await client.call(.post, "/v1/collections", token: alice.accessToken, json: [
                "name": "links", "fields": ["task": ["type": "reference", "collection": "tasks"]],
            ])
            #expect(linked.status == .created)
            let pointing = try await client.createRecord(alice.accessToken, ["task": bobsID], collection: "links")
            #expect(pointing.status == .unprocessableContent && pointing.errorFields == ["/task"])
            // Her audit log and export show nothing of Bob's.
            let audit = try await client.call(.get, "/v1/audit?limit=200", token: alice.accessToken)
            #expect(!audit.body.contains(bobsID) && !audit.body.contains("bob's"))
            let export = try await client.call(.get, "/v1/tenant/export", token: alice.accessToken)
            #expect(export.status == .ok && !export.body.contains(bobsID) && !export.body.contains("secrets"))
            #expect(try await Self.snapshot(app, tenant: bob.tenantID) == before)
        }
    }

    /// Tenant B's collections, records, values and audit, as the superuser sees them.
    static func snapshot(_ app: TestApp, tenant: String) async throws -> [String] {
        try await app.database.withSuperuser { admin in
            let rows = try await admin.query("""
                SELECT 'collection ' || name || ' ' || version FROM atrium.collections WHERE tenant_id = \(tenant)::uuid
                UNION ALL SELECT 'record ' || record_id || ' ' || version || ' ' || data::text FROM atrium.records WHERE tenant_id = \(tenant)::uuid
                UNION ALL SELECT 'value ' || record_id || ' ' || field || ' ' || coalesce(text_value, num_value::text, '') FROM atrium.record_values WHERE tenant_id = \(tenant)::uuid
                UNION ALL SELECT 'unique ' || record_id || ' ' || value_key FROM atrium.record_unique_values WHERE tenant_id = \(tenant)::uuid
                UNION ALL SELECT 'audit ' || audit_id FROM atrium.record_audit WHERE tenant_id = \(tenant)::uuid
                ORDER BY 1
                """)
            return try rows.map { try $0.decode(String.self, column: 0) }
        }
    }
}
