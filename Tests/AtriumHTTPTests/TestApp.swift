import AtriumCore
import AtriumCrypto
import AtriumHTTP
import AtriumMail
import AtriumTestSupport
import EmbeddedPostgres
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import PostgresPool
import ServiceLifecycle
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// An Atrium application on a database of its own, driven through Hummingbird's router
/// tester. Password hashing is cheap here (scrypt ln=10) so tests can sign in often; one
/// trusted proxy hop lets tests pick their client address with `X-Forwarded-For`.
struct TestApp {
    let database: TestDatabase
    let services: AtriumServices
    let keyRing: TokenKeyRing
    let pool: ConnectionPool
    /// The server settings; rate limits are off unless a test turns them on (suites sign up
    /// many users from one address), the access log too (it would drown the test output).
    var server = ServerConfiguration(
        proxyHops: 1,
        rateLimits: RateLimitPolicy(tenantRate: 0, addressRate: 0),
        accessLog: false
    )
    /// HTTPS for live tests.
    var tls: TLSSetup?
    /// The server's logger (quiet unless ATRIUM_TEST_LOG is set).
    var logger = TestLogger.make("http")

    static let keyText = "test:" + Base64.encode(Array(repeating: UInt8(42), count: 32))

    static func make(
        on existing: TestDatabase? = nil,
        refreshGrace: Duration = .seconds(10),
        acquireTimeout: Duration = .seconds(10),
        changeFeed: ChangeFeedConfiguration = ChangeFeedConfiguration(),
        webhooks: WebhookConfiguration = WebhookConfiguration(),
        mail: MailDelivery? = nil,
        /// A "read replica" that is the primary itself (so never in recovery, never read from).
        primaryAsReplica: Bool = false,
        configure: (inout AuthConfiguration) -> Void = { _ in }
    ) async throws -> TestApp {
        let database: TestDatabase
        if let existing {
            database = existing
        } else {
            database = try await TestCluster.shared.makeDatabase()
        }
        let pool = database.appPool(maxConnections: 4, acquireTimeout: acquireTimeout)
        // LISTEN needs a session of its own: straight to PostgreSQL even when the pool goes through PgBouncer.
        let replicas = primaryAsReplica ? ReadReplicas(
            configurations: [PoolConfiguration(connection: database.app, maxConnections: 2)],
            maxLag: .seconds(3600), pollInterval: .milliseconds(50), logger: TestLogger.make("replicas")
        ) : nil
        let db = Database(
            pool: pool, listenConnection: database.app, replicas: replicas, tenantScoping: TestCluster.tenantScoping, logger: TestLogger.make("db")
        )
        if TestCluster.tenantScoping == .setLocal {
            try await db.chooseTenantScoping(.fixed(.setLocal))
        }
        let keyRing = try TokenKeyRing(parsing: Self.keyText)
        var configuration = AuthConfiguration(
            keyRing: keyRing,
            refreshGracePeriod: refreshGrace,
            passwordParameters: Scrypt.Parameters(logN: 10, r: 8, p: 1),
            hashingPermits: 2,
            hashingQueue: 256
        )
        configure(&configuration)
        let services = try AtriumServices(database: db, auth: configuration, changeFeed: changeFeed, webhooks: webhooks, mail: mail, logger: TestLogger.make("services"))
        return TestApp(database: database, services: services, keyRing: keyRing, pool: pool)
    }

    var application: some ApplicationProtocol {
        try! buildApplication(
            server: self.server,
            services: self.services,
            tls: self.tls,
            logger: self.logger
        )
    }

    /// Runs the application as `atrium serve` would (HummingbirdTesting's live mode rebuilds the
    /// server configuration and drops some settings, such as the connection cap), on a free port.
    func serve(_ body: @escaping @Sendable (Int) async throws -> Void) async throws {
        var app = self
        app.server.port = try FreePort.find()
        let port = app.server.port
        let serviceGroup = ServiceGroup(configuration: .init(services: [app.application], logger: TestLogger.make("serve")))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await serviceGroup.run() }
            let deadline = ContinuousClock.now + .seconds(30)
            while !FreePort.accepts(port) {
                guard ContinuousClock.now < deadline else { throw TestFailure("the server did not start") }
                try await Task.sleep(for: .milliseconds(20))
            }
            do {
                try await body(port)
            } catch {
                await serviceGroup.triggerGracefulShutdown()
                throw error
            }
            await serviceGroup.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }

    func test(_ setup: TestingSetup = .router, _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        try await self.application.test(setup) { client in
            try await body(client)
        }
    }
}

