import AtriumCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

/// What a hostile client can send must never become a server error: every parameter of every
/// documented operation, filled with the worst values a URL or header can carry.
@Suite struct HostileInputTests {
    /// Percent-encoded as they would appear in a URL.
    static let hostileValues = [
        "%00", "a%00b", "%ZZ", "%C3%28", "%FF%FE%FD", "%ED%A0%80", String(repeating: "x", count: 2000), "-1", "99999999999999999999",
        "%2E%2E%2F%2E%2E%2F", "%5B%5D", "%7B%7D", "'%20OR%201=1--", "%E2%80%AE", "1e309", "NaN",
    ]

    static let hostileHeaders = [String(repeating: "x", count: 3000), "W/\"", "\"", "*, *", "\u{7F}", "é"]

    /// The document's parameters of one operation (path-level ones included), references resolved.
    static func parameters(of operation: [String: Any], in document: [String: Any]) -> [[String: Any]] {
        let components = (document["components"] as? [String: Any])?["parameters"] as? [String: [String: Any]] ?? [:]
        return ((operation["parameters"] as? [[String: Any]]) ?? []).compactMap { parameter in
            guard let reference = parameter["$ref"] as? String else { return parameter }
            return components[String(reference.split(separator: "/").last ?? "")]
        }
    }

    @Test func noParameterValueOfAnyOperationIsAServerError() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            try await client.createTasks(owner.accessToken)
            let record = try #require(try await client.createRecord(owner.accessToken, ["title": "t", "code": "ABC-1"]).string("id"))
            let document = try await client.call(.get, "/openapi.json").object
            let paths = try #require(document["paths"] as? [String: [String: Any]])
            // Valid values for the parameters a hostile one is not in.
            let valid = ["name": "tasks", "id": record, "userId": owner.userID]
            var sent = 0
            var failures: [String] = []
            for (template, item) in paths.sorted(by: { $0.key < $1.key }) {
                for (method, value) in item.sorted(by: { $0.key < $1.key }) {
                    guard let operation = value as? [String: Any], let httpMethod = HTTPRequest.Method(method.uppercased()) else { continue }
                    // Deleting the tenant would end the test; its only input is the token.
                    if template == "/v1/tenant", httpMethod == .delete { continue }
                    for parameter in Self.parameters(of: operation, in: document) {
                        guard let name = parameter["name"] as? String, let location = parameter["in"] as? String else { continue }
                        let hostile = location == "header" ? Self.hostileHeaders : Self.hostileValues
                        // Deep-object filters: each spot of `filter[field][op]=value` on its own.
                        let queries: [(String) -> String] = name == "filter"
                            ? [{ "filter[title]=\($0)" }, { "filter[\($0)]=x" }, { "filter[title][\($0)]=x" }, { "filter[priority][in]=1,\($0)" }, { "filter[priority][gte]=\($0)" }]
                            : [{ "\(name)=\($0)" }]
                        for bad in hostile {
                          for query in location == "query" ? queries : [{ _ in "" }] {
                            var path = template
                            for (key, good) in valid { path = path.replacingOccurrences(of: "{\(key)}", with: location == "path" && key == name ? bad : good) }
                            var headers: HTTPFields = [.authorization: "Bearer \(owner.accessToken)"]
                            switch location {
                            case "query":
                                path += "?" + query(bad)
                            case "header":
                                guard let field = HTTPField.Name(name) else { continue }
                                headers[field] = bad
                            default:
                                break
                            }
                            var body: ByteBuffer?
                            if [.post, .put, .patch].contains(httpMethod) {
                                headers[.contentType] = "application/json"
                                body = ByteBuffer(string: "{}")
                            }
                            let status = try await client.execute(uri: path, method: httpMethod, headers: headers, body: body) { $0.status }
                            sent += 1
                            if status.code >= 500 { failures.append("\(method.uppercased()) \(path.prefix(120)) [\(location) \(name)] → \(status.code)") }
                          }
                        }
                    }
                }
            }
            #expect(sent > 300)
            #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        }
    }
}
