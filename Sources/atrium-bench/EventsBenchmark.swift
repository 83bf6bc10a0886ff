import ArgumentParser
import AsyncHTTPClient
import AtriumCore
import AtriumCrypto
import AtriumHTTP
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

/// The change feed under load: `atrium serve` as a child process, subscribers spread over the
/// tenants on `GET /v1/events`, and record writes at a fixed rate. The same writes are first
/// run with no subscriber, in the same run: that is the baseline the feed's cost is measured
/// against (server and PostgreSQL CPU per write), then with the subscribers (latency from
/// write to event, events per second, server CPU per event delivered).
struct EventsBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Write-to-event latency, events per second and the CPU the change feed costs, against the same writes with no subscriber."
    )

    @Option(help: "Tenants.") var tenants: Int = 100
    @Option(help: "Event subscribers, spread evenly over the tenants.") var subscribers: Int = 1_000
    @Option(help: "Record writes per second (all tenants together).") var rate: Int = 1_000
    @Option(help: "Seconds each phase writes.") var seconds: Int = 15
    @Option(help: "Webhook endpoints in the webhook phase, one per tenant (at most the number of tenants); 0 skips it.") var webhooks: Int = 100
    @Option(help: "The atrium executable (default: the one built next to this benchmark).") var server: String?

    func run() async throws {
        try await BenchDatabase.withTemporaryCluster { cluster, logger in
            try await self.measure(cluster: cluster, logger: logger)
        }
    }

    private func measure(cluster: EmbeddedPostgres, logger: Logger) async throws {
        let served = try await BenchDatabase.served("bench", on: cluster, logger: logger)
        let (keyText, connectionString, database, services) = (served.keyText, served.connectionString, served.database, served.services)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [database], logger: logger))
        let running = Task { try await group.run() }
        var owners: [RecordSeed.Owner] = []
        do {
            for number in 0..<self.tenants {
                owners.append(try await RecordSeed.owner(services: services, number: number))
            }
        } catch {
            await group.triggerGracefulShutdown()
            _ = try? await running.value
            throw error
        }
        await group.triggerGracefulShutdown()
        try await running.value
        let server = try ServedProcess(
            executable: self.server ?? ServedProcess.siblingExecutable,
            environment: [
                "DATABASE_URL": connectionString, "ATRIUM_NO_MIGRATE": "1", "ATRIUM_TOKEN_KEYS": keyText,
                "ATRIUM_RATE_LIMIT_TENANT": "0", "ATRIUM_RATE_LIMIT_ADDRESS": "0",
                // The webhook phase delivers to a receiver on loopback.
                "ATRIUM_WEBHOOKS_ALLOW_PRIVATE": "1",
            ],
            port: try FreePort.find()
        )
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.port)"
        do {
            try await LoadClient.waitUntilReady(base + "/readyz")
        } catch {
            throw ValidationError("atrium serve did not become ready:\n\(server.logTail)")
        }
        let http = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: .init(connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: self.subscribers + 64))
        )
        do {
            print("server: \(self.server ?? ServedProcess.siblingExecutable) serve (as shipped, rate limits off); \(self.tenants) tenants, \(self.rate) writes/s for \(self.seconds) s per phase")
            let quiet = try await self.writePhase(http: http, base: base, owners: owners, server: server, cluster: cluster, log: nil)
            let log = DeliveryLog()
            let streams = try await self.subscribe(http: http, base: base, owners: owners, log: log)
            let busy = try await self.writePhase(http: http, base: base, owners: owners, server: server, cluster: cluster, log: log)
            // Let the last events arrive before counting.
            let expected = busy.writes * (self.subscribers / self.tenants)
            let deadline = ContinuousClock.now + .seconds(10)
            while log.received < expected, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            for stream in streams { stream.cancel() }
            self.report(quiet: quiet, busy: busy, log: log, expected: expected, rss: ProcessUsage.residentMiB(server.pid))
            if self.webhooks > 0 {
                try await self.webhookPhase(http: http, base: base, owners: owners, server: server, cluster: cluster, quiet: quiet)
            }
        } catch {
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }

    struct Phase {
        var writes = 0
        var failures = 0
        var seconds = 0.0
        var serverCPU = 0.0
        var databaseCPU = 0.0
        var writeLatencies: [Double] = []
    }

    /// Writes at `rate` for `seconds`, spread round-robin over the tenants.
    func writePhase(
        http: HTTPClient, base: String, owners: [RecordSeed.Owner], server: ServedProcess, cluster: EmbeddedPostgres, log: DeliveryLog?
    ) async throws -> Phase {
        let serverBefore = ProcessUsage.cpuSeconds(server.pid)
        let databaseBefore = ProcessUsage.clusterCPUSeconds(dataDirectory: cluster.dataDirectory)
        let started = ContinuousClock.now
        let writers = 16
        let total = self.rate * self.seconds
        let interval = Duration.seconds(Double(writers) / Double(self.rate))
        let phase = Shared(Phase())
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    var next = ContinuousClock.now + interval * (Double(writer) / Double(writers))
                    var number = writer
                    while number < total {
                        try await Task.sleep(until: next)
                        next += interval
                        let owner = owners[number % owners.count]
                        let key = "w\(number)"
                        var request = HTTPClientRequest(url: base + "/v1/collections/items/records")
                        request.method = .POST
                        request.headers.add(name: "Authorization", value: "Bearer \(owner.token)")
                        request.headers.add(name: "Content-Type", value: "application/json")
                        request.body = .bytes(ByteBuffer(string: #"{"title":"\#(key)","priority":3}"#))
                        let sent = ContinuousClock.now
                        log?.sent(key, at: sent)
                        let response = try await http.execute(request, timeout: .seconds(30))
                        _ = try await response.body.collect(upTo: 1 << 20)
                        let acknowledged = ContinuousClock.now
                        log?.acknowledged(key, at: acknowledged)
                        phase.value.withLock { phase in
                            if response.status == .created {
                                phase.writes += 1
                                phase.writeLatencies.append((acknowledged - sent).seconds)
                            } else {
                                phase.failures += 1
                            }
                        }
                        number += writers
                    }
                }
            }
            try await group.waitForAll()
        }
        return phase.value.withLock { phase in
            phase.seconds = (ContinuousClock.now - started).seconds
            phase.serverCPU = ProcessUsage.cpuSeconds(server.pid) - serverBefore
            phase.databaseCPU = ProcessUsage.clusterCPUSeconds(dataDirectory: cluster.dataDirectory) - databaseBefore
            return phase
        }
    }

    /// Opens the subscribers (evenly over the tenants) and waits until each has its first frame.
    private func subscribe(http: HTTPClient, base: String, owners: [RecordSeed.Owner], log: DeliveryLog) async throws -> [Task<Void, Never>] {
        let opened = Shared(0)
        var streams: [Task<Void, Never>] = []
        for index in 0..<self.subscribers {
            let owner = owners[index % owners.count]
            streams.append(Task {
                var request = HTTPClientRequest(url: base + "/v1/events")
                request.headers.add(name: "Authorization", value: "Bearer \(owner.token)")
                do {
                    let response = try await http.execute(request, timeout: .seconds(3600))
                    guard response.status == .ok else { return }
                    opened.value.withLock { $0 += 1 }
                    var pending: [UInt8] = []
                    var seen: Set<String> = []
                    for try await chunk in response.body {
                        pending.append(contentsOf: chunk.readableBytesView)
                        let keys = DeliveryLog.createdRecords(in: &pending)
                        guard !keys.isEmpty else { continue }
                        let repeated = keys.filter { !seen.insert($0).inserted }.count
                        log.arrived(keys, repeated: repeated, at: ContinuousClock.now)
                    }
                } catch {}
            })
        }
        let deadline = ContinuousClock.now + .seconds(60)
        while opened.value.withLock({ $0 }) < self.subscribers, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        guard opened.value.withLock({ $0 }) == self.subscribers else {
            throw ValidationError("only \(opened.value.withLock { $0 }) of \(self.subscribers) subscribers could open a stream")
        }
        return streams
    }

    private func report(quiet: Phase, busy: Phase, log: DeliveryLog, expected: Int, rss: Double) {
        func percentile(_ values: [Double], _ p: Double) -> Double {
            guard !values.isEmpty else { return .nan }
            let sorted = values.sorted()
            return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        }
        print("\nphase                  writes/s  failed  write p50   write p99   server CPU µs/write  PostgreSQL CPU µs/write")
        for (name, phase) in [("no subscribers", quiet), ("\(self.subscribers) subscribers", busy)] {
            print(String(
                format: "%-20@ %9.0f %7ld %8.2f ms %8.2f ms %15.0f %20.0f",
                name, Double(phase.writes) / phase.seconds, phase.failures,
                percentile(phase.writeLatencies, 0.5) * 1000, percentile(phase.writeLatencies, 0.99) * 1000,
                phase.serverCPU / Double(max(phase.writes, 1)) * 1e6, phase.databaseCPU / Double(max(phase.writes, 1)) * 1e6
            ))
        }
        let (fromAck, fromSend, received, duplicates, unknown) = log.summary()
        let extraServer = busy.serverCPU - quiet.serverCPU * busy.seconds / quiet.seconds
        print(String(
            format: """

                events: %ld received of %ld expected (%ld duplicates, %ld unknown), %.0f events/s
                write acknowledged → event received: p50 %.1f ms, p99 %.1f ms, max %.1f ms
                write sent → event received:         p50 %.1f ms, p99 %.1f ms
                server CPU per event delivered (over the same writes with no subscriber): %.1f µs; server RSS %.0f MiB
                """,
            received, expected, duplicates, unknown, Double(received) / busy.seconds,
            percentile(fromAck, 0.5) * 1000, percentile(fromAck, 0.99) * 1000, (fromAck.max() ?? .nan) * 1000,
            percentile(fromSend, 0.5) * 1000, percentile(fromSend, 0.99) * 1000,
            extraServer / Double(max(received, 1)) * 1e6, rss
        ))
        if received - duplicates != expected {
            print("MISSING: \(expected - (received - duplicates)) events that subscribers should have had did not arrive")
        }
    }
}