/// A response with its JSON body parsed.
struct JSONResponse: Sendable {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let body: String

    var object: [String: Any] { Self.object(of: self.body) }

    /// `body` as a JSON object; a body that is not one fails the test (a field read from
    /// garbage must not pass as a missing field).
    static func object(of body: String) -> [String: Any] {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] else {
            Issue.record("the body is not a JSON object: \(body.prefix(200))")
            return [:]
        }
        return object
    }

    subscript(path: String) -> Any? {
        var current: Any? = self.object
        for key in path.split(separator: ".") {
            if let index = Int(key), let array = current as? [Any] {
                current = index < array.count ? array[index] : nil
            } else {
                current = (current as? [String: Any])?[String(key)]
            }
        }
        return current
    }

    func string(_ path: String) -> String? { self[path] as? String }

    /// The body without the request id, to compare two answers.
    var bodyWithoutRequestID: [String: String] {
        var object = self.object
        object.removeValue(forKey: "requestId")
        return object.mapValues { "\($0)" }
    }
}

extension TestClientProtocol {
    /// Sends a request with an optional bearer token and JSON body.
    func call(
        _ method: HTTPRequest.Method,
        _ uri: String,
        token: String? = nil,
        json: [String: Any]? = nil,
        from address: String = "192.0.2.1",
        headers extra: HTTPFields = [:]
    ) async throws -> JSONResponse {
        var headers = extra
        headers[.init("X-Forwarded-For")!] = address
        if let token { headers[.authorization] = "Bearer \(token)" }
        var body: ByteBuffer?
        if let json {
            headers[.contentType] = "application/json"
            body = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json))
        }
        return try await self.execute(uri: uri, method: method, headers: headers, body: body) { response in
            JSONResponse(status: response.status, headers: response.headers, body: String(buffer: response.body))
        }
    }

    /// Signs up a user with a tenant; returns (access token, refresh token, tenant id, user id).
    func signUp(_ email: String, tenant: String, password: String = "correct horse battery") async throws -> SignedIn {
        let response = try await self.call(.post, "/v1/auth/signup", json: [
            "email": email, "password": password, "tenant": ["name": tenant],
        ])
        guard response.status == .created else { throw TestFailure("signup of \(email) failed: \(response.status) \(response.body)") }
        return try SignedIn(response)
    }

    func signIn(_ email: String, password: String = "correct horse battery", tenant: String? = nil, from address: String = "192.0.2.1") async throws -> SignedIn {
        var body: [String: Any] = ["email": email, "password": password]
        if let tenant { body["tenant"] = tenant }
        let response = try await self.call(.post, "/v1/auth/login", json: body, from: address)
        guard response.status == .ok else { throw TestFailure("login of \(email) failed: \(response.status) \(response.body)") }
        return try SignedIn(response)
    }

    /// Invites `email` into the inviter's tenant with `role` and accepts as a new user.
    func addMember(_ email: String, role: String, by inviter: SignedIn) async throws -> SignedIn {
        let invitation = try await self.call(.post, "/v1/invitations", token: inviter.accessToken, json: ["email": email, "role": role])
        guard invitation.status == .created, let token = invitation.string("token") else {
            throw TestFailure("invitation failed: \(invitation.status) \(invitation.body)")
        }
        let accepted = try await self.call(.post, "/v1/invitations/accept", json: ["token": token, "password": "correct horse battery"])
        guard accepted.status == .ok else { throw TestFailure("accept failed: \(accepted.status) \(accepted.body)") }
        return try SignedIn(accepted)
    }
}

/// The parts of a sign-in response tests use.
struct SignedIn: Sendable {
    let accessToken: String
    let refreshToken: String
    let tenantID: String
    let userID: String

    init(_ response: JSONResponse) throws {
        guard let access = response.string("tokens.accessToken"), let refresh = response.string("tokens.refreshToken"),
              let tenant = response.string("tenant.id"), let user = response.string("user.id")
        else { throw TestFailure("not a sign-in response: \(response.body)") }
        self.accessToken = access
        self.refreshToken = refresh
        self.tenantID = tenant
        self.userID = user
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
