import AtriumCore
import AtriumCrypto
import AtriumHTTP
import AtriumTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// The OpenAPI document and the router describe the same routes, in both directions.
@Suite struct OpenAPICoverageTests {
    struct Operation: Hashable, CustomStringConvertible {
        let method: String
        let path: String
        var description: String { "\(self.method) \(self.path)" }
    }

    static func documentOperations(_ document: [String: Any]) throws -> Set<Operation> {
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var operations = Set<Operation>()
        for (path, item) in paths {
            for method in item.keys where ["get", "put", "post", "delete", "options", "head", "patch", "trace"].contains(method) {
                operations.insert(Operation(method: method.uppercased(), path: path))
            }
        }
        return operations
    }

    @Test func everyRouteIsDocumentedAndEveryDocumentedRouteExists() async throws {
        let app = try await TestApp.make()
        let routes = buildRouter(services: app.services, server: app.server).routes.routes
        let served = Set(routes.map { Operation(method: $0.method.rawValue, path: $0.path) })
        #expect(served.count == routes.count, "a route is registered twice")
        try await app.test { client in
            let response = try await client.call(.get, "/openapi.json")
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            let document = response.object
            #expect(document["openapi"] as? String == "3.1.0")
            let documented = try Self.documentOperations(document)
            let undocumented = served.subtracting(documented)
            let phantom = documented.subtracting(served)
            #expect(undocumented.isEmpty, "routes missing from the OpenAPI document: \(undocumented.sorted { $0.description < $1.description })")
            #expect(phantom.isEmpty, "documented routes that do not exist: \(phantom.sorted { $0.description < $1.description })")
            #expect(served.count > 40)
        }
    }

    @Test func everyProtectedOperationNamesItsErrorsAndTheBearerScheme() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let document = try await client.call(.get, "/openapi.json").object
            let scheme = ((document["components"] as? [String: Any])?["securitySchemes"] as? [String: Any])?["bearer"] as? [String: Any]
            #expect(scheme?["type"] as? String == "http")
            #expect(scheme?["scheme"] as? String == "bearer")
            let paths = try #require(document["paths"] as? [String: [String: [String: Any]]])
            for (path, item) in paths {
                for (method, operation) in item {
                    let responses = try #require(operation["responses"] as? [String: Any], "\(method) \(path)")
                    #expect(responses["default"] != nil, "\(method) \(path) has no default problem response")
                    let isPublic = (operation["security"] as? [Any])?.isEmpty == true
                    if !isPublic {
                        #expect(responses["401"] != nil, "\(method) \(path) needs a credential but documents no 401")
                    }
                }
            }
        }
    }
}
