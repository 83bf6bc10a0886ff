import AtriumCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import PostgresPool
import Testing

/// The record audit log, the NDJSON export, and what deleting a tenant leaves behind.
@Suite struct AuditExportTests {
    static func requestID(_ id: String) -> HTTPFields { [.init("X-Request-ID")!: id] }

    @Test func everyWriteIsAuditedWithWhoWhenWhatAndTheRequest() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            try await client.createTasks(owner.accessToken)
            let key = try await client.call(.post, "/v1/api-keys", token: owner.accessToken, json: ["name": "sync", "role": "member"])
            let keySecret = try #require(key.string("secret"))
            let keyID = try #require(key.string("id"))

            let created = try await client.call(.post, "/v1/collections/tasks/records", token: owner.accessToken, json: ["title": "first", "priority": 2], headers: Self.requestID("req-create"))
            let id = try #require(created.string("id"))
            let record = "/v1/collections/tasks/records/\(id)"
            #expect(try await client.call(.patch, record, token: owner.accessToken, json: ["priority": 4, "notes": "hi"], headers: Self.requestID("req-patch")).status == .ok)
            let other = try #require(try await client.createRecord(keySecret, ["title": "by key"]).string("id"))
            #expect(try await client.call(.delete, "/v1/collections/tasks/records/\(other)", token: keySecret, headers: Self.requestID("req-delete")).status == .noContent)
            let batch = try await client.call(.post, "/v1/collections/tasks/records/batch", token: owner.accessToken, json: ["records": [["title": "b1"], ["title": "b2"]]])
            #expect(batch.status == .created)

            let audit = try await client.call(.get, "/v1/audit", token: owner.accessToken)
            #expect(audit.status == .ok)
            let entries = try #require(audit["data"] as? [[String: Any]])
            #expect(entries.count == 6)
            #expect(entries.map { $0["operation"] as? String } == ["create", "create", "delete", "create", "update", "create"], "newest first")
            #expect(Set(entries.compactMap { $0["collection"] as? String }) == ["tasks"])

            let update = try #require(entries.first { $0["operation"] as? String == "update" })
            #expect(update["recordId"] as? String == id)
            #expect(update["requestId"] as? String == "req-patch")
            #expect((update["actor"] as? [String: Any])?["id"] as? String == owner.userID)
            #expect((update["actor"] as? [String: Any])?["type"] as? String == "user")
            let changes = try #require(update["changes"] as? [String: Any])
            #expect(Set(changes.keys) == ["priority", "notes"], "only the changed fields")
            #expect((changes["priority"] as? [String: Any])?["before"] as? Int == 2)
            #expect((changes["priority"] as? [String: Any])?["after"] as? Int == 4)
            #expect((changes["notes"] as? [String: Any])?["before"] == nil)
            #expect((changes["notes"] as? [String: Any])?["after"] as? String == "hi")

            let creation = try #require(entries.last)
            #expect(creation["requestId"] as? String == "req-create")
            #expect(((creation["changes"] as? [String: Any])?["title"] as? [String: Any])?["after"] as? String == "first")
            #expect(((creation["changes"] as? [String: Any])?["status"] as? [String: Any])?["after"] as? String == "open", "defaults are recorded as written")

            let deletion = try #require(entries.first { $0["operation"] as? String == "delete" })
            #expect(deletion["requestId"] as? String == "req-delete")
            #expect((deletion["actor"] as? [String: Any])?["id"] as? String == keyID)
            #expect((deletion["actor"] as? [String: Any])?["type"] as? String == "apikey")
            #expect(((deletion["changes"] as? [String: Any])?["title"] as? [String: Any])?["before"] as? String == "by key")

