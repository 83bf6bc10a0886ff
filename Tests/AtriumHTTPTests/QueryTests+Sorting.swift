import AtriumCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import PostgresPool
import Testing

/// Sorting and paging of list queries (part of `QueryTests`): missing values last, pages that
/// never repeat or skip, and the records-with-a-value-first statement.
extension QueryTests {
    @Test func sortingPutsMissingValuesLastAndPagesNeverRepeatOrSkip() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            try await client.createTasks(owner.accessToken)
            let rows = try await Self.seed(client, owner.accessToken)

            /// Ascending or descending on an optional key, missing values last either way.
            func order<T: Comparable>(_ a: T?, _ b: T?, descending: Bool) -> Bool? {
                switch (a, b) {
                case (nil, nil): return nil
                case (nil, _): return false
                case (_, nil): return true
                case (let a?, let b?): return a == b ? nil : (descending ? a > b : a < b)
                }
            }
            /// The batch (rows 0–29) shares one createdAt; the six after it were created one by one.
            func creation(_ row: Row) -> Int { max(rows.firstIndex(of: row)!, 29) }
            /// Ties go by id, in the direction of the last sort key.
            func expected(_ keys: [(Row, Row) -> Bool?], tieDescending: Bool = false, among candidates: [Row]? = nil) -> [String] {
                (candidates ?? rows).sorted { a, b in
                    for key in keys { if let decided = key(a, b) { return decided } }
                    return tieDescending ? a.id > b.id : a.id < b.id
                }.map(\.id)
            }
            let cases: [([(String, String)], [String])] = [
                ([("sort", "-priority,title")], expected([{ order($0.priority, $1.priority, descending: true) }, { order($0.title, $1.title, descending: false) }])),
                ([("sort", "score")], expected([{ order($0.score, $1.score, descending: false) }])),
                ([("sort", "-score")], expected([{ order($0.score, $1.score, descending: true) }], tieDescending: true)),
                ([("sort", "due,-priority,status")], expected([
                    { order($0.due, $1.due, descending: false) }, { order($0.priority, $1.priority, descending: true) },
                    { order($0.status, $1.status, descending: false) },
                ])),
                ([("sort", "done,code")], expected([{ order($0.done ? 1 : 0, $1.done ? 1 : 0, descending: false) }, { order($0.code, $1.code, descending: false) }])),
                // One indexed field: walked from its value index, records without a value after.
                ([("sort", "priority")], expected([{ order($0.priority, $1.priority, descending: false) }])),
                ([("sort", "-priority")], expected([{ order($0.priority, $1.priority, descending: true) }], tieDescending: true)),
                ([("sort", "priority"), ("fields", "title")], expected([{ order($0.priority, $1.priority, descending: false) }])),
                ([("sort", "-status")], expected([{ order($0.status, $1.status, descending: true) }], tieDescending: true)),
                ([("sort", "priority"), ("filter[status]", "open")],
                 expected([{ order($0.priority, $1.priority, descending: false) }], among: rows.filter { $0.status == "open" })),
                ([("sort", "-priority"), ("filter[status][ne]", "doing")],
                 expected([{ order($0.priority, $1.priority, descending: true) }], tieDescending: true, among: rows.filter { $0.status != "doing" })),
                // System fields: the batch shares one createdAt, so ties decide most of the order.
                ([("sort", "createdAt")], expected([{ order(creation($0), creation($1), descending: false) }])),
                ([("sort", "-createdAt")], expected([{ order(creation($0), creation($1), descending: true) }], tieDescending: true)),
                ([("sort", "-id")], expected([], tieDescending: true)),
                ([("sort", "version,-createdAt")], expected([{ order(creation($0), creation($1), descending: true) }], tieDescending: true)),
            ]
            for (parameters, want) in cases {
                for limit in ["1", "7", "100"] {
                    let ids = try await Self.all(client, owner.accessToken, parameters + [("limit", limit)])
                    #expect(ids == want, "\(parameters) limit \(limit)")
                }
            }
            // The default order is newest first.
            let newest = try await client.call(.get, Self.path([("limit", "1")]), token: owner.accessToken)
            #expect(newest.dataIDs == [rows.last!.id])
            let page = try await client.call(.get, Self.path([]), token: owner.accessToken)
            #expect(page.dataIDs.count == RecordQuery.defaultLimit)
        }
    }

    /// Sorted by an indexed field, a page asks for the records with a value alone first, and
    /// takes them as the page when they fill it: they must be exactly the rows the whole page's
    /// statement returns. Walked page by page, so that pages answered that way, pages that
    /// need the whole statement, and pages past every value (not asked first) all come up.
    @Test func theRecordsWithAValueAloneAreThePageWhenTheyFillIt() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            try await client.createTasks(owner.accessToken)
            let rows = try await Self.seed(client, owner.accessToken)
            #expect(rows.contains { $0.priority == nil } && rows.contains { $0.priority != nil })
            let principal = try await app.services.auth.authenticate(bearer: owner.accessToken)
            var answeredByValued = 0, wholeStatement = 0, pastEveryValue = 0
            for parameters in [[("sort", "-priority")], [("sort", "priority"), ("filter[status]", "open")], [("sort", "priority"), ("fields", "title")]] {
                var cursor: String?
                var walked = 0
                repeat {
                    let query = try RecordQuery(parameters: (parameters + [("limit", "4")] + (cursor.map { [("cursor", $0)] } ?? [])).map { (name: $0.0, value: $0.1) })
                    let (page, valuedFirst, _) = try await app.services.records.statements(for: query, collection: "tasks", principal: principal)
                    func keys(_ rows: PostgresRows) throws -> [String] {
                        try rows.map { try "\($0.decode(UUID.self, column: 0)) \($0.decode(String?.self, column: 9) ?? "-") \($0.decode(String.self, column: 8))" }
                    }
                    let whole = try keys(try await app.services.database.query(in: principal.tenant, page))
                    if let valuedFirst {
                        let valued = try keys(try await app.services.database.query(in: principal.tenant, valuedFirst))
                        if valued.count > query.limit {
                            #expect(valued == whole, "\(parameters) after \(walked) records")
                            answeredByValued += 1
                        } else {
                            #expect(Array(whole.prefix(valued.count)) == valued, "\(parameters) after \(walked) records")
                            wholeStatement += 1
                        }
                    } else {
                        pastEveryValue += 1
                    }
                    let listed = try await app.services.records.list(principal, collection: "tasks", query: query)
                    walked += listed.records.count
                    cursor = listed.nextCursor
                } while cursor != nil && walked <= rows.count
                #expect(walked == (parameters.contains { $0.0 == "filter[status]" } ? rows.filter { $0.status == "open" }.count : rows.count))
            }
            #expect(answeredByValued > 0 && wholeStatement > 0 && pastEveryValue > 0, "\(answeredByValued) \(wholeStatement) \(pastEveryValue)")
        }
    }
}
