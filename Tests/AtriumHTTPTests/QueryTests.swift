import AtriumCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import PostgresPool
import Testing

/// List queries, checked against the same filters and ordering computed here in Swift over the
/// records the test created.
@Suite struct QueryTests {
    /// What the test knows about each record it created.
    struct Row: Equatable {
        var id = ""
        var title: String
        var status: String
        var priority: Int?
        var score: Double?
        var tags: [String]
        var due: String?
        var done: Bool
        var code: String?

        var json: [String: Any] {
            var data: [String: Any] = ["title": self.title, "status": self.status, "tags": self.tags, "done": self.done]
            if let priority { data["priority"] = priority }
            if let score { data["score"] = score }
            if let due { data["due"] = due }
            if let code { data["code"] = code }
            return data
        }
    }

    static func rows() -> [Row] {
        let titles = ["alpha", "beta", "gamma", "Alphabet"]
        let statuses = ["open", "doing", "done"]
        return (0..<36).map { (i: Int) -> Row in
            let priority: Int? = i % 7 == 0 ? nil : i % 5 + 1
            let score: Double? = i % 4 == 0 ? nil : Double(i) * 0.5
            var tags = ["t\(i % 3)"]
            if i % 2 == 0 { tags.append("even") }
            let due: String? = i % 6 == 0 ? nil : String(format: "2030-01-%02d", i % 28 + 1)
            let code: String? = i % 3 == 0 ? "ABC-\(i)" : nil
            return Row(
                title: titles[i % 4] + " \(i)", status: statuses[i % 3], priority: priority, score: score,
                tags: tags, due: due, done: i % 2 == 0, code: code
            )
        }
    }