            // Filters.
            #expect(try await client.call(.get, "/v1/audit?recordId=\(id)", token: owner.accessToken).dataIDs.count == 2)
            let updates = try await client.call(.get, "/v1/audit?operation=update", token: owner.accessToken)
            #expect(((updates["data"] as? [[String: Any]]) ?? []).map { $0["recordId"] as? String } == [id])
            #expect(try await client.call(.get, "/v1/audit?actor=\(keyID)", token: owner.accessToken).dataIDs.count == 2)
            #expect(try await client.call(.get, "/v1/audit?collection=nope", token: owner.accessToken).dataIDs.isEmpty)
            #expect(try await client.call(.get, "/v1/audit?since=2999-01-01T00:00:00Z", token: owner.accessToken).dataIDs.isEmpty)
            #expect(try await client.call(.get, "/v1/audit?until=2000-01-01T00:00:00Z", token: owner.accessToken).dataIDs.isEmpty)
            // Paging one entry at a time visits each once, in the same order.
            var paged: [String] = []
            var cursor: String?
            repeat {
                let page = try await client.call(.get, "/v1/audit?limit=1" + (cursor.map { "&cursor=\($0)" } ?? ""), token: owner.accessToken)
                #expect(page.status == .ok)
                paged += page.dataIDs
                cursor = page["nextCursor"] as? String
            } while cursor != nil && paged.count < 20
            #expect(paged == entries.compactMap { $0["id"] as? String })
            for bad in ["operation=rename", "recordId=x", "since=yesterday", "limit=0", "limit=201", "colour=red", "cursor=forged"] {
                let response = try await client.call(.get, "/v1/audit?\(bad)", token: owner.accessToken)
                #expect(response.status == .badRequest, "\(bad)")
            }
            let member = try await client.addMember("member@example.com", role: "member", by: owner)
            #expect(try await client.call(.get, "/v1/audit", token: member.accessToken).status == .forbidden)
        }
    }

    @Test func theServiceRoleCanOnlyAppendToAndReadTheAuditLog() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            try await client.createTasks(owner.accessToken)
            _ = try await client.createRecord(owner.accessToken, ["title": "audited"])
            for statement: PostgresQuery in [
                "UPDATE atrium.record_audit SET operation = 'update'",
                "DELETE FROM atrium.record_audit",
                "TRUNCATE atrium.record_audit",
            ] {
                await #expect {
                    try await app.pool.query(statement)
                } throws: { error in
                    (error as? PostgresError)?.sqlState == "42501"
                }
            }
        }
        let remaining = try await app.database.withSuperuser { try await $0.query("SELECT count(*)::int8 FROM atrium.record_audit") }
        #expect(try remaining[0].decode(Int.self, column: 0) == 1)
    }

    @Test func exportStreamsTheTenantAsNDJSONFromOneSnapshot() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            try await client.createTasks(owner.accessToken)
            #expect(try await client.call(.post, "/v1/collections", token: owner.accessToken, json: ["name": "notes", "fields": ["body": ["type": "text"]]]).status == .created)
            var ids = Set<String>()
            for chunk in 0..<12 {
                let records = (0..<100).map { ["title": "task \(chunk * 100 + $0)", "meta": ["n": $0, "text": "line\nbreak \"quoted\""]] as [String: Any] }
                let batch = try await client.call(.post, "/v1/collections/tasks/records/batch", token: owner.accessToken, json: ["records": records])
                ids.formUnion(batch.dataIDs)
            }
            let note = try #require(try await client.createRecord(owner.accessToken, ["body": "ünïcödé ✓"], collection: "notes").string("id"))

            let export = try await client.call(.get, "/v1/tenant/export", token: owner.accessToken)
            #expect(export.status == .ok)
            #expect(export.headers[.contentType] == "application/x-ndjson")
            let lines = export.body.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(lines.last == "", "every line ends with a newline")
            let objects = try lines.dropLast().map { try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
            #expect(objects.first?["type"] as? String == "tenant")
            #expect((objects.first?["tenant"] as? [String: Any])?["id"] as? String == owner.tenantID)
            let collections = objects.filter { $0["type"] as? String == "collection" }
            #expect(collections.compactMap { ($0["collection"] as? [String: Any])?["name"] as? String } == ["notes", "tasks"])
            let records = objects.filter { $0["type"] as? String == "record" }
            let exported = records.filter { $0["collection"] as? String == "tasks" }.compactMap { ($0["record"] as? [String: Any])?["id"] as? String }
            #expect(exported.count == 1200 && Set(exported) == ids, "every record once")
            let exportedNote = try #require(records.first { $0["collection"] as? String == "notes" }?["record"] as? [String: Any])
            #expect(exportedNote["id"] as? String == note)
            #expect((exportedNote["data"] as? [String: Any])?["body"] as? String == "ünïcödé ✓")
            // The last line says the export is complete, and what it held.
            let end = try #require(objects.last)
            #expect(end["type"] as? String == "end")
            #expect(end["collections"] as? Int == 2)
            #expect(end["records"] as? Int == 1201)
            // The tenant, two collections, 1201 records, the end.
            #expect(objects.count == 1205)

            let member = try await client.addMember("member@example.com", role: "member", by: owner)
            #expect(try await client.call(.get, "/v1/tenant/export", token: member.accessToken).status == .forbidden)
        }
    }

    @Test func exportReadsPageByPageFromTheSnapshotItStartedWith() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            try await client.createTasks(owner.accessToken)
            var ids: [String] = []
            for _ in 0..<12 {
                ids += try await client.call(.post, "/v1/collections/tasks/records/batch", token: owner.accessToken, json: ["records": (0..<100).map { ["title": "t\($0)"] }]).dataIDs
            }
            let principal = try await app.services.auth.authenticate(bearer: owner.accessToken)
            let export = try await app.services.records.beginExport(principal)
            // Changes made after the export began are not in it: deletions, updates, additions.
            #expect(try await client.call(.delete, "/v1/collections/tasks/records/\(ids[0])", token: owner.accessToken).status == .noContent)
            #expect(try await client.call(.patch, "/v1/collections/tasks/records/\(ids[1])", token: owner.accessToken, json: ["title": "changed"]).status == .ok)
            _ = try await client.createRecord(owner.accessToken, ["title": "late"])
            var pages: [Int] = []
            var seen: [String: String] = [:]
            var last: TenantExport.Item?
            while let item = try await export.next() {
                if case .records(_, let records) = item {
                    pages.append(records.count)
                    for record in records { seen[record.id.uuidString.lowercased()] = record.data["title"]?.stringValue }
                }
                last = item
            }
            // 1200 records in bounded pages, then the end.
            #expect(pages == [500, 500, 200])
            #expect(Set(seen.keys) == Set(ids))
            #expect(seen[ids[1]] == "t1")
            guard case .end(let collections, let records)? = last else { throw TestFailure("no end item") }
            #expect(collections == 1 && records == 1200)
        }
    }

    @Test func deletingATenantRemovesItsCollectionsRecordsAndAudit() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let doomed = try await client.signUp("owner@example.com", tenant: "Doomed")
            let survivor = try await client.signUp("other@example.com", tenant: "Survivor")
            for signedIn in [doomed, survivor] {
                try await client.createTasks(signedIn.accessToken)
                _ = try await client.call(.post, "/v1/collections/tasks/records/batch", token: signedIn.accessToken, json: ["records": [["title": "a", "code": "ABC-1", "tags": ["x"]], ["title": "b"]]])
                _ = try await client.createRecord(signedIn.accessToken, ["title": "c"], headers: [.init("Idempotency-Key")!: "k1"])
            }
            let counts = { (tenant: String) async throws -> [Int] in
                try await app.database.withSuperuser { admin in
                    let row = try await admin.query("""
                        SELECT (SELECT count(*) FROM atrium.collections WHERE tenant_id = \(tenant)::uuid)::int8,
                               (SELECT count(*) FROM atrium.records WHERE tenant_id = \(tenant)::uuid)::int8,
                               (SELECT count(*) FROM atrium.record_values WHERE tenant_id = \(tenant)::uuid)::int8,
                               (SELECT count(*) FROM atrium.record_unique_values WHERE tenant_id = \(tenant)::uuid)::int8,
                               (SELECT count(*) FROM atrium.record_audit WHERE tenant_id = \(tenant)::uuid)::int8,
                               (SELECT count(*) FROM atrium.idempotency_keys WHERE tenant_id = \(tenant)::uuid)::int8
                        """)
                    let (a, b, c, d, e, f) = try row[0].decode((Int, Int, Int, Int, Int, Int).self)
                    return [a, b, c, d, e, f]
                }
            }
            #expect(try await counts(doomed.tenantID).allSatisfy { $0 > 0 })
            let survivorBefore = try await counts(survivor.tenantID)
            #expect(try await client.call(.delete, "/v1/tenant", token: doomed.accessToken).status == .noContent)
            #expect(try await counts(doomed.tenantID) == [0, 0, 0, 0, 0, 0])
            #expect(try await counts(survivor.tenantID) == survivorBefore)
            #expect(try await client.call(.get, "/v1/collections/tasks/records", token: survivor.accessToken).dataIDs.count == 3)
        }
    }
}

extension TestClientProtocol {
    func createRecord(_ token: String, _ data: [String: Any], collection: String = "tasks", headers: HTTPFields) async throws -> JSONResponse {
        try await self.call(.post, "/v1/collections/\(collection)/records", token: token, json: data, headers: headers)
    }
}
