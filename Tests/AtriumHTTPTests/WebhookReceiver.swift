import AtriumCrypto
import EmbeddedPostgres
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization

/// A local HTTP server that webhooks are delivered to: it records every request and answers
/// as the test says (by the request's number, from 0).
final class WebhookReceiver: Sendable {
    struct Received: Sendable {
        let path: String
        let id: String
        let timestamp: String
        let signature: String
        let body: String

        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(self.body.utf8))) as? [String: Any] ?? [:]
        }
        var data: [String: Any] { self.json["data"] as? [String: Any] ?? [:] }
    }

    /// The answer to a request: status, and how long to wait before giving it.
    struct Answer: Sendable {
        var status: HTTPResponse.Status = .ok
        var delay: Duration = .zero
        var location: String?
        /// Answer only once `release()` is called (or after a minute).
        var hold = false
    }

    private let received = Mutex<[Received]>([])
    private let released = Atomic<Bool>(false)

    /// Lets held requests be answered.
    func release() {
        self.released.store(true, ordering: .relaxed)
    }
    let respond: @Sendable (Int, String) -> Answer

    init(respond: @escaping @Sendable (Int, String) -> Answer = { _, _ in Answer() }) {
        self.respond = respond
    }

    var requests: [Received] { self.received.withLock { $0 } }

    /// Serves on a free port while `body` runs; `body` gets the receiver's base URL.
    func serve(_ body: @escaping @Sendable (String) async throws -> Void) async throws {
        let router = Router()
        router.post("hooks/:name") { request, context -> Response in
            var request = request
            let bytes = try await request.collectBody(upTo: 1 << 20)
            let header = { (name: String) in request.headers[HTTPField.Name(name)!] ?? "" }
            let index = self.received.withLock { list in
                list.append(Received(
                    path: request.uri.path, id: header("webhook-id"), timestamp: header("webhook-timestamp"),
                    signature: header("webhook-signature"), body: String(buffer: bytes)
                ))
                return list.count - 1
            }
            let answer = self.respond(index, request.uri.path)
            if answer.delay > .zero { try? await Task.sleep(for: answer.delay) }
            let until = ContinuousClock.now + .seconds(60)
            while answer.hold, !self.released.load(ordering: .relaxed), ContinuousClock.now < until {
                try? await Task.sleep(for: .milliseconds(20))
            }
            var headers: HTTPFields = [:]
            if let location = answer.location { headers[.location] = location }
            return Response(status: answer.status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: "answer \(index)")))
        }
        let port = try FreePort.find()
        var logger = Logger(label: "receiver")
        logger.logLevel = .critical
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            while !FreePort.accepts(port) { try await Task.sleep(for: .milliseconds(10)) }
            do {
                try await body("http://127.0.0.1:\(port)")
            } catch {
                self.release()
                await group.triggerGracefulShutdown()
                throw error
            }
            self.release()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    /// Waits until `condition` holds for the requests received (at most `timeout`).
    func wait(timeout: Duration = .seconds(20), until condition: ([Received]) -> Bool) async -> [Received] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let now = self.requests
            if condition(now) { return now }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return self.requests
    }
}

/// Checks a Standard Webhooks signature header against a secret, as a receiver would.
func signatureVerifies(_ received: WebhookReceiver.Received, secret: String) -> Bool {
    guard secret.hasPrefix("whsec_"), let key = Base64.decode(secret.dropFirst(6).replacingOccurrences(of: "=", with: ""), alphabet: .standard) else {
        return false
    }
    let expected = HMACSHA256.authenticationCode(for: Array("\(received.id).\(received.timestamp).\(received.body)".utf8), key: key)
    return received.signature.split(separator: " ").contains { part in
        guard part.hasPrefix("v1,") else { return false }
        let text = part.dropFirst(3).replacingOccurrences(of: "=", with: "")
        return Base64.decode(text, alphabet: .standard).map { constantTimeEquals($0, expected) } ?? false
    }
}
