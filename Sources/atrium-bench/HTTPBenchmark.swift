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

    @Option(help: "Seconds each route is measured.") var seconds: Int = 16
    @Option(help: "Concurrent keep-alive connections.") var connections: Int = 64
    @Option(help: "Tenants.") var tenants: Int = 100
    @Option(help: "Records per tenant.") var records: Int = 10_000
    @Option(help: "ATRIUM_DB_MAX_CONNECTIONS for the server (default: as shipped).") var poolSize: Int?
    @Option(help: "ATRIUM_DB_GATHER_DELAY for the server, milliseconds; 0 turns gathering off (default: as shipped).") var gatherDelay: Int?
    @Option(help: "ATRIUM_ACCESS_LOG for the server: on (as shipped) or off.") var accessLog: String = "on"
    @Option(help: "The atrium executable (default: the one built next to this benchmark).") var server: String?
    @Option(help: "wrk threads.") var threads: Int = 2
    @Option(help: "Measure only these routes, comma-separated, for profiling: bare, healthz, get, patch, post, list.") var only: String?
    @Option(help: "Records in the one collection of the scale checks (0 skips them).") var scaleRecords: Int = 1_000_000
    @Option(help: "Interleaved slices each route's time is split into (even: each route runs as often early as late).") var slices: Int = 4
    @Flag(help: "Use the built-in client even when wrk is installed.") var ownClient = false
    @Flag(help: "Serve through PgBouncer in transaction mode (ATRIUM_DATABASE_POOLER=transaction; its CPU is counted with PostgreSQL's).")
    var pgbouncer = false
    @Flag(help: "PostgreSQL on the last CPU alone; the server, wrk and this process on the others (as with a database server of its own).")
    var splitCores = false
    @Flag(help: "Commits flushed to disk and waited for (fsync, synchronous_commit and full_page_writes on, as atrium serve's own cluster runs); the default cluster skips that, as tests do.")
    var durable = false

    func run() async throws {
        guard ["on", "off"].contains(self.accessLog) else { throw ValidationError("--access-log takes on or off") }
        try await BenchDatabase.withTemporaryCluster(durable: self.durable) { cluster, logger in
            try await self.measure(cluster: cluster, logger: logger)
        }
    }

    private func measure(cluster: EmbeddedPostgres, logger: Logger) async throws {
        let name = "bench"
        let bench = try await BenchDatabase.served(name, on: cluster, logger: logger)
        let (keyText, connectionString, database, services) = (bench.keyText, bench.connectionString, bench.database, bench.services)
        let barePort = try FreePort.find()
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [database, BareHummingbird.application(port: barePort)], logger: logger
        ))
        let running = Task { try await group.run() }
        var served: ServedProcess?
        var pooler: EmbeddedPgBouncer?
        defer { pooler?.stop() }
        do {
            let seeded = try await self.seed(services: services, cluster: cluster, database: name, logger: logger)
            var environment = [
                "DATABASE_URL": connectionString,
                "ATRIUM_NO_MIGRATE": "1",
                "ATRIUM_TOKEN_KEYS": keyText,
                "ATRIUM_RATE_LIMIT_TENANT": "0",
                "ATRIUM_RATE_LIMIT_ADDRESS": "0",
                "ATRIUM_ACCESS_LOG": self.accessLog,
            ]
            if let poolSize = self.poolSize { environment["ATRIUM_DB_MAX_CONNECTIONS"] = "\(poolSize)" }
            if let gatherDelay = self.gatherDelay { environment["ATRIUM_DB_GATHER_DELAY"] = "\(gatherDelay)" }
            if self.pgbouncer {
                // As many server connections as the pool would open itself.
                let bouncer = try await EmbeddedPgBouncer.start(in: cluster, users: ["atrium_app"], poolSize: self.poolSize ?? 8)
                pooler = bouncer
                environment["DATABASE_URL"] = bouncer.connectionString(database: name, user: "atrium_app")
                environment["ATRIUM_DATABASE_POOLER"] = "transaction"
                environment["ATRIUM_LISTEN_DATABASE_URL"] = connectionString
            }
            let server = try ServedProcess(executable: self.server ?? ServedProcess.siblingExecutable, environment: environment, port: try FreePort.find())
            served = server
            let endpoints = Endpoints(
                bare: "http://127.0.0.1:\(barePort)", atrium: "http://127.0.0.1:\(server.port)",
                server: server.pid, dataDirectory: cluster.dataDirectory, pooler: pooler?.pid
            )
            do {
                try await LoadClient.waitUntilReady(endpoints.atrium + "/readyz")
            } catch {
                throw ValidationError("atrium serve did not become ready:\n\(server.logTail)")
            }
            try await LoadClient.waitUntilReady(endpoints.bare + "/")
            if self.splitCores {
                try await CPUSplit.apply(server: server.pid, dataDirectory: cluster.dataDirectory)
            }
            print(
                "server: \(self.server ?? ServedProcess.siblingExecutable) serve, access log \(self.accessLog), pool \(self.poolSize.map(String.init) ?? "as shipped")\(self.gatherDelay.map { ", gather delay \($0) ms" } ?? "")"
                    + (self.pgbouncer ? ", through PgBouncer (transaction mode; its CPU counted with PostgreSQL's)" : "")
                    + (self.splitCores ? ", PostgreSQL on CPU \(CPUSplit.databaseCPU) alone" : ", all on \(CPUSplit.count) CPUs")
                    + (self.durable ? "; commits flushed and waited for" : "; commits not flushed (fsync off, as in tests)")
            )
            let results = try await self.run(endpoints, routes: try self.routes(), targets: seeded.targets)
            self.report(results, rss: ProcessUsage.residentMiB(server.pid))
            if self.only == nil {
                try await self.writeAnatomy(endpoints, targets: seeded.targets, tokens: seeded.tokens, cluster: cluster, database: name, logger: logger)
            }
            if let scale = seeded.scale {
                try await self.scaleChecks(endpoints, token: scale, cluster: cluster, database: name, logger: logger)
            }
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
        /// PgBouncer, when the server goes through it: its CPU is the database side's.
        var pooler: Int32?

        func base(_ route: LoadRoute) -> String { route == .bare ? self.bare : self.atrium }
        /// The process that serves `route`: the bare route runs in this process.
        func process(_ route: LoadRoute) -> Int32 { route == .bare ? getpid() : self.server }
        /// CPU seconds of PostgreSQL and of PgBouncer in front of it.
        var databaseCPUSeconds: Double {
            ProcessUsage.clusterCPUSeconds(dataDirectory: self.dataDirectory) + (self.pooler.map { ProcessUsage.cpuSeconds($0) } ?? 0)
        }
    }

    /// What the load is sent with: targets per route, and the token of the scale tenant.
    struct Seeded {
        var targets: [LoadRoute: [LoadTarget]]
        var tokens: [UUID: String]
        var scale: String?
    }

    /// One owner per tenant, an `items` collection each, and `records` records per tenant
    /// written straight into the tables (with their index rows) by the superuser; with scale
    /// checks, one more tenant with `scaleRecords` records in its one collection.
    private func seed(services: AtriumServices, cluster: EmbeddedPostgres, database: String, logger: Logger) async throws -> Seeded {
        let started = ContinuousClock.now
        var owners: [RecordSeed.Owner] = []
        for number in 0..<self.tenants {
            owners.append(try await RecordSeed.owner(services: services, number: number))
        }
        let admin = try await PostgresConnection.connect(
            configuration: PostgresConfiguration(connectionString: cluster.connectionString(database: database), statementTimeout: nil),
            logger: logger
        )
        let sample = try await RecordSeed.insert(owners, records: self.records, on: admin)
        var scale: String?
        if self.scaleRecords > 0 {
            let owner = try await RecordSeed.owner(services: services, number: self.tenants)
            _ = try await RecordSeed.insert([owner], records: self.scaleRecords, on: admin)
            scale = owner.token
        }
        try await admin.simpleQuery("VACUUM ANALYZE")
        await admin.close()
        var tokens: [UUID: String] = [:]
        for owner in owners { tokens[owner.tenant] = owner.token }
        func targets(_ records: [(tenant: UUID, record: UUID)]) -> [LoadTarget] {
            records.map { LoadTarget(token: tokens[$0.tenant]!, recordID: $0.record.lowercasedString) }
        }
        print(String(
            format: "seeded %ld tenants × %ld records (%ld bytes of JSON each on average)%@ in %.0f s",
            self.tenants, self.records, sample.averageBytes,
            self.scaleRecords > 0 ? " and one collection of \(self.scaleRecords) records" : "", (ContinuousClock.now - started).seconds
        ))
        let read = targets(sample.read)
        return Seeded(
            targets: [.bare: read, .healthz: read, .getRecord: read, .createRecord: read, .listFirstPage: read, .updateRecord: targets(sample.written)],
            tokens: tokens, scale: scale
        )
    }

    /// The routes measured: all, or those `--only` names.
    private func routes() throws -> [LoadRoute] {
        guard let only = self.only else { return [.bare, .healthz, .getRecord, .updateRecord, .createRecord, .listFirstPage] }
        let names = ["bare": LoadRoute.bare, "healthz": .healthz, "get": .getRecord, "patch": .updateRecord, "post": .createRecord, "list": .listFirstPage]
        return try only.split(separator: ",").map { name in
            guard let route = names[String(name)] else { throw ValidationError("--only takes bare, healthz, get, patch, post or list, comma-separated") }
            return route
        }
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

    /// Each route runs `seconds` in all, in `slices` interleaved slices, so background load on a
    /// shared machine falls on every route alike. Every other slice runs the routes in reverse
    /// (bare, healthz, …, list, list, …, healthz, bare, …): in a fixed order a machine that
    /// slows down over the run charges it to the routes measured last, and each route would
    /// always follow the same one (the list page the POSTs, page 5,001 page 1).
    func run(_ endpoints: Endpoints, routes: [LoadRoute], targets: [LoadRoute: [LoadTarget]]) async throws -> [(LoadRoute, Measured)] {
        let wrk = self.ownClient ? nil : Wrk.find()
        let slices = max(1, self.slices)
        print("load: \(self.connections) keep-alive connections, \(self.seconds) s per route in \(slices) interleaved slices, \(wrk == nil ? "built-in client" : "wrk")")
        // A short warm-up so each route starts with prepared statements and hot caches.
        // A PATCH run starts from the seeded version of its records, so each run (warm-up and
        // slices) gets records of its own, and one share is left for `writeAnatomy`.
        func share(_ route: LoadRoute, run: Int) -> [LoadTarget] {
            let all = targets[route] ?? []
            guard route == .updateRecord else { return all }
            return stride(from: run, to: all.count, by: slices + 2).map { all[$0] }
        }
        for route in routes {
            _ = try await self.load(route, base: endpoints.base(route), targets: share(route, run: 0), seconds: 2, wrk: wrk)
        }
        var parts: [LoadRoute: [(result: LoadResult, requests: Double, server: Double, database: Double)]] = [:]
        let sliceSeconds = max(1, self.seconds / slices)
        for slice in 0..<slices {
            for route in slice.isMultiple(of: 2) ? routes : routes.reversed() {
                let process = endpoints.process(route)
                let serverBefore = ProcessUsage.cpuSeconds(process)
                let databaseBefore = endpoints.databaseCPUSeconds
                let started = ContinuousClock.now
                let result = try await self.load(route, base: endpoints.base(route), targets: share(route, run: slice + 1), seconds: sliceSeconds, wrk: wrk)
                let elapsed = (ContinuousClock.now - started).seconds
                // The filtered million-record list is there to show what it costs, failures included.
                guard result.failures == 0 || route == .scaleFilterSort else {
                    throw ValidationError("\(route.label): \(result.failures) requests failed")
                }
                parts[route, default: []].append((
                    result, result.rate * min(elapsed, Double(sliceSeconds)),
                    ProcessUsage.cpuSeconds(process) - serverBefore,
                    endpoints.databaseCPUSeconds - databaseBefore
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
            var spread = slices.map { String(format: "%.0f", $0.result.rate) }.joined(separator: " / ")
            let failures = slices.map(\.result.failures).reduce(0, +)
            if failures > 0 { spread += "; \(failures) failed" }
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
            .healthz: (85, nil), .getRecord: (40, 10), .listFirstPage: (25, 15), .createRecord: (12, nil), .updateRecord: (10, nil),
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
    /// Where a list continues (the deep page of the scale checks).
    var cursor: String? = nil
}

enum LoadRoute: Sendable, Hashable {
    case bare, healthz, getRecord, updateRecord, createRecord, listFirstPage
    case scaleFirstPage, scaleDeepPage, scaleFilterSort

    var label: String {
        switch self {
        case .bare: "bare Hummingbird GET /"
        case .healthz: "GET /healthz"
        case .getRecord: "GET record by id"
        case .createRecord: "POST record"
        case .listFirstPage: "GET records?limit=20 (first page)"
        case .updateRecord: "PATCH record with If-Match"
        case .scaleFirstPage: "1M: first page of 20"
        case .scaleDeepPage: "1M: page 5,001 by cursor"
        case .scaleFilterSort: "1M: status=open, sort=-priority"
        }
    }

    /// The label in a column of fixed width.
    var padded: String { self.label.padding(toLength: 34, withPad: " ", startingAt: 0) }

    static let collectionPath = "/v1/collections/items/records"
    static let filterSort = "?limit=20&filter[status]=open&sort=-priority"
    static let newRecord = #"{"title":"A new item written by the benchmark","status":"doing","priority":3,"body":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","done":false}"#
}

/// Requests per second and latency percentiles (seconds) of one run.
struct LoadResult: Sendable {
    var rate: Double
    var p50: Double
    var p99: Double
    var failures: Int
}
