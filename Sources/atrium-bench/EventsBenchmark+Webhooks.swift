import ArgumentParser
import AsyncHTTPClient
import AtriumCore
import EmbeddedPostgres
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import PostgresPool
import ServiceLifecycle
import Synchronization

/// The webhook phase of `atrium-bench events`.
extension EventsBenchmark {
    /// The same writes with `webhooks` endpoints (one per tenant) on a local receiver that
    /// answers 204 at once: deliveries per second, write-to-delivery latency, and what the
    /// deliveries cost the server and PostgreSQL over the writes alone.
    func webhookPhase(
        http: HTTPClient, base: String, owners: [RecordSeed.Owner], server: ServedProcess, cluster: EmbeddedPostgres, quiet: Phase
    ) async throws {
        let log = DeliveryLog()
        let receiver = WebhookSink(log: log)
        try await receiver.serve { url in
            let hooked = Array(owners.prefix(self.webhooks))
            for owner in hooked {
                var request = HTTPClientRequest(url: base + "/v1/webhooks")
                request.method = .POST
                request.headers.add(name: "Authorization", value: "Bearer \(owner.token)")
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: #"{"url":"\#(url)","events":["record.created"]}"#))
                let response = try await http.execute(request, timeout: .seconds(30))
                _ = try await response.body.collect(upTo: 1 << 20)
                guard response.status == .created else { throw ValidationError("could not create a webhook: \(response.status)") }
            }
            let admin = try await PostgresConnection.connect(
                configuration: PostgresConfiguration(connectionString: cluster.connectionString(database: "bench"), statementTimeout: nil),
                logger: Logger(label: "bench-admin")
            )
            try await admin.simpleQuery("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            // Statements inside the webhook functions too (fan-out, claim, outcomes).
            try await admin.simpleQuery("ALTER SYSTEM SET pg_stat_statements.track = 'all'")
            try await admin.simpleQuery("SELECT pg_reload_conf()")
            try await Task.sleep(for: .milliseconds(200))
            try await admin.simpleQuery("SELECT pg_stat_statements_reset()")
            let serverBefore = ProcessUsage.cpuSeconds(server.pid)
            let databaseBefore = ProcessUsage.clusterCPUSeconds(dataDirectory: cluster.dataDirectory)
            let phase = try await self.writePhase(http: http, base: base, owners: owners, server: server, cluster: cluster, log: log)
            // Writes of tenants with an endpoint, as owners are taken round-robin.
            let expected = (0..<(self.rate * self.seconds)).filter { $0 % owners.count < hooked.count }.count - phase.failures
            let drainStart = ContinuousClock.now
            while log.received < expected, ContinuousClock.now - drainStart < .seconds(60) {
                try await Task.sleep(for: .milliseconds(50))
            }
            let drained = (ContinuousClock.now - drainStart).seconds
            // CPU from the first write to the last delivery, against the writes alone.
            let serverCPU = ProcessUsage.cpuSeconds(server.pid) - serverBefore
            let databaseCPU = ProcessUsage.clusterCPUSeconds(dataDirectory: cluster.dataDirectory) - databaseBefore
            let (fromAck, _, received, _, unknown) = log.summary()
            func percentile(_ values: [Double], _ p: Double) -> Double {
                guard !values.isEmpty else { return .nan }
                let sorted = values.sorted()
                return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
            }
            let scale = phase.seconds / quiet.seconds
            let extraServer = serverCPU - quiet.serverCPU * scale
            let extraDatabase = databaseCPU - quiet.databaseCPU * scale
            print(String(
                format: """

                    webhooks: %ld endpoints; writes %.0f/s, p50 %.2f ms, p99 %.2f ms
                    %ld deliveries received of %ld expected (%ld repeated, %ld unknown), %.0f deliveries/s while writing, the last %.1f s after the writes ended
                    write acknowledged → delivery received: p50 %.1f ms, p99 %.1f ms
                    per delivery, over the same writes with no endpoint (until the last delivery): server CPU %.1f µs, PostgreSQL CPU %.1f µs
                    """,
                hooked.count, Double(phase.writes) / phase.seconds, percentile(phase.writeLatencies, 0.5) * 1000,
                percentile(phase.writeLatencies, 0.99) * 1000, received, expected, receiver.repeated, unknown, Double(received) / phase.seconds, drained,
                percentile(fromAck, 0.5) * 1000, percentile(fromAck, 0.99) * 1000,
                extraServer / Double(max(received, 1)) * 1e6, extraDatabase / Double(max(received, 1)) * 1e6
            ))
            try await StatementReport.print("webhook phase, per delivery (the writes' statements included, and those inside functions besides the calls)", requests: Double(received), admin: admin)
            try await admin.simpleQuery("ALTER SYSTEM RESET pg_stat_statements.track")
            try await admin.simpleQuery("SELECT pg_reload_conf()")
            await admin.close()
            if received - receiver.repeated < expected {
                print("MISSING: \(expected - (received - receiver.repeated)) deliveries did not arrive within 60 s of the last write")
            }
        }
    }
}

/// The webhook receiver of the benchmark: answers 204 at once and logs each delivery's write
/// key (the record's title) with its arrival time.
final class WebhookSink: Sendable {
    let log: DeliveryLog
    private let seen = Mutex<Set<String>>([])
    private let repeats = Atomic<Int>(0)

    init(log: DeliveryLog) {
        self.log = log
    }

    /// Deliveries whose webhook-id had arrived before.
    var repeated: Int { self.repeats.load(ordering: .relaxed) }

    func serve(_ body: (String) async throws -> Void) async throws {
        let router = Router()
        router.post("hooks") { request, _ -> HTTPResponse.Status in
            var request = request
            let bytes = try await request.collectBody(upTo: 1 << 20)
            let text = String(buffer: bytes)
            let id = request.headers[HTTPField.Name("webhook-id")!] ?? ""
            let again = self.seen.withLock { !$0.insert(id).inserted }
            if again { self.repeats.add(1, ordering: .relaxed) }
            if let range = text.range(of: #""title":""#), let close = text[range.upperBound...].firstIndex(of: "\"") {
                self.log.arrived([String(text[range.upperBound..<close])], repeated: again ? 1 : 0, at: ContinuousClock.now)
            }
            return .noContent
        }
        router.get("ready") { _, _ in HTTPResponse.Status.ok }
        let port = try FreePort.find()
        var logger = Logger(label: "webhook-sink")
        logger.logLevel = .critical
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await LoadClient.waitUntilReady("http://127.0.0.1:\(port)/ready")
            do {
                try await body("http://127.0.0.1:\(port)/hooks")
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}
