import AtriumCore
import Foundation
import HummingbirdTesting
import Testing

/// An update rewrites a record's index rows (`record_values`) and unique values only for the
/// fields it changed: the others keep their rows — the transaction that wrote them (`xmin`)
/// stays the same — and filters and uniqueness see the new values only.
@Suite struct IndexRowsTests {
    @Test func anUpdateRewritesTheIndexRowsOfTheFieldsItChangedOnly() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            try await client.createTasks(owner.accessToken)
            let created = try await client.createRecord(
                owner.accessToken, ["title": "first", "status": "doing", "priority": 2, "tags": ["a", "b"], "code": "ABC-1"]
            )
            #expect(created.status == .created)
            let id = try #require(created.string("id"))
            let path = "/v1/collections/tasks/records/\(id)"

            /// The record's index rows and unique values: which transaction wrote each, and its value.
            func stored() async throws -> [String: Row] {
                try await app.database.withSuperuser { admin in
                    let rows = try await admin.query("""
                        SELECT field || '/' || position, xmin::text, coalesce(text_value, num_value::text, time_value::text)
                        FROM atrium.record_values WHERE record_id = \(id)::uuid
                        UNION ALL
                        SELECT 'unique ' || field, xmin::text, value_key FROM atrium.record_unique_values WHERE record_id = \(id)::uuid
                        """)
                    var stored: [String: Row] = [:]
                    for row in rows {
                        let (key, writer, value) = try row.decode((String, String, String).self)
                        stored[key] = Row(writer: writer, value: value)
                    }
                    return stored
                }
            }
            func patch(_ body: [String: Any]) async throws {
                let response = try await client.call(.patch, path, token: owner.accessToken, json: body)
                #expect(response.status == .ok, "\(body): \(response.body)")
            }

            let initial = try await stored()
            #expect(initial.mapValues(\.value) == ["status/0": "doing", "priority/0": "2", "tags/0": "a", "tags/1": "b", "unique code": #""ABC-1""#])

            // Unindexed fields only: no index row or unique value is written again.
            try await patch(["title": "renamed", "score": 1.5])
            #expect(try await stored() == initial)

            // One indexed field: its row is new, the others are the rows written at first.
            try await patch(["priority": 4])
            var now = try await stored()
            #expect(now["priority/0"]?.value == "4")
            #expect(now["priority/0"]?.writer != initial["priority/0"]?.writer)
            for key in ["status/0", "tags/0", "tags/1", "unique code"] { #expect(now[key] == initial[key], "\(key)") }

            // An array that shrinks loses the rows of the positions it no longer has.
            try await patch(["tags": ["b"]])
            now = try await stored()
            #expect(now["tags/0"]?.value == "b" && now["tags/1"] == nil)
            #expect(now["status/0"] == initial["status/0"] && now["unique code"] == initial["unique code"])

            // A unique value that changes frees the old one and holds the new one.
            try await patch(["code": "ABC-2"])
            now = try await stored()
            #expect(now["unique code"]?.value == #""ABC-2""#)  // stored as JSON text
            #expect(now["status/0"] == initial["status/0"])
            #expect(try await client.createRecord(owner.accessToken, ["title": "other", "code": "ABC-1"]).status == .created)
            #expect(try await client.createRecord(owner.accessToken, ["title": "third", "code": "ABC-2"]).status == .unprocessableContent)

            // A field removed (merge patch null) loses its row.
            try await patch(["priority": NSNull()])
            now = try await stored()
            #expect(now["priority/0"] == nil && now["status/0"] == initial["status/0"])

            // Filters see the new values, never the old ones.
            func matches(_ filter: String) async throws -> [String] {
                let list = try await client.call(.get, "/v1/collections/tasks/records?\(filter)", token: owner.accessToken)
                return ((list["data"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String }
            }
            try await patch(["status": "done", "priority": 5])
            #expect(try await matches("filter[status]=done") == [id])
            #expect(try await matches("filter[status]=doing").isEmpty)
            #expect(try await matches("filter[priority]=5") == [id])
            #expect(try await matches("filter[priority]=4").isEmpty)
        }
    }

    struct Row: Equatable {
        let writer: String
        let value: String
    }
}
