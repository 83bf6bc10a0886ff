import ArgumentParser
import AtriumCore
import AtriumCrypto
import AtriumHTTP
import AtriumText
import EmbeddedPostgres
import Foundation
import Logging
import PostgresPool
import ServiceLifecycle

/// The shipped server under load: `atrium serve` as a child process with the settings users
/// run (access log on; rate limits off, as 64 connections on a few tenants would hit them),
/// against a bench cluster of 100 tenants × 10,000 records, with a bare Hummingbird route
/// measured in the same run as the reference every ratio is against. `wrk` drives the load
/// when installed, a client of our own otherwise.
struct HTTPBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "Requests per second, latency and CPU per request of the shipped server versus a bare Hummingbird route."
    )

    @Option(help: "Seconds each route is measured.") var seconds: Int = 15
    @Option(help: "Concurrent keep-alive connections.") var connections: Int = 64
    @Option(help: "Tenants.") var tenants: Int = 100
    @Option(help: "Records per tenant.") var records: Int = 10_000
    @Option(help: "ATRIUM_DB_MAX_CONNECTIONS for the server (default: as shipped).") var poolSize: Int?
    @Option(help: "ATRIUM_ACCESS_LOG for the server: on (as shipped) or off.") var accessLog: String = "on"
    @Option(help: "The atrium executable (default: the one built next to this benchmark).") var server: String?
    @Option(help: "wrk threads.") var threads: Int = 2
    @Option(help: "Measure only these routes, comma-separated, for profiling: bare, healthz, get, post, list.") var only: String?
    @Option(help: "Interleaved slices each route's time is split into.") var slices: Int = 3
    @Flag(help: "Use the built-in client even when wrk is installed.") var ownClient = false

    func run() async throws {
        guard ["on", "off"].contains(self.accessLog) else { throw ValidationError("--access-log takes on or off") }
        try await BenchDatabase.withTemporaryCluster { cluster, logger in
            try await self.measure(cluster: cluster, logger: logger)
        }
    }

    private func measure(cluster: EmbeddedPostgres, logger: Logger) async throws {
        let name = "bench"
        try await BenchDatabase.create(name, on: cluster, logger: logger)
        let keyText = TokenKeyRing.generateKey()
        let keyRing = try TokenKeyRing(parsing: keyText)
        let connectionString = cluster.connectionString(database: name, user: "atrium_app")
        let pool = ConnectionPool(
            configuration: PoolConfiguration(connection: PostgresConfiguration(connectionString: connectionString), maxConnections: 2),
            logger: logger
        )
        let database = Database(pool: pool, logger: logger)
        // Signing in is not what is measured: cheap hashing keeps the set-up short. The tokens
        // minted here are signed with the keys the server is given.
        let auth = AuthConfiguration(keyRing: keyRing, passwordParameters: Scrypt.Parameters(logN: 10, r: 8, p: 1), hashingPermits: 2, hashingQueue: 64)
        let services = AtriumServices(database: database, auth: auth, logger: logger)
        let barePort = try FreePort.find()
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [database, BareHummingbird.application(port: barePort)], logger: logger
        ))
        let running = Task { try await group.run() }
        var served: ServedProcess?
        do {
            let targets = try await self.seed(services: services, cluster: cluster, database: name, logger: logger)
            var environment = [
                "DATABASE_URL": connectionString,
                "ATRIUM_NO_MIGRATE": "1",
                "ATRIUM_TOKEN_KEYS": keyText,
                "ATRIUM_RATE_LIMIT_TENANT": "0",
                "ATRIUM_RATE_LIMIT_ADDRESS": "0",
                "ATRIUM_ACCESS_LOG": self.accessLog,
            ]
            if let poolSize = self.poolSize { environment["ATRIUM_DB_MAX_CONNECTIONS"] = "\(poolSize)" }
            let server = try ServedProcess(executable: self.server ?? ServedProcess.siblingExecutable, environment: environment, port: try FreePort.find())
            served = server
            let endpoints = Endpoints(
                bare: "http://127.0.0.1:\(barePort)", atrium: "http://127.0.0.1:\(server.port)",
                server: server.pid, dataDirectory: cluster.dataDirectory
            )
            do {
                try await LoadClient.waitUntilReady(endpoints.atrium + "/readyz")
            } catch {
                throw ValidationError("atrium serve did not become ready:\n\(server.logTail)")
            }
            try await LoadClient.waitUntilReady(endpoints.bare + "/")
            print("server: \(self.server ?? ServedProcess.siblingExecutable) serve, access log \(self.accessLog), pool \(self.poolSize.map(String.init) ?? "as shipped")")
            let results = try await self.run(endpoints, targets: targets)
            self.report(results, rss: ProcessUsage.residentMiB(server.pid))
        } catch {
            served?.stop()
            await group.triggerGracefulShutdown()
            _ = try? await running.value
            throw error
        }
        served?.stop()
        await group.triggerGracefulShutdown()
        try await running.value
    }

    /// Where each route is sent, and whose CPU it costs.
    struct Endpoints {
        let bare: String
        let atrium: String
        let server: Int32
        let dataDirectory: String

        func base(_ route: LoadRoute) -> String { route == .bare ? self.bare : self.atrium }
        /// The process that serves `route`: the bare route runs in this process.
        func process(_ route: LoadRoute) -> Int32 { route == .bare ? getpid() : self.server }
    }

    /// One owner per tenant, an `items` collection each, and `records` records per tenant
    /// written straight into the tables (with their index rows) by the superuser.
    private func seed(services: AtriumServices, cluster: EmbeddedPostgres, database: String, logger: Logger) async throws -> [LoadTarget] {
        let started = ContinuousClock.now
        let origin = RequestOrigin(clientAddress: "127.0.0.1", requestID: "bench-seed")
        let definition = try JSONParser.parse("""
            {"name": "items", "fields": {
                "title": {"type": "string", "required": true, "maxLength": 200},
                "status": {"type": "enum", "values": ["open", "doing", "done"], "default": "open", "indexed": true},
                "priority": {"type": "integer", "min": 1, "max": 5, "indexed": true},
                "body": {"type": "text"},
                "done": {"type": "boolean"}
            }}
            """)
        var owners: [(tenant: UUID, user: UUID, token: String)] = []
        for number in 0..<self.tenants {
            let signIn = try await services.auth.signUp(
                email: "owner\(number)@bench.example", password: "benchmark password \(number)",
                tenantName: "Bench \(number)", tenantSlug: "bench-\(number)", origin: origin
            )
            let principal = try await services.auth.authenticate(bearer: signIn.tokens.accessToken)
            _ = try await services.collections.create(principal, body: definition)
            owners.append((signIn.tenant.tenantID, signIn.user.id, signIn.tokens.accessToken))
        }
        let admin = try await PostgresConnection.connect(
            configuration: PostgresConfiguration(connectionString: cluster.connectionString(database: database), statementTimeout: nil),
            logger: logger
        )
        let ownerList = owners.map { "('\($0.tenant.lowercasedString)'::uuid, '\($0.user.lowercasedString)'::uuid)" }.joined(separator: ", ")
        // ~200 bytes of data per record, as the service would store it.
        try await admin.simpleQuery("""
            CREATE TEMP TABLE seed AS
            SELECT o.tenant_id, c.collection_id, o.user_id, i, gen_random_uuid() AS record_id,
                   jsonb_build_object(
                       'title', 'Item ' || i || ' of ' || c.collection_id,
                       'status', (ARRAY['open', 'doing', 'done'])[1 + i % 3],
                       'priority', 1 + i % 5,
                       'body', md5(i::text) || md5(o.tenant_id::text) || md5(i::text || 'x'),
                       'done', i % 2 = 0) AS data
            FROM (VALUES \(ownerList)) AS o(tenant_id, user_id)
            JOIN atrium.collections c ON c.tenant_id = o.tenant_id AND c.name = 'items'
            CROSS JOIN generate_series(1, \(self.records)) AS i;
            INSERT INTO atrium.records (tenant_id, collection_id, record_id, data, created_at, updated_at, created_by, created_by_kind, updated_by, updated_by_kind)
            SELECT tenant_id, collection_id, record_id, data, now() - (\(self.records) - i) * interval '1 ms', now() - (\(self.records) - i) * interval '1 ms',
                   user_id, 'user', user_id, 'user'
            FROM seed ORDER BY tenant_id, i;
            INSERT INTO atrium.record_values (tenant_id, collection_id, record_id, field, position, text_value, num_value)
            SELECT tenant_id, collection_id, record_id, 'status', 0, data->>'status', NULL FROM seed
            UNION ALL
            SELECT tenant_id, collection_id, record_id, 'priority', 0, NULL, (data->>'priority')::numeric FROM seed;
            """)
        let sample = try await admin.query("SELECT tenant_id, record_id FROM seed WHERE i % 50 = 0")
        let average = try await admin.query("SELECT avg(octet_length(data::text))::int8 FROM seed")
        try await admin.simpleQuery("DROP TABLE seed")
        try await admin.simpleQuery("VACUUM ANALYZE")
        await admin.close()
        var tokens: [UUID: String] = [:]
        for owner in owners { tokens[owner.tenant] = owner.token }
        let targets = try sample.map { row -> LoadTarget in
            let (tenant, record) = try row.decode((UUID, UUID).self)
            return LoadTarget(token: tokens[tenant]!, recordID: record.lowercasedString)
        }
        print(String(
            format: "seeded %ld tenants × %ld records (%ld bytes of JSON each on average) in %.0f s",
            self.tenants, self.records, (try? average.first?.decode(Int.self, column: 0)) ?? 0,
            (ContinuousClock.now - started).seconds
        ))
        return targets
    }

    /// One route's figures over its slices.
    struct Measured {
        var rate: Double
        var p50: Double
        var p99: Double
        /// CPU microseconds per request of the process serving it, and of all of PostgreSQL.
        var serverCPU: Double
        var databaseCPU: Double
    }

    /// Each route runs `seconds` in all, in `slices` interleaved slices (bare, healthz, get, post,
    /// list, bare, healthz, …), so background load on a shared machine falls on every route alike.
    private func run(_ endpoints: Endpoints, targets: [LoadTarget]) async throws -> [(LoadRoute, Measured)] {
        let wrk = self.ownClient ? nil : Wrk.find()
        let slices = max(1, self.slices)
        print("load: \(self.connections) keep-alive connections, \(self.seconds) s per route in \(slices) interleaved slices, \(wrk == nil ? "built-in client" : "wrk")")
        var routes: [LoadRoute] = [.bare, .healthz, .getRecord, .createRecord, .listFirstPage]
        if let only = self.only {
            let names = ["bare": LoadRoute.bare, "healthz": .healthz, "get": .getRecord, "post": .createRecord, "list": .listFirstPage]
            routes = try only.split(separator: ",").map { name in
                guard let route = names[String(name)] else { throw ValidationError("--only takes bare, healthz, get, post or list, comma-separated") }
                return route
            }
        }
        // A short warm-up so each route starts with prepared statements and hot caches.
        for route in routes {
            _ = try await self.load(route, base: endpoints.base(route), targets: targets, seconds: 2, wrk: wrk)
        }
        var parts: [LoadRoute: [(result: LoadResult, requests: Double, server: Double, database: Double)]] = [:]
        let sliceSeconds = max(1, self.seconds / slices)
        for _ in 0..<slices {
            for route in routes {
                let process = endpoints.process(route)
                let serverBefore = ProcessUsage.cpuSeconds(process)
                let databaseBefore = ProcessUsage.clusterCPUSeconds(dataDirectory: endpoints.dataDirectory)
                let started = ContinuousClock.now
                let result = try await self.load(route, base: endpoints.base(route), targets: targets, seconds: sliceSeconds, wrk: wrk)
                let elapsed = (ContinuousClock.now - started).seconds
                guard result.failures == 0 else {
                    throw ValidationError("\(route.label): \(result.failures) requests failed")
                }
                parts[route, default: []].append((
                    result, result.rate * min(elapsed, Double(sliceSeconds)),
                    ProcessUsage.cpuSeconds(process) - serverBefore,
                    ProcessUsage.clusterCPUSeconds(dataDirectory: endpoints.dataDirectory) - databaseBefore
                ))
            }
        }
        var results: [(LoadRoute, Measured)] = []
        for route in routes {
            let slices = parts[route] ?? []
            let requests = slices.map(\.requests).reduce(0, +)
            // Mean rate and median over the slices; p99 is the worst slice's, not an average.
            let measured = Measured(
                rate: slices.map(\.result.rate).reduce(0, +) / Double(slices.count),
                p50: slices.map(\.result.p50).reduce(0, +) / Double(slices.count),
                p99: slices.map(\.result.p99).max() ?? 0,
                serverCPU: slices.map(\.server).reduce(0, +) / max(requests, 1) * 1_000_000,
                databaseCPU: slices.map(\.database).reduce(0, +) / max(requests, 1) * 1_000_000
            )
            let spread = slices.map { String(format: "%.0f", $0.result.rate) }.joined(separator: " / ")
            print(String(
                format: "  %@ %9.0f req/s  p50 %7.2f ms  p99 %7.2f ms  server %6.1f µs/req  PostgreSQL %6.1f µs/req  (slices: %@)",
                route.padded, measured.rate, measured.p50 * 1000, measured.p99 * 1000, measured.serverCPU, measured.databaseCPU, spread
            ))
            results.append((route, measured))
        }
        return results
    }

    private func load(_ route: LoadRoute, base: String, targets: [LoadTarget], seconds: Int, wrk: String?) async throws -> LoadResult {
        if let wrk {
            return try await Wrk.run(wrk, route: route, base: base, targets: targets, connections: self.connections, threads: self.threads, seconds: seconds)
        }
        return try await LoadClient.run(route: route, base: base, targets: targets, connections: self.connections, seconds: seconds)
    }

    private func report(_ results: [(LoadRoute, Measured)], rss: Double) {
        print(String(format: "atrium serve resident memory after the run: %.0f MiB", rss))
        guard let baseline = results.first(where: { $0.0 == .bare })?.1 else {
            print("no baseline measured (the bare route was left out), so no ratios")
            return
        }
        print(String(format: "baseline, bare Hummingbird constant route: %.0f req/s, %.1f µs CPU/req", baseline.rate, baseline.serverCPU))
        let targets: [LoadRoute: (share: Double, p99: Double?)] = [
            .healthz: (85, nil), .getRecord: (40, 10), .listFirstPage: (25, 15), .createRecord: (12, nil),
        ]
        for (route, result) in results where route != .bare {
            var line = String(format: "  %@ %5.1f %% of baseline, p99 %.2f ms", route.padded, result.rate / baseline.rate * 100, result.p99 * 1000)
            if let target = targets[route] {
                line += String(format: "   (target ≥ %.0f %%", target.share)
                if let p99 = target.p99 { line += String(format: ", p99 < %.0f ms", p99) }
                line += ")"
            }
            print(line)
        }
    }
}

/// A record the load reads, and the token of its tenant's owner.
struct LoadTarget: Sendable {
    let token: String
    let recordID: String
}

enum LoadRoute: Sendable, Hashable {
    case bare, healthz, getRecord, createRecord, listFirstPage

    var label: String {
        switch self {
        case .bare: "bare Hummingbird GET /"
        case .healthz: "GET /healthz"
        case .getRecord: "GET record by id"
        case .createRecord: "POST record"
        case .listFirstPage: "GET records?limit=20 (first page)"
        }
    }

    /// The label in a column of fixed width.
    var padded: String { self.label.padding(toLength: 34, withPad: " ", startingAt: 0) }

    static let collectionPath = "/v1/collections/items/records"
    static let newRecord = #"{"title":"A new item written by the benchmark","status":"doing","priority":3,"body":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","done":false}"#
}

/// Requests per second and latency percentiles (seconds) of one run.
struct LoadResult: Sendable {
    var rate: Double
    var p50: Double
    var p99: Double
    var failures: Int
}


/// A TCP port nothing listens on right now.
enum FreePort {
    static func find() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw ValidationError("socket() failed") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard bound else { throw ValidationError("could not find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