/// When each write was sent and acknowledged, and when each subscriber got its event.
final class DeliveryLog: Sendable {
    private struct State {
        var sent: [String: ContinuousClock.Instant] = [:]
        var acknowledged: [String: ContinuousClock.Instant] = [:]
        var arrivals: [(key: String, at: ContinuousClock.Instant)] = []
        var duplicates = 0
    }

    private let state = Mutex(State())
    private let count = Atomic<Int>(0)

    var received: Int { self.count.load(ordering: .relaxed) }

    func sent(_ key: String, at instant: ContinuousClock.Instant) {
        self.state.withLock { $0.sent[key] = instant }
    }

    func acknowledged(_ key: String, at instant: ContinuousClock.Instant) {
        self.state.withLock { $0.acknowledged[key] = instant }
    }

    /// Takes the complete frames off `pending`; the titles (write keys) of created records.
    static func createdRecords(in pending: inout [UInt8]) -> [String] {
        var keys: [String] = []
        while let end = Self.frameEnd(pending) {
            let frame = String(decoding: pending[..<end], as: UTF8.self)
            pending.removeFirst(end + 2)
            guard frame.contains("event: record.created"), let range = frame.range(of: #""title":""#) else { continue }
            let rest = frame[range.upperBound...]
            if let close = rest.firstIndex(of: "\"") { keys.append(String(rest[..<close])) }
        }
        return keys
    }

    /// Events that one subscriber received now, `repeated` of which it had had before.
    func arrived(_ keys: [String], repeated: Int, at instant: ContinuousClock.Instant) {
        self.count.add(keys.count, ordering: .relaxed)
        self.state.withLock { state in
            state.duplicates += repeated
            for key in keys { state.arrivals.append((key, instant)) }
        }
    }

    /// Latencies from acknowledgement and from sending, events received, events a subscriber
    /// got twice, and events of no write of this run.
    func summary() -> (fromAck: [Double], fromSend: [Double], received: Int, duplicates: Int, unknown: Int) {
        self.state.withLock { state in
            var fromAck: [Double] = []
            var fromSend: [Double] = []
            var unknown = 0
            for arrival in state.arrivals {
                guard let sent = state.sent[arrival.key] else { unknown += 1; continue }
                fromSend.append((arrival.at - sent).seconds)
                if let acknowledged = state.acknowledged[arrival.key] {
                    fromAck.append(max(0, (arrival.at - acknowledged).seconds))
                }
            }
            return (fromAck, fromSend, state.arrivals.count, state.duplicates, unknown)
        }
    }

    private static func frameEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 2 else { return nil }
        for index in 0..<(bytes.count - 1) where bytes[index] == 10 && bytes[index + 1] == 10 {
            return index
        }
        return nil
    }
}

/// A value shared by tasks, behind a lock.
final class Shared<Value: Sendable>: Sendable {
    let value: Mutex<Value>

    init(_ value: Value) {
        self.value = Mutex(value)
    }
}
