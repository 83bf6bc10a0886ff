import AtriumCore
import AtriumTestSupport
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore

extension TestApp {
    /// A database of its own, the app on it and a tenant with the tasks collection, for `body`.
    static func withTasks(_ body: @escaping @Sendable (TestApp, any TestClientProtocol, TestDatabase, SignedIn) async throws -> Void) async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let app = try await TestApp.make(on: database)
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            try await client.createTasks(owner.accessToken)
            try await body(app, client, database, owner)
        }
    }
}

/// Helpers for the data API tests.
extension TestClientProtocol {
    /// Sends raw bytes as the body.
    func raw(_ method: HTTPRequest.Method, _ uri: String, token: String?, body: String, contentType: String = "application/json", headers extra: HTTPFields = [:]) async throws -> JSONResponse {
        var headers = extra
        headers[.contentType] = contentType
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await self.execute(uri: uri, method: method, headers: headers, body: ByteBuffer(string: body)) { response in
            JSONResponse(status: response.status, headers: response.headers, body: String(buffer: response.body))
        }
    }

    /// Creates the "tasks" collection used by many tests.
    @discardableResult
    func createTasks(_ token: String, rules: [String: Any]? = nil, extraFields: [String: Any] = [:]) async throws -> JSONResponse {
        var fields: [String: Any] = [
            "title": ["type": "string", "required": true, "maxLength": 100],
            "status": ["type": "enum", "values": ["open", "doing", "done"], "default": "open", "indexed": true],
            "priority": ["type": "integer", "min": 1, "max": 5, "indexed": true],
            "score": ["type": "number"],
            "code": ["type": "string", "unique": true, "pattern": "^[A-Z]{3}-\\d+$"],
            "tags": ["type": "array", "indexed": true],
            "due": ["type": "date"],
            "done": ["type": "boolean"],
            "notes": ["type": "text"],
            "meta": ["type": "json"],
        ]
        fields.merge(extraFields) { $1 }
        var body: [String: Any] = ["name": "tasks", "fields": fields]
        if let rules { body["rules"] = rules }
        let response = try await self.call(.post, "/v1/collections", token: token, json: body)
        guard response.status == .created else { throw TestFailure("create collection: \(response.status) \(response.body)") }
        return response
    }

    func createRecord(_ token: String, _ data: [String: Any], collection: String = "tasks") async throws -> JSONResponse {
        try await self.call(.post, "/v1/collections/\(collection)/records", token: token, json: data)
    }
}

extension JSONResponse {
    var errorFields: Set<String> {
        Set(((self["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String })
    }

    var dataIDs: [String] {
        ((self["data"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String }
    }
}
