import AsyncHTTPClient
import AtriumCore
import AtriumMail
import AtriumTestSupport
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import PostgresPool
import Testing

/// Revocation must reach every server of a deployment at once. This runs a real second
/// `atrium serve` process on the same database and key ring and watches it learn of sessions
/// ended elsewhere.
@Suite struct SecondServerTests {
    /// How soon the other server must refuse an ended session, in seconds. Well under a second on
    /// a quiet machine (what the README promises); with the whole suite on two cores the second
    /// process has taken 1.1 s to answer. Without the NOTIFY it would accept the token until the
    /// token expires (15 minutes), so this bound still tells the two apart.
    static let prompt = 2.0

    @Test func revocationsReachASecondServerProcessPromptly() async throws {
        let app = try await TestApp.make()
        let server = try await AtriumProcess.start(database: app.database)
        defer { server.stop() }
        let http = HTTPClient(eventLoopGroupProvider: .singleton)

        do {
            try await app.test { client in
                let ann = try await client.signUp("ann@example.com", tenant: "Acme")
                #expect(try await server.status(http, "/v1/me", token: ann.accessToken) == 200)

                // Signed out on this server: the other one refuses the token promptly.
                #expect(try await client.call(.post, "/v1/auth/logout", token: ann.accessToken).status == .noContent)
                let logoutSeen = try await server.secondsUntil(http, "/v1/me", token: ann.accessToken, status: 401)
                #expect(logoutSeen < Self.prompt, "the second server took \(logoutSeen) s")

                // Disabled by an administrator in psql: every server ends the user's sessions.
                let again = try await client.signIn("ann@example.com")
                #expect(try await server.status(http, "/v1/tenant", token: again.accessToken) == 200)
                try await app.database.withSuperuser { admin in
                    _ = try await admin.query("SELECT atrium_admin.disable_user('ann@example.com')")
                }
                let disableSeen = try await server.secondsUntil(http, "/v1/tenant", token: again.accessToken, status: 401)
                #expect(disableSeen < Self.prompt, "the second server took \(disableSeen) s")
                // And so does this server (its own watcher hears the same notification).
                let started = ContinuousClock.now
                var local = try await client.call(.get, "/v1/tenant", token: again.accessToken).status
                while local != .unauthorized, ContinuousClock.now - started < .seconds(Self.prompt) {
                    try await Task.sleep(for: .milliseconds(10))
                    local = try await client.call(.get, "/v1/tenant", token: again.accessToken).status
                }
                #expect(local == .unauthorized, "this server still accepted the token after \(Self.prompt) s")
            }
        } catch {
            try await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }

    /// The reset is asked on one server, its mail sent by the other (the outbox is shared), and
    /// redeeming it ends the user's sessions on both.
    @Test func aPasswordResetEndsSessionsOnASecondServer() async throws {
        let app = try await TestApp.make()
        let server = try await AtriumProcess.start(database: app.database)
        defer { server.stop() }
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            try await app.test { client in
                let ann = try await client.signUp("ann@example.com", tenant: "Acme")
                #expect(try await server.status(http, "/v1/me", token: ann.accessToken) == 200)
                #expect(try await client.call(.post, "/v1/auth/forgot-password", json: ["email": "ann@example.com"]).status == .accepted)
                let token = try await server.mailedToken(prefix: "atp_")
                #expect(try await client.call(.post, "/v1/auth/reset-password", json: ["token": token, "newPassword": "a brand new passphrase"]).status == .noContent)
                let seen = try await server.secondsUntil(http, "/v1/me", token: ann.accessToken, status: 401)
                #expect(seen < Self.prompt, "the second server took \(seen) s")
            }
        } catch {
            try await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }

    @Test func aRestartedServerStillKnowsRecentRevocations() async throws {
        let app = try await TestApp.make()
        let ended = Locked("")
        try await app.test { client in
            let ann = try await client.signUp("ann@example.com", tenant: "Acme")
            #expect(try await client.call(.post, "/v1/auth/logout", token: ann.accessToken).status == .noContent)
            ended.withLock { $0 = ann.accessToken }
        }
        // A server started after the logout loads it from atrium.revoked_sessions.
        let server = try await AtriumProcess.start(database: app.database)
        defer { server.stop() }
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let status = try await server.status(http, "/v1/me", token: ended.value)
        try await http.shutdown()
        #expect(status == 401)
    }
}

/// A child `atrium serve` process (the binary `swift test` builds beside the test bundle).
final class AtriumProcess: @unchecked Sendable {
    let process: Process
    let port: Int
    /// Where it keeps its files; with no SMTP server configured its mail lands in `mail/` here.
    var dataDirectory: String { FileManager.default.temporaryDirectory.appendingPathComponent("atrium-second-\(self.port)").path }

