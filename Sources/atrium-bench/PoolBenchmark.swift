import ArgumentParser
import AtriumCore
import EmbeddedPostgres
import Foundation
import Logging
import PostgresPool

/// The pool against pgbench on the same transaction: BEGIN; set tenant; SELECT one row by
/// primary key; COMMIT, pipelined, over a 1,000,000-row table of 100 tenants with RLS.
struct PoolBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pool",
        abstract: "Connection pool transactions per second versus pgbench in pipeline mode."
    )

    @Option(help: "Seconds each side runs in all.") var seconds: Int = 10
    @Option(help: "Slices the seconds are split into, alternating pool and pgbench.") var slices: Int = 2
    @Option(help: "Concurrent tasks calling the pool.") var tasks: Int = 64
    @Option(help: "Pool connections, and pgbench clients.") var connections: Int = 8
    @Option(help: "Rows in the table.") var rows: Int = 1_000_000
    @Option(help: "Tenants the rows are spread over.") var tenants: Int = 100
    @Option(help: "pgbench worker threads.") var pgbenchThreads: Int = 2
    @Option(help: "Most queued transactions one connection sends in one write.") var pipelineDepth: Int = 8

    func run() async throws {
        try await BenchDatabase.withTemporaryCluster { cluster, logger in
            try await self.measure(cluster: cluster, logger: logger)
        }
    }

    private func measure(cluster: EmbeddedPostgres, logger: Logger) async throws {
        let database = "bench"
        try await BenchDatabase.create(database, on: cluster, logger: logger)
        try await BenchDatabase.seedItems(database, on: cluster, rows: self.rows, tenants: self.tenants, logger: logger)
        print("seeded \(self.rows) rows over \(self.tenants) tenants")

        let pool = ConnectionPool(
            configuration: PoolConfiguration(
                connection: PostgresConfiguration(connectionString: cluster.connectionString(database: database, user: "atrium_app")),
                maxConnections: self.connections,
                pipelineDepth: self.pipelineDepth
            ),
            logger: logger
        )
        let perTenant = self.rows / self.tenants
        // Warm up: open every connection and prepare the statements.
        _ = try await self.runPool(pool, for: .seconds(1), perTenant: perTenant)

        // The machine is shared and noisy: alternate the two sides in short slices so drift
        // in the background load hits both alike.
        let slice = max(1, self.seconds / self.slices)
        var poolTransactions = 0.0
        var poolCPU = 0.0
        var pgbenchTransactions = 0.0
        var pgbenchCPU = 0.0
        for number in 1...self.slices {
            let selfBefore = CPUTime.measure(RUSAGE_SELF)
            let count = try await self.runPool(pool, for: .seconds(slice), perTenant: perTenant)
            poolCPU += CPUTime.measure(RUSAGE_SELF) - selfBefore
            poolTransactions += Double(count)

            let childrenBefore = CPUTime.measure(RUSAGE_CHILDREN)
            let rate = try await self.runPgbench(cluster: cluster, database: database, perTenant: perTenant, seconds: slice)
            pgbenchCPU += CPUTime.measure(RUSAGE_CHILDREN) - childrenBefore
            pgbenchTransactions += rate * Double(slice)
            print(String(format: "slice %d: pool %.0f tx/s, pgbench %.0f tx/s", number, Double(count) / Double(slice), rate))
        }
        let statistics = pool.statistics
        await pool.close()
        let total = Double(slice * self.slices)
        let poolRate = poolTransactions / total
        let pgbenchRate = pgbenchTransactions / total
        print("pool: \(Int(poolTransactions)) transactions from \(self.tasks) tasks over \(self.connections) connections, \(statistics.retried) retried")
        print(String(format: "client CPU per transaction: pool %.1f µs, pgbench %.1f µs", poolCPU * 1e6 / poolTransactions, pgbenchCPU * 1e6 / pgbenchTransactions))
        print(String(format: "pool %.0f tx/s, pgbench %.0f tx/s, ratio %.2f", poolRate, pgbenchRate, poolRate / pgbenchRate))
    }

    private func runPool(_ pool: ConnectionPool, for duration: Duration, perTenant: Int) async throws -> Int {
        let end = ContinuousClock.now + duration
        let tenants = self.tenants
        return try await withThrowingTaskGroup(of: Int.self) { group in
            for task in 0..<self.tasks {
                group.addTask {
                    var random = FastRandom(seed: UInt64(task + 1) &* 0x9E37_79B9_7F4A_7C15)
                    var count = 0
                    while ContinuousClock.now < end {
                        let tenant = Int(random.next() % UInt64(tenants))
                        let id = Int(random.next() % UInt64(perTenant)) + 1
                        let results = try await pool.transaction(
                            ["SELECT payload FROM atrium.bench_items WHERE tenant_id = ('00000000-0000-4000-8000-' || lpad(\(tenant)::text, 12, '0'))::uuid AND id = \(id)"],
                            prelude: ["SELECT atrium.set_tenant(('00000000-0000-4000-8000-' || lpad(\(tenant)::text, 12, '0'))::uuid)"]
                        )
                        guard results[0].count == 1 else {
                            throw ValidationError("row \(id) of tenant \(tenant) not found")
                        }
                        count += 1
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
    }

    private func runPgbench(cluster: EmbeddedPostgres, database: String, perTenant: Int, seconds: Int) async throws -> Double {
        let script = """
            \\set tenant random(0, \(self.tenants - 1))
            \\set id random(1, \(perTenant))
            \\startpipeline
            BEGIN;
            SELECT atrium.set_tenant(('00000000-0000-4000-8000-' || lpad(:tenant::text, 12, '0'))::uuid);
            SELECT payload FROM atrium.bench_items WHERE tenant_id = ('00000000-0000-4000-8000-' || lpad(:tenant::text, 12, '0'))::uuid AND id = :id;
            COMMIT;
            \\endpipeline

            """
        let scriptPath = NSTemporaryDirectory() + "atrium-bench-\(getpid()).sql"
        try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: scriptPath) }
        let (status, output) = try await EmbeddedPostgres.runProgram([
            cluster.binaries.pgbench, "-h", cluster.socketDirectory, "-p", "\(cluster.port)", "-U", "atrium_app",
            "-n", "-M", "prepared", "-c", "\(self.connections)", "-j", "\(self.pgbenchThreads)",
            "-T", "\(seconds)", "-f", scriptPath, database,
        ])
        guard status == 0 else { throw ValidationError("pgbench failed (exit \(status)):\n\(output)") }
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("tps = ") }),
              let value = Double(line.dropFirst("tps = ".count).prefix { $0 != " " })
        else {
            throw ValidationError("could not read pgbench's tps from:\n\(output)")
        }
        return value
    }
}

/// xorshift64*: fast, good enough to pick rows, and no system call per number.
struct FastRandom {
    private var state: UInt64
    init(seed: UInt64) { self.state = seed == 0 ? 0x2545_F491_4F6C_DD1D : seed }
    mutating func next() -> UInt64 {
        self.state ^= self.state >> 12
        self.state ^= self.state << 25
        self.state ^= self.state >> 27
        return self.state &* 0x2545_F491_4F6C_DD1D
    }
}

/// User plus system CPU seconds consumed, from getrusage.
enum CPUTime {
    static func measure(_ who: __rusage_who) -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(who.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}
