import AtriumCore
import AtriumHTTP
import AtriumTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// Every kind of error is an RFC 9457 problem document with the right status and headers.
@Suite struct ErrorAndLimitTests {
    static func expectProblem(_ response: JSONResponse, _ status: HTTPResponse.Status, type: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(response.status == status, "\(response.body)", sourceLocation: sourceLocation)
        #expect(response.headers[.contentType] == "application/problem+json", sourceLocation: sourceLocation)
        #expect(response.string("type") == "/problems/\(type)", sourceLocation: sourceLocation)
        #expect(response["status"] as? Int == Int(status.code), sourceLocation: sourceLocation)
        #expect(response.string("title")?.isEmpty == false, sourceLocation: sourceLocation)
        #expect(response.string("detail")?.isEmpty == false, sourceLocation: sourceLocation)
        #expect(response.string("requestId") == response.headers[.init("X-Request-ID")!], sourceLocation: sourceLocation)
    }

    @Test func unknownRoutesAndWrongMethods() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            Self.expectProblem(try await client.call(.get, "/v1/nothing-here"), .notFound, type: "not-found")
            Self.expectProblem(try await client.call(.get, "/v1/collections/a/records/b/c"), .notFound, type: "not-found")

            let wrong = try await client.call(.delete, "/v1/auth/login")
            Self.expectProblem(wrong, .methodNotAllowed, type: "method-not-allowed")
            #expect(wrong.headers[.allow] == "POST")

            let record = try await client.call(.post, "/v1/collections/tasks/records/0b5a4a52-5d2e-4b43-8f5e-3c1f54b0a7a1")
            Self.expectProblem(record, .methodNotAllowed, type: "method-not-allowed")
            let allowed = Set((record.headers[.allow] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            #expect(allowed == ["GET", "HEAD", "PUT", "PATCH", "DELETE"])

            // A literal segment beats a parameter, as in the router.
            let accept = try await client.call(.delete, "/v1/invitations/accept")
            #expect(accept.status == .methodNotAllowed)
            #expect(accept.headers[.allow] == "POST")
            let batch = try await client.call(.get, "/v1/collections/tasks/records/batch")
            #expect(batch.status == .methodNotAllowed)
            #expect(batch.headers[.allow] == "POST")
            // Decided before authentication: a bad token does not turn a 404 or 405 into a 401.
            #expect(try await client.call(.get, "/v1/nothing-here", token: "garbage").status == .notFound)
            #expect(try await client.call(.put, "/v1/me", token: "garbage").status == .methodNotAllowed)
        }
    }

    @Test func badBodies() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("errors@example.com", tenant: "Errors")
            let broken = try await client.execute(
                uri: "/v1/collections", method: .post,
                headers: [.authorization: "Bearer \(owner.accessToken)", .contentType: "application/json", .init("X-Request-ID")!: "req-1"],
                body: ByteBuffer(string: "{\"name\": \"tasks\",\n \"fields\": {,}}")
            ) { JSONResponse(status: $0.status, headers: $0.headers, body: String(buffer: $0.body)) }
            Self.expectProblem(broken, .badRequest, type: "malformed-json")
            let reason = ((broken["errors"] as? [[String: Any]])?.first?["reason"] as? String) ?? ""
            #expect(reason.contains("line 2"), "\(reason)")

            let text = try await client.execute(
                uri: "/v1/collections", method: .post,
                headers: [.authorization: "Bearer \(owner.accessToken)", .contentType: "text/plain"],
                body: ByteBuffer(string: "{}")
            ) { JSONResponse(status: $0.status, headers: $0.headers, body: String(buffer: $0.body)) }
            Self.expectProblem(text, .unsupportedMediaType, type: "unsupported-media-type")

            let invalid = try await client.call(.post, "/v1/collections", token: owner.accessToken, json: ["name": "Not A Slug"])
            Self.expectProblem(invalid, .unprocessableContent, type: "validation-failed")
            #expect((invalid["errors"] as? [[String: Any]])?.first?["field"] as? String == "/name")

