import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// HTTP calls to a live server (`TestApp.serve`), as a real client makes them.
struct LiveClient: Sendable {
    let base: String
    let http: HTTPClient

    init(port: Int, connections: Int = 8) {
        self.base = "http://127.0.0.1:\(port)"
        self.http = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: .init(connectionPool: .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: connections))
        )
    }

    struct Reply: Sendable {
        let status: HTTPResponseStatus
        let headers: HTTPHeaders
        let body: String

        /// The body as a JSON object (see `JSONResponse.object`).
        var json: [String: Any] { JSONResponse.object(of: self.body) }
    }

    func call(_ method: HTTPMethod, _ path: String, token: String? = nil, body: String? = nil, contentType: String = "application/json") async throws -> Reply {
        var request = HTTPClientRequest(url: self.base + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await self.http.execute(request, timeout: .seconds(120))
        return Reply(status: response.status, headers: response.headers, body: String(buffer: try await response.body.collect(upTo: 64 << 20)))
    }

    /// Signs up and returns the access token.
    func signUp(_ email: String, tenant: String) async throws -> String {
        let reply = try await self.call(.POST, "/v1/auth/signup", body: #"{"email":"\#(email)","password":"correct horse battery","tenant":{"name":"\#(tenant)"}}"#)
        guard reply.status == .created, let token = (reply.json["tokens"] as? [String: Any])?["accessToken"] as? String else {
            throw TestFailure("sign-up failed: \(reply.status) \(reply.body)")
        }
        return token
    }

    func shutdown() async throws {
        try await self.http.shutdown()
    }
}
