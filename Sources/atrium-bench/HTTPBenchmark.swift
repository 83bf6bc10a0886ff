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

/// The HTTP front under load: authenticated record routes against `GET /healthz` (no
/// database) as the baseline, over 100 tenants × 10,000 records, with `wrk` when installed
/// and a client of our own otherwise.
struct HTTPBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "Requests per second and latency of the record routes versus GET /healthz."
    )

    @Option(help: "Seconds each route is measured.") var seconds: Int = 15
    @Option(help: "Concurrent keep-alive connections.") var connections: Int = 64
    @Option(help: "Tenants.") var tenants: Int = 100
    @Option(help: "Records per tenant.") var records: Int = 10_000
    @Option(help: "Database connections of the server's pool (default: one per core, as PostgreSQL shares the machine's cores).")
    var poolSize: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "wrk threads.") var threads: Int = 2
    @Option(help: "Measure only these routes, comma-separated, for profiling: healthz, get, post, list.") var only: String?
    @Option(help: "Interleaved slices each route's time is split into.") var slices: Int = 3
    @Flag(help: "Use the built-in client even when wrk is installed.") var ownClient = false

    func run() async throws {
        try await BenchDatabase.withTemporaryCluster { cluster, logger in
            try await self.measure(cluster: cluster, logger: logger)
        }
    }

    private func measure(cluster: EmbeddedPostgres, logger: Logger) async throws {
        let name = "bench"
        try await BenchDatabase.create(name, on: cluster, logger: logger)
        let keyRing = try TokenKeyRing(parsing: TokenKeyRing.generateKey())
        let pool = ConnectionPool(
            configuration: PoolConfiguration(
                connection: PostgresConfiguration(connectionString: cluster.connectionString(database: name, user: "atrium_app")),
                maxConnections: self.poolSize
            ),
            logger: logger
        )
        let database = Database(pool: pool, logger: logger)
        // Signing in is not what is measured: cheap hashing keeps the set-up short.
        let auth = AuthConfiguration(keyRing: keyRing, passwordParameters: Scrypt.Parameters(logN: 10, r: 8, p: 1), hashingPermits: 2, hashingQueue: 64)
        let services = AtriumServices(database: database, auth: auth, logger: logger)
        let port = try FreePort.find()
        // Rate limits are off (64 connections on few tenants would hit them); metrics and the
        // access log stay as in production (the log level here drops its lines).
        let app = try buildApplication(
            server: ServerConfiguration(
                host: "127.0.0.1", port: port,
                rateLimits: RateLimitPolicy(tenantRate: 0, addressRate: 0)
            ),
            services: services,
            logger: logger
        )
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [app], logger: logger))
        let server = Task { try await group.run() }
        do {
            let base = "http://127.0.0.1:\(port)"
            let targets = try await self.seed(services: services, cluster: cluster, database: name, logger: logger)
            try await LoadClient.waitUntilReady(base + "/healthz")
            let results = try await self.run(base: base, targets: targets)
            self.report(results)
        } catch {
            await group.triggerGracefulShutdown()
            _ = try? await server.value
            throw error
        }
        await group.triggerGracefulShutdown()
        try await server.value
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

    /// Each route runs `seconds` in all, in `slices` interleaved slices (healthz, get, post, list,
    /// healthz, get, …), so background load on a shared machine falls on every route alike.
    private func run(base: String, targets: [LoadTarget]) async throws -> [(String, LoadResult)] {
        let wrk = self.ownClient ? nil : Wrk.find()
        let slices = max(1, self.slices)
        print("load: \(self.connections) keep-alive connections, \(self.seconds) s per route in \(slices) interleaved slices, \(wrk == nil ? "built-in client" : "wrk")")
        var routes: [LoadRoute] = [.healthz, .getRecord, .createRecord, .listFirstPage]
        if let only = self.only {
            let names = ["healthz": LoadRoute.healthz, "get": .getRecord, "post": .createRecord, "list": .listFirstPage]
            routes = try only.split(separator: ",").map { name in
                guard let route = names[String(name)] else { throw ValidationError("--only takes healthz, get, post or list, comma-separated") }
                return route
            }
        }
        // A short warm-up so each route starts with prepared statements and hot caches.
        for route in routes {
            _ = try await self.load(route, base: base, targets: targets, seconds: 2, wrk: wrk)
        }
        var parts: [String: [LoadResult]] = [:]
        let sliceSeconds = max(1, self.seconds / slices)
        for _ in 0..<slices {
            for route in routes {
                let result = try await self.load(route, base: base, targets: targets, seconds: sliceSeconds, wrk: wrk)
                guard result.failures == 0 else {
                    throw ValidationError("\(route.label): \(result.failures) requests failed")
                }
                parts[route.label, default: []].append(result)
            }
        }
        var results: [(String, LoadResult)] = []
        for route in routes {
            let slices = parts[route.label] ?? []
            // Mean rate and median over the slices; p99 is the worst slice's, not an average.
            let result = LoadResult(
                rate: slices.map(\.rate).reduce(0, +) / Double(slices.count),
                p50: slices.map(\.p50).reduce(0, +) / Double(slices.count),
                p99: slices.map(\.p99).max() ?? 0,
                failures: 0
            )
            let spread = slices.map { String(format: "%.0f", $0.rate) }.joined(separator: " / ")
            print(String(format: "  %-34@ %9.0f req/s  p50 %7.2f ms  p99 %7.2f ms  (slices: %@)", route.label, result.rate, result.p50 * 1000, result.p99 * 1000, spread))
            results.append((route.label, result))
        }
        return results
    }

    private func load(_ route: LoadRoute, base: String, targets: [LoadTarget], seconds: Int, wrk: String?) async throws -> LoadResult {
        if let wrk {
            return try await Wrk.run(wrk, route: route, base: base, targets: targets, connections: self.connections, threads: self.threads, seconds: seconds)
        }
        return try await LoadClient.run(route: route, base: base, targets: targets, connections: self.connections, seconds: seconds)
    }

    private func report(_ results: [(String, LoadResult)]) {
        let baselines = results.filter { $0.0 == LoadRoute.healthz.label }.map(\.1)
        guard !baselines.isEmpty else {
            print("no baseline measured (GET /healthz was left out), so no ratios")
            return
        }
        let baseline = baselines.map(\.rate).reduce(0, +) / Double(baselines.count)
        print(String(format: "baseline GET /healthz: %.0f req/s", baseline))
        for (label, result) in results where label != LoadRoute.healthz.label {
            print(String(format: "  %-34@ %5.1f %% of baseline, p99 %.2f ms", label, result.rate / baseline * 100, result.p99 * 1000))
        }
        if let get = results.first(where: { $0.0 == LoadRoute.getRecord.label })?.1 {
            let ratio = get.rate / baseline
            print(String(format: "GET record by id: %.0f%% of baseline (target ≥ 40%%), p99 %.2f ms (target < 10 ms)", ratio * 100, get.p99 * 1000))
        }
    }
}

/// A record the load reads, and the token of its tenant's owner.
struct LoadTarget: Sendable {
    let token: String
    let recordID: String
}

enum LoadRoute: Sendable {
    case healthz, getRecord, createRecord, listFirstPage

    var label: String {
        switch self {
        case .healthz: "GET /healthz"
        case .getRecord: "GET record by id"
        case .createRecord: "POST record"
        case .listFirstPage: "GET records?limit=20 (first page)"
        }
    }

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