    static func encode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed)!
    }

    static func path(_ parameters: [(String, String)], collection: String = "tasks") -> String {
        "/v1/collections/\(collection)/records?" + parameters.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")
    }

    /// Creates the rows (in one batch and a few singles, so createdAt differs) and returns them with ids.
    static func seed(_ client: some TestClientProtocol, _ token: String) async throws -> [Row] {
        var rows = Self.rows()
        let batch = try await client.call(.post, "/v1/collections/tasks/records/batch", token: token, json: ["records": rows[0..<30].map(\.json)])
        guard batch.status == .created else { throw TestFailure("seed: \(batch.body)") }
        for (index, id) in batch.dataIDs.enumerated() { rows[index].id = id }
        for index in 30..<rows.count {
            let created = try await client.createRecord(token, rows[index].json)
            guard created.status == .created, let id = created.string("id") else { throw TestFailure("seed: \(created.body)") }
            rows[index].id = id
        }
        return rows
    }

    /// Every page of a query, following nextCursor; fails on a repeated id.
    static func all(_ client: some TestClientProtocol, _ token: String, _ parameters: [(String, String)]) async throws -> [String] {
        var ids: [String] = []
        var cursor: String?
        for _ in 0..<100 {
            let page = try await client.call(.get, Self.path(parameters + (cursor.map { [("cursor", $0)] } ?? [])), token: token)
            guard page.status == .ok else { throw TestFailure("\(parameters): \(page.status) \(page.body)") }
            ids += page.dataIDs
            cursor = page["nextCursor"] as? String
            if cursor == nil { break }
        }
        #expect(Set(ids).count == ids.count, "no record appears twice across pages of \(parameters)")
        return ids
    }

    @Test func everyOperatorOnIndexedPlainAndArrayFieldsMatchesTheData() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            try await client.createTasks(owner.accessToken)
            let rows = try await Self.seed(client, owner.accessToken)

            func check(_ parameters: [(String, String)], _ expected: (Row) -> Bool, sourceLocation: SourceLocation = #_sourceLocation) async throws {
                let ids = try await Self.all(client, owner.accessToken, parameters + [("limit", "100")])
                let want = Set(rows.filter(expected).map(\.id))
                #expect(!want.isEmpty || parameters.contains { $0.1 == "none" }, "the case selects something", sourceLocation: sourceLocation)
                #expect(Set(ids) == want, "\(parameters)", sourceLocation: sourceLocation)
                #expect(ids.count == want.count, sourceLocation: sourceLocation)
            }
            // Indexed enum (text in record_values).
            try await check([("filter[status]", "open")]) { $0.status == "open" }
            try await check([("filter[status][eq]", "doing")]) { $0.status == "doing" }
            try await check([("filter[status][ne]", "open")]) { $0.status != "open" }
            try await check([("filter[status][in]", "open,done")]) { ["open", "done"].contains($0.status) }
            try await check([("filter[status][prefix]", "do")]) { $0.status.hasPrefix("do") }
            try await check([("filter[status][gt]", "doing")]) { $0.status > "doing" }
            // Indexed integer; records without a priority never match a comparison, but do match ne.
            try await check([("filter[priority][gte]", "3")]) { ($0.priority ?? .min) >= 3 }
            try await check([("filter[priority][gt]", "3")]) { ($0.priority ?? .min) > 3 }
            try await check([("filter[priority][lt]", "3")]) { ($0.priority ?? .max) < 3 }
            try await check([("filter[priority][lte]", "3")]) { ($0.priority ?? .max) <= 3 }
            try await check([("filter[priority][ne]", "3")]) { $0.priority != 3 }
            try await check([("filter[priority][in]", "1,5")]) { [1, 5].contains($0.priority ?? 0) }
            try await check([("filter[priority][exists]", "false")]) { $0.priority == nil }
            try await check([("filter[priority][exists]", "true"), ("filter[priority][lte]", "2")]) { ($0.priority ?? .max) <= 2 }
            // Indexed array of strings: contains and eq test membership.
            try await check([("filter[tags][contains]", "even")]) { $0.tags.contains("even") }
            try await check([("filter[tags][contains]", "t1")]) { $0.tags.contains("t1") }
            // Plain (unindexed) fields.
            try await check([("filter[title][prefix]", "alpha")]) { $0.title.hasPrefix("alpha") }
            try await check([("filter[title][prefix]", "Alpha")]) { $0.title.hasPrefix("Alpha") }
            try await check([("filter[title][contains]", "ph")]) { $0.title.contains("ph") }
            try await check([("filter[title]", "gamma 2")]) { $0.title == "gamma 2" }
            try await check([("filter[title][lt]", "b")]) { $0.title < "b" }
            try await check([("filter[score][gt]", "9.5")]) { ($0.score ?? -.infinity) > 9.5 }
            try await check([("filter[score][lte]", "2")]) { ($0.score ?? .infinity) <= 2 }
            try await check([("filter[score][exists]", "false")]) { $0.score == nil }
            try await check([("filter[done]", "true")]) { $0.done }
            try await check([("filter[done][ne]", "true")]) { !$0.done }
            try await check([("filter[due][gte]", "2030-01-20")]) { ($0.due ?? "") >= "2030-01-20" }
            try await check([("filter[due][lt]", "2030-01-05")]) { $0.due.map { $0 < "2030-01-05" } ?? false }
            try await check([("filter[code][in]", "ABC-3,ABC-9,ABC-10")]) { ["ABC-3", "ABC-9"].contains($0.code ?? "") }
            try await check([("filter[code][exists]", "true")]) { $0.code != nil }
            try await check([("filter[code]", "none")]) { _ in false }
            // Several filters combine with AND, also on one field.
            try await check([("filter[priority][gte]", "2"), ("filter[priority][lte]", "4"), ("filter[status]", "open"), ("filter[done]", "false")]) {
                (2...4).contains($0.priority ?? 0) && $0.status == "open" && !$0.done
            }
            // System fields.
            let some = rows[7]
            try await check([("filter[id]", some.id)]) { $0.id == some.id }
            try await check([("filter[id][in]", "\(rows[1].id),\(rows[2].id.uppercased())")]) { $0.id == rows[1].id || $0.id == rows[2].id }
            try await check([("filter[createdBy]", owner.userID)]) { _ in true }
            try await check([("filter[version]", "1")]) { _ in true }
            let single = try await client.call(.get, "/v1/collections/tasks/records/\(rows[33].id)", token: owner.accessToken)
            let createdAt = try #require(single.string("createdAt"))
            func position(_ row: Row) -> Int { rows.firstIndex { $0.id == row.id }! }
            try await check([("filter[createdAt][gte]", createdAt)]) { position($0) >= 33 }
            try await check([("filter[createdAt][lt]", createdAt)]) { position($0) < 33 }
        }
    }

    @Test func sparseFieldsAndCounts() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            try await client.createTasks(owner.accessToken)
            let rows = try await Self.seed(client, owner.accessToken)
            let sparse = try await client.call(.get, Self.path([("fields", "title,priority"), ("limit", "100")]), token: owner.accessToken)
            let records = try #require(sparse["data"] as? [[String: Any]])
            #expect(records.count == rows.count)
            for record in records {
                let data = try #require(record["data"] as? [String: Any])
                #expect(Set(data.keys).isSubset(of: ["title", "priority"]) && data["title"] != nil)
                #expect(record["id"] != nil && record["version"] != nil && record["createdAt"] != nil)
            }
            let exact = try await client.call(.get, Self.path([("filter[status]", "open"), ("count", "exact"), ("limit", "2")]), token: owner.accessToken)
            #expect(exact["count"] as? Int == rows.filter { $0.status == "open" }.count)
            #expect(exact.dataIDs.count == 2)
            // Up to a thousand matching records the estimate is the exact count.
            let estimated = try await client.call(.get, Self.path([("filter[status]", "open"), ("count", "estimated")]), token: owner.accessToken)
            #expect(estimated["count"] as? Int == rows.filter { $0.status == "open" }.count)
            let uncounted = try await client.call(.get, Self.path([]), token: owner.accessToken)
            #expect(uncounted["count"] == nil)
        }
    }

    @Test func estimatedCountsComeFromTheTenantsOwnRecordsOnly() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            // The victim stores many records with priority 3; PostgreSQL's statistics know it.
            let victim = try await client.signUp("victim@example.com", tenant: "Victim")
            try await client.createTasks(victim.accessToken)
            for _ in 0..<4 {
                let batch = (0..<100).map { _ in ["title": "secret", "priority": 3] as [String: Any] }
                #expect(try await client.call(.post, "/v1/collections/tasks/records/batch", token: victim.accessToken, json: ["records": batch]).status == .created)
            }
            _ = try await app.database.withSuperuser { try await $0.simpleQuery("ANALYZE atrium.records; ANALYZE atrium.record_values") }

            let prober = try await client.signUp("prober@example.com", tenant: "Prober")
            try await client.createTasks(prober.accessToken)
            for _ in 0..<2 { _ = try await client.createRecord(prober.accessToken, ["title": "mine", "priority": 1]) }
            func estimate(_ filters: [(String, String)]) async throws -> Int? {
                try await client.call(.get, Self.path(filters + [("count", "estimated")]), token: prober.accessToken)["count"] as? Int
            }
            // A value only another tenant has and a value nobody has look exactly alike.
            #expect(try await estimate([("filter[priority]", "3")]) == 0)
            #expect(try await estimate([("filter[priority]", "4")]) == 0)
            #expect(try await estimate([("filter[priority][gte]", "2")]) == 0)
            #expect(try await estimate([("filter[priority]", "1")]) == 2)
            #expect(try await estimate([]) == 2)
        }
    }

    @Test func estimatedCountsOfLargeListsAreWithinAFewPercent() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            try await client.createTasks(owner.accessToken)
            for batch in 0..<30 {
                let records = (0..<100).map { ["title": "t", "priority": (batch * 100 + $0) % 5 + 1] as [String: Any] }
                #expect(try await client.call(.post, "/v1/collections/tasks/records/batch", token: owner.accessToken, json: ["records": records]).status == .created)
            }
            // 3000 records, 1800 with priority up to 3. The estimator's relative error is about
            // 3 %; 15 % is five of those, which random ids exceed about once in a million runs.
            for (filters, exact) in [([(String, String)](), 3000), ([("filter[priority][lte]", "3")], 1800)] {
                let response = try await client.call(.get, Self.path(filters + [("count", "estimated"), ("limit", "1")]), token: owner.accessToken)
                let estimate = try #require(response["count"] as? Int)
                #expect(abs(Double(estimate - exact)) <= 0.15 * Double(exact), "estimated \(estimate) for \(exact)")
                #expect(estimate > 1000)
            }
        }
    }

    @Test func malformedQueriesAre400sNamingTheParameter() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            try await client.createTasks(owner.accessToken)
            _ = try await Self.seed(client, owner.accessToken)
            let cases: [([(String, String)], String)] = [
                ([("filter[nope]", "1")], "filter[nope]"),
                ([("filter[priority][near]", "1")], "filter[priority][near]"),
                ([("filter[priority][gte]", "high")], "filter[priority][gte]"),
                ([("filter[priority][prefix]", "1")], "filter[priority][prefix]"),
                ([("filter[meta][eq]", "1")], "filter[meta][eq]"),
                ([("filter[createdAt][gt]", "yesterday")], "filter[createdAt][gt]"),
                ([("filter[id]", "not-a-uuid")], "filter[id]"),
                ([("filter[done]", "yes")], "filter[done]"),
                ([("filter[score][exists]", "maybe")], "filter[score][exists]"),
                ([("filter[status][in]", Array(repeating: "open", count: 101).joined(separator: ","))], "filter[status][in]"),
                ([("filter[]", "1")], "filter[]"),
                ([("limit", "0")], "limit"),
                ([("limit", "101")], "limit"),
                ([("limit", "ten")], "limit"),
                ([("limit", "5"), ("limit", "6")], "limit"),
                ([("sort", "a,b,c,d")], "sort"),
                ([("sort", "meta")], "sort"),
                ([("sort", "priority,-priority")], "sort"),
                ([("sort", "nope")], "sort"),
                ([("fields", "title,nope")], "fields"),
                ([("count", "roughly")], "count"),
                ([("page", "2")], "page"),
            ]
            for (parameters, field) in cases {
                let response = try await client.call(.get, Self.path(parameters), token: owner.accessToken)
                #expect(response.status == .badRequest, "\(parameters)")
                #expect(response.errorFields.contains(field), "\(parameters): \(response.body)")
            }
            // Every problem at once, not just the first.
            let several = try await client.call(.get, Self.path([("limit", "0"), ("count", "roughly"), ("filter[priority][near]", "1")]), token: owner.accessToken)
            #expect(several.errorFields == ["limit", "count", "filter[priority][near]"])
            let semantic = try await client.call(.get, Self.path([("filter[nope]", "1"), ("sort", "nope"), ("fields", "nope")]), token: owner.accessToken)
            #expect(semantic.errorFields == ["filter[nope]", "sort", "fields"])
        }
    }

    @Test func tamperedForeignAndStaleCursorsAre400s() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            try await client.createTasks(owner.accessToken)
            _ = try await Self.seed(client, owner.accessToken)
            let first = try await client.call(.get, Self.path([("sort", "priority"), ("limit", "5")]), token: owner.accessToken)
            let cursor = try #require(first["nextCursor"] as? String)
            let second = try await client.call(.get, Self.path([("sort", "priority"), ("limit", "5"), ("cursor", cursor)]), token: owner.accessToken)
            #expect(second.status == .ok && second.dataIDs.count == 5)
            #expect(Set(second.dataIDs).isDisjoint(with: first.dataIDs))

            func refused(_ parameters: [(String, String)], token: String = owner.accessToken, collection: String = "tasks", sourceLocation: SourceLocation = #_sourceLocation) async throws {
                let response = try await client.call(.get, Self.path(parameters, collection: collection), token: token)
                #expect(response.status == .badRequest, sourceLocation: sourceLocation)
                #expect(response.errorFields == ["cursor"], "\(response.body)", sourceLocation: sourceLocation)
            }
            // Every single-character change is caught.
            var bytes = Array(cursor.utf8)
            for index in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 12)) {
                let original = bytes[index]
                bytes[index] = original == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
                try await refused([("sort", "priority"), ("limit", "5"), ("cursor", String(decoding: bytes, as: UTF8.self))])
                bytes[index] = original
            }
            try await refused([("sort", "priority"), ("cursor", String(cursor.dropLast(3)))])
            try await refused([("sort", "priority"), ("cursor", "")])
            try await refused([("sort", "priority"), ("cursor", "not a cursor at all")])
            // A cursor is bound to its sort, its filters, its collection and its tenant.
            try await refused([("sort", "-priority"), ("cursor", cursor)])
            try await refused([("cursor", cursor)])
            try await refused([("sort", "priority"), ("filter[status]", "open"), ("cursor", cursor)])
            let other = try await client.call(.post, "/v1/collections", token: owner.accessToken, json: ["name": "notes", "fields": ["priority": ["type": "integer"]]])
            #expect(other.status == .created)
            try await refused([("sort", "priority"), ("cursor", cursor)], collection: "notes")
            let stranger = try await client.signUp("stranger@example.com", tenant: "Globex")
            try await client.createTasks(stranger.accessToken)
            try await refused([("sort", "priority"), ("limit", "5"), ("cursor", cursor)], token: stranger.accessToken)
            // A limit change keeps the cursor valid: it only fixes where the next page starts.
            let resized = try await client.call(.get, Self.path([("sort", "priority"), ("limit", "7"), ("cursor", cursor)]), token: owner.accessToken)
            #expect(resized.status == .ok && Array(resized.dataIDs.prefix(5)) == second.dataIDs)
        }
    }
}
