public import AtriumCore
import AtriumText
import AtriumWire
import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// This server's share of webhook work: it fans settled changes out into deliveries and sends
/// the deliveries it leases, as any number of other servers do at the same time (the database
/// decides who does what, see migration 012).
///
/// Two loops. Fan-out is woken when the change log grows (NOTIFY) and runs at most every
/// `fanoutInterval`, so under a stream of writes each round takes many changes at once.
/// Delivery is woken when fan-out made deliveries, when an attempt ends and every
/// `pollInterval` (retries that fall due), at most every `deliveryInterval`; each turn stores the outcomes of the attempts that
/// ended (one statement for all) and leases as many deliveries as there are free slots. While
/// no tenant has an enabled endpoint neither touches the database: endpoint changes are
/// announced by NOTIFY. At most `concurrency` attempts are in flight on this server,
/// `perEndpoint` per endpoint and `perTenant` per tenant (so with N servers, N times those), so
/// a tenant whose endpoints hang for the whole timeout holds a few slots, never all of them.
public final class WebhookDispatcher: Service, Sendable {
    let webhooks: WebhookService
    let sender: WebhookSender
    let logger: Logger
    let fanoutWakeups: AsyncStream<Void>
    let fanoutWakeup: AsyncStream<Void>.Continuation
    let deliveryWakeups: AsyncStream<Void>
    let deliveryWakeup: AsyncStream<Void>.Continuation
    let inFlight = Atomic<Int>(0)
    /// This server's attempts in flight, per endpoint and per tenant (the caps of a claim).
    let busy = Mutex<(webhooks: [UUID: Int], tenants: [UUID: Int])>(([:], [:]))
    /// Outcomes of finished attempts, stored together at the next turn of the delivery loop.
    let outcomes = Mutex<[RecordedOutcome]>([])
    /// Whether to ask the database again if any endpoint is enabled: at start, and when a
    /// NOTIFY says endpoints changed (or the listener reconnected and may have missed one).
    let checkEndpoints = Atomic<Bool>(true)
    let enabled = Atomic<Bool>(false)
    public let statistics = WebhookStatistics()
    /// Fan-out rounds are at least this far apart, and so are delivery turns.
    static let fanoutInterval: Duration = .milliseconds(10)
    static let deliveryInterval: Duration = .milliseconds(5)