            let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
            let tooDeep = try await client.execute(
                uri: "/v1/collections", method: .post,
                headers: [.authorization: "Bearer \(owner.accessToken)", .contentType: "application/json"],
                body: ByteBuffer(string: deep)
            ) { JSONResponse(status: $0.status, headers: $0.headers, body: String(buffer: $0.body)) }
            Self.expectProblem(tooDeep, .badRequest, type: "malformed-json")
        }
    }

    @Test func bodiesOverTheLimitAre413() async throws {
        var app = try await TestApp.make()
        app.server.limits.maximumBodySize = 4096
        try await app.test { client in
            let owner = try await client.signUp("limits@example.com", tenant: "Limits")
            let big = "{\"name\": \"" + String(repeating: "a", count: 8000) + "\"}"
            // Announced by Content-Length: refused before reading.
            let announced = try await client.execute(
                uri: "/v1/collections", method: .post,
                headers: [.authorization: "Bearer \(owner.accessToken)", .contentType: "application/json", .contentLength: String(big.utf8.count)],
                body: ByteBuffer(string: big)
            ) { JSONResponse(status: $0.status, headers: $0.headers, body: String(buffer: $0.body)) }
            Self.expectProblem(announced, .contentTooLarge, type: "content-too-large")
            #expect(announced.string("detail")?.contains("4096") == true)
            // Without a length (as if chunked): cut off while reading.
            let streamed = try await client.execute(
                uri: "/v1/collections", method: .post,
                headers: [.authorization: "Bearer \(owner.accessToken)", .contentType: "application/json"],
                body: ByteBuffer(string: big)
            ) { JSONResponse(status: $0.status, headers: $0.headers, body: String(buffer: $0.body)) }
            Self.expectProblem(streamed, .contentTooLarge, type: "content-too-large")
            // Under the limit still works.
            let small = try await client.call(.post, "/v1/collections", token: owner.accessToken, json: ["name": "small"])
            #expect(small.status == .created, "\(small.body)")
        }
    }

    @Test func bodiesWithTooManyKeysOrValuesAre413BeforeAuthentication() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let limits = AtriumCore.JSONParser.Limits.request
            // The 40,000-key sign-in that once cost 40 s of CPU, made just past the cap.
            let keys = (0...limits.maximumKeysPerObject).map { "\"k\($0)\":1" }.joined(separator: ",")
            let manyKeys = try await client.raw(.post, "/v1/auth/login", token: nil, body: "{\(keys)}")
            Self.expectProblem(manyKeys, .contentTooLarge, type: "content-too-large")
            #expect(manyKeys.string("reason") == "too_complex")
            #expect(manyKeys.headers[.connection] == nil)

            let values = "[" + Array(repeating: "0", count: limits.maximumValues).joined(separator: ",") + "]"
            let manyValues = try await client.raw(.post, "/v1/auth/login", token: nil, body: values)
            Self.expectProblem(manyValues, .contentTooLarge, type: "content-too-large")

            // At the cap the body is read; its unknown keys are listed, but not all ten thousand.
            let atCap = (0..<limits.maximumKeysPerObject).map { "\"k\($0)\":1" }.joined(separator: ",")
            let unknown = try await client.raw(.post, "/v1/auth/login", token: nil, body: "{\(atCap)}")
            Self.expectProblem(unknown, .unprocessableContent, type: "validation-failed")
            #expect((unknown["errors"] as? [Any])?.count == AtriumError.maximumListedFailures)
            #expect(unknown.string("detail")?.contains("\(limits.maximumKeysPerObject + 0)") == true)
        }
    }

    @Test func requestsRunningPastTheTimeoutAre503() async throws {
        var app = try await TestApp.make()
        app.server.limits.requestTimeout = .milliseconds(500)
        let pool = app.pool
        // Signed up directly, not through the (deliberately impatient) server.
        let signedUp = try await app.services.auth.signUp(
            email: "slow@example.com", password: "correct horse battery", tenantName: "Slow", tenantSlug: nil,
            origin: RequestOrigin(clientAddress: "192.0.2.1", requestID: "setup")
        )
        let token = signedUp.tokens.accessToken
        try await app.test { client in
            // Hold every connection of the pool, so the next request waits past its deadline.
            // Held until released (a fixed sleep could end before a loaded machine got here,
            // and the wait below would never see all four held).
            let release = Locked(false)
            let holders = (0..<4).map { _ in
                Task { try await pool.withConnection { _ in while !release.value { try await Task.sleep(for: .milliseconds(5)) } } }
            }
            // All four held by the holders themselves: background work (the heartbeat) holding one
            // would free it in a moment for the request below.
            let deadline = ContinuousClock.now + .seconds(30)
            while pool.statistics.inUse < 4 || pool.statistics.waiting > 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            let response = try await client.call(.get, "/v1/collections", token: token)
            release.withLock { $0 = true }
            Self.expectProblem(response, .serviceUnavailable, type: "service-unavailable")
            #expect(response.string("reason") == "request_timeout")
            #expect(response.headers[.retryAfter] != nil)
            for holder in holders { _ = try? await holder.value }
        }
    }
}