    static func start(database: TestDatabase) async throws -> AtriumProcess {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("atrium").path
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw TestFailure("\(binary) is missing: build the package (swift build) so the atrium executable exists")
        }
        let port = try freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", "--no-migrate"]
        var environment = ProcessInfo.processInfo.environment
        environment["DATABASE_URL"] = database.cluster.connectionString(database: database.name, user: "atrium_app")
        environment["ATRIUM_TOKEN_KEYS"] = TestApp.keyText
        environment["ATRIUM_PORT"] = String(port)
        environment["ATRIUM_HOST"] = "127.0.0.1"
        environment["ATRIUM_PASSWORD_SCRYPT"] = "ln=10,r=8,p=1"
        environment["ATRIUM_LOG_LEVEL"] = ProcessInfo.processInfo.environment["ATRIUM_TEST_LOG"] ?? "error"
        environment["ATRIUM_DATA_DIR"] = FileManager.default.temporaryDirectory.appendingPathComponent("atrium-second-\(port)").path
        try? FileManager.default.removeItem(atPath: environment["ATRIUM_DATA_DIR"]!)
        process.environment = environment
        try process.run()
        let server = AtriumProcess(process: process, port: port)
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { _ = http.shutdown() }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            guard process.isRunning else { throw TestFailure("atrium serve exited with status \(process.terminationStatus)") }
            if (try? await server.status(http, "/readyz")) == 200 { return server }
            try await Task.sleep(for: .milliseconds(50))
        }
        server.stop()
        throw TestFailure("atrium serve did not become ready")
    }

    init(process: Process, port: Int) {
        self.process = process
        self.port = port
    }

    /// The token (`prefix…`) of the first mail file it wrote that carries one (waits up to 10 s).
    func mailedToken(prefix: String) async throws -> String {
        let directory = (self.dataDirectory as NSString).appendingPathComponent("mail")
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            for file in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where file.hasSuffix(".eml") {
                let text = QuotedPrintable.decode((try? String(contentsOfFile: (directory as NSString).appendingPathComponent(file), encoding: .utf8)) ?? "")
                if let range = text.range(of: "#token=" + prefix) {
                    return prefix + String(text[range.upperBound...].prefix { !$0.isWhitespace })
                }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("no mail with a \(prefix) token in \(directory)")
    }

    func status(_ http: HTTPClient, _ path: String, token: String? = nil) async throws -> Int {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(self.port)\(path)")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response = try await http.execute(request, timeout: .seconds(5))
        return Int(response.status.code)
    }

    /// Seconds until `path` answers `status`, polling every 10 ms (fails after 5 s).
    func secondsUntil(_ http: HTTPClient, _ path: String, token: String, status: Int) async throws -> Double {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < .seconds(5) {
            if try await self.status(http, path, token: token) == status {
                let elapsed = ContinuousClock.now - start
                return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TestFailure("\(path) never answered \(status)")
    }

    func stop() {
        guard self.process.isRunning else { return }
        self.process.terminate()
        // Waiting for the exit here would hold one of the few threads every test's tasks run
        // on (as many as cores) for up to 5 s: a thread of its own waits, and kills it then.
        let process = self.process
        Thread.detachNewThread {
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning, Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
    }
}

/// A TCP port nobody listens on now.
func freePort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
        }
    }
    guard ok else { throw TestFailure("no free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}