    public init(webhooks: WebhookService, logger: Logger) {
        self.webhooks = webhooks
        self.sender = WebhookSender(addresses: webhooks.addresses, timeout: webhooks.configuration.timeout, logger: logger)
        self.logger = logger
        (self.fanoutWakeups, self.fanoutWakeup) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        (self.deliveryWakeups, self.deliveryWakeup) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Attempts this server is sending now.
    public var attemptsInFlight: Int { self.inFlight.load(ordering: .relaxed) }

    /// The change log may have grown: fan out now.
    public func wake() {
        self.fanoutWakeup.yield()
        self.deliveryWakeup.yield()
    }

    /// Endpoints were added, changed or removed (on this server or, by NOTIFY, another).
    public func endpointsChanged() {
        self.checkEndpoints.store(true, ordering: .relaxed)
        self.wake()
    }

    public func run() async throws {
        let configuration = self.webhooks.configuration
        await withDiscardingTaskGroup { group in
            group.addTask {
                self.wake()
                while !Task.isCancelled {
                    try? await Task.sleep(for: configuration.pollInterval)
                    self.wake()
                }
            }
            group.addTask { await self.fanOutUntilFinished() }
            await withGracefulShutdownHandler {
                await self.deliverUntilFinished(in: &group)
            } onGracefulShutdown: {
                self.fanoutWakeup.finish()
                self.deliveryWakeup.finish()
            }
            // Attempts still in flight are abandoned: their leases run out and another server
            // (or this one, restarted) sends them again.
            group.cancelAll()
        }
        await self.sender.shutdown()
    }

    private func fanOutUntilFinished() async {
        var lastPrune = ContinuousClock.now
        for await _ in self.fanoutWakeups {
            let started = ContinuousClock.now
            if self.checkEndpoints.exchange(false, ordering: .relaxed) {
                do {
                    self.enabled.store(try await self.webhooks.anyEnabled(), ordering: .relaxed)
                } catch {
                    self.checkEndpoints.store(true, ordering: .relaxed)
                }
            }
            if self.enabled.load(ordering: .relaxed) {
                await self.fanOut()
            }
            if started - lastPrune >= .seconds(600) {
                lastPrune = started
                if let removed = try? await self.webhooks.prune(), removed > 0 {
                    self.logger.info("old webhook deliveries pruned", metadata: ["deliveries": "\(removed)"])
                }
            }
            try? await Task.sleep(until: started + Self.fanoutInterval)
        }
    }

    private func deliverUntilFinished(in group: inout DiscardingTaskGroup) async {
        for await _ in self.deliveryWakeups {
            let started = ContinuousClock.now
            await self.storeOutcomes()
            if self.enabled.load(ordering: .relaxed) {
                await self.claimAndSend(in: &group)
            }
            // Attempts ending meanwhile are stored and replaced together at the next turn.
            try? await Task.sleep(until: started + Self.deliveryInterval)
        }
        await self.storeOutcomes()
    }

    /// Fans out up to the horizon. One call covers a bounded span of the log, so while calls
    /// make deliveries the loop comes straight back (a server catching up takes several).
    private func fanOut() async {
        do {
            // nil: a writer of the horizon still runs (a transaction left open); the next
            // wake-up tries again.
            guard let made = try await self.webhooks.fanOut(), made > 0 else { return }
            self.statistics.fannedOut.add(made, ordering: .relaxed)
            self.fanoutWakeup.yield()
            self.deliveryWakeup.yield()
        } catch is CancellationError {
        } catch {
            self.logger.warning("could not fan changes out to webhooks", metadata: ["error": "\(error)"])
        }
    }

    private func storeOutcomes() async {
        let batch = self.outcomes.withLock { outcomes in
            defer { outcomes.removeAll() }
            return outcomes
        }
        do {
            try await self.webhooks.complete(batch)
        } catch {
            // Their leases run out and the deliveries are attempted again: at least once.
            self.logger.warning("could not record webhook attempts", metadata: ["attempts": "\(batch.count)", "error": "\(error)"])
        }
    }

    private func claimAndSend(in group: inout DiscardingTaskGroup) async {
        let configuration = self.webhooks.configuration
        let free = min(configuration.concurrency - self.inFlight.load(ordering: .relaxed), configuration.claimBatch)
        guard free > 0 else { return }
        let claimed: [ClaimedDelivery]
        do {
            let (webhooks, tenants) = self.busy.withLock { $0 }
            claimed = try await self.webhooks.claim(limit: free, busyWebhooks: webhooks, busyTenants: tenants)
        } catch {
            self.logger.warning("could not claim webhook deliveries", metadata: ["error": "\(error)"])
            return
        }
        for delivery in claimed {
            self.inFlight.add(1, ordering: .relaxed)
            self.busy.withLock { busy in
                busy.webhooks[delivery.webhookID, default: 0] += 1
                busy.tenants[delivery.tenant, default: 0] += 1
            }
            group.addTask {
                defer {
                    self.busy.withLock { busy in
                        busy.webhooks[delivery.webhookID]! -= 1
                        if busy.webhooks[delivery.webhookID] == 0 { busy.webhooks[delivery.webhookID] = nil }
                        busy.tenants[delivery.tenant]! -= 1
                        if busy.tenants[delivery.tenant] == 0 { busy.tenants[delivery.tenant] = nil }
                    }
                    self.inFlight.subtract(1, ordering: .relaxed)
                    self.deliveryWakeup.yield()
                }
                await self.attempt(delivery)
            }
        }
    }

    private func attempt(_ delivery: ClaimedDelivery) async {
        let outcome: DeliveryOutcome
        if let body = Self.body(of: delivery) {
            outcome = await self.sender.send(delivery, body: body)
        } else {
            outcome = DeliveryOutcome(kind: .undeliverable, duration: .zero, error: "the change is past the change log's retention")
        }
        guard !Task.isCancelled else { return }
        switch outcome.kind {
        case .succeeded: self.statistics.succeeded.add(1, ordering: .relaxed)
        case .failed: self.statistics.failed.add(1, ordering: .relaxed)
        case .gone, .undeliverable: self.statistics.failed.add(1, ordering: .relaxed)
        }
        if outcome.kind != .succeeded {
            self.logger.info("webhook attempt failed", metadata: [
                "webhook": "\(delivery.webhookID)", "delivery": "\(delivery.messageID)", "attempt": "\(delivery.attempt)",
                "status": "\(outcome.responseStatus.map(String.init) ?? "-")", "error": "\(outcome.error ?? "")",
            ])
        }
        let recorded = self.webhooks.record(delivery, outcome)
        self.outcomes.withLock { $0.append(recorded) }
    }

    /// The body: `{"type","timestamp","data"}` with the change as the event stream sends it.
    static func body(of delivery: ClaimedDelivery) -> [UInt8]? {
        if let payload = delivery.payload { return Array(payload.utf8) }
        guard let change = delivery.change else { return nil }
        var body = Array(#"{"type":"#.utf8)
        JSONSerializer.write(.string(delivery.eventType), into: &body)
        body.append(contentsOf: #","timestamp":"#.utf8)
        JSONSerializer.write(.string(RFC3339.string(change.occurredAt)), into: &body)
        body.append(contentsOf: #","data":"#.utf8)
        body.append(contentsOf: ChangeJSON.bytes(change))
        body.append(UInt8(ascii: "}"))
        return body
    }
}

/// Counters for the metrics endpoint.
public final class WebhookStatistics: Sendable {
    let fannedOut = Atomic<Int>(0)
    let succeeded = Atomic<Int>(0)
    let failed = Atomic<Int>(0)

    /// Deliveries made from changes by this server.
    public var deliveriesCreated: Int { self.fannedOut.load(ordering: .relaxed) }
    /// Attempts answered with 2xx.
    public var attemptsSucceeded: Int { self.succeeded.load(ordering: .relaxed) }
    /// Attempts that failed (to be retried or given up).
    public var attemptsFailed: Int { self.failed.load(ordering: .relaxed) }
}
