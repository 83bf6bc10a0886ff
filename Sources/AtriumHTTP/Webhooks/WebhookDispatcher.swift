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
/// Woken when the change log grows (NOTIFY), when an attempt ends, and every `pollInterval`
/// (for retries that fall due). While no tenant has an enabled endpoint it does not touch the
/// database at all: endpoint changes are announced by NOTIFY. At most `concurrency` attempts are in
/// flight on this server, `perEndpoint` per endpoint and `perTenant` per tenant, so a tenant
/// whose endpoints hang for the whole timeout holds a few slots, never all of them.
public final class WebhookDispatcher: Service, Sendable {
    let webhooks: WebhookService
    let sender: WebhookSender
    let logger: Logger
    let wakeups: AsyncStream<Void>
    let wakeup: AsyncStream<Void>.Continuation
    let inFlight = Atomic<Int>(0)
    /// Whether to ask the database again if any endpoint is enabled: at start, and when a
    /// NOTIFY says endpoints changed (or the listener reconnected and may have missed one).
    let checkEndpoints = Atomic<Bool>(true)
    public let statistics = WebhookStatistics()

    public init(webhooks: WebhookService, logger: Logger) {
        self.webhooks = webhooks
        self.sender = WebhookSender(addresses: webhooks.addresses, timeout: webhooks.configuration.timeout, logger: logger)
        self.logger = logger
        (self.wakeups, self.wakeup) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Attempts this server is sending now.
    public var attemptsInFlight: Int { self.inFlight.load(ordering: .relaxed) }

    /// Look for work now.
    public func wake() {
        self.wakeup.yield()
    }

    public func run() async throws {
        let configuration = self.webhooks.configuration
        await withDiscardingTaskGroup { group in
            group.addTask {
                self.wakeup.yield()
                while !Task.isCancelled {
                    try? await Task.sleep(for: configuration.pollInterval)
                    self.wakeup.yield()
                }
            }
            await withGracefulShutdownHandler {
                await self.dispatch(in: &group)
            } onGracefulShutdown: {
                self.wakeup.finish()
            }
            // Attempts still in flight are abandoned: their leases run out and another server
            // (or this one, restarted) sends them again.
            group.cancelAll()
        }
        await self.sender.shutdown()
    }

    private func dispatch(in group: inout DiscardingTaskGroup) async {
        let configuration = self.webhooks.configuration
        var enabled = false
        var lastPrune = ContinuousClock.now
        for await _ in self.wakeups {
            let now = ContinuousClock.now
            if self.checkEndpoints.exchange(false, ordering: .relaxed) {
                do {
                    enabled = try await self.webhooks.anyEnabled()
                } catch {
                    self.checkEndpoints.store(true, ordering: .relaxed)
                }
            }
            if enabled {
                await self.fanOut()
                await self.claimAndSend(in: &group)
            }
            if now - lastPrune >= .seconds(600) {
                lastPrune = now
                if let removed = try? await self.webhooks.prune(), removed > 0 {
                    self.logger.info("old webhook deliveries pruned", metadata: ["deliveries": "\(removed)"])
                }
            }
        }
    }

    /// Endpoints were added, changed or removed (on this server or, by NOTIFY, another).
    public func endpointsChanged() {
        self.checkEndpoints.store(true, ordering: .relaxed)
        self.wake()
    }

    private func fanOut() async {
        var wait = Duration.milliseconds(2)
        let deadline = ContinuousClock.now + .seconds(2)
        do {
            while ContinuousClock.now < deadline {
                guard let made = try await self.webhooks.fanOut() else {
                    // A writer of the horizon is still committing: it ends within milliseconds
                    // (writes are short and bounded by the request deadline).
                    try await Task.sleep(for: wait)
                    wait = min(wait * 2, .milliseconds(100))
                    continue
                }
                self.statistics.fannedOut.add(made, ordering: .relaxed)
                if made < self.webhooks.configuration.fanoutBatch { return }
            }
        } catch is CancellationError {
        } catch {
            self.logger.warning("could not fan changes out to webhooks", metadata: ["error": "\(error)"])
        }
    }

    private func claimAndSend(in group: inout DiscardingTaskGroup) async {
        let free = self.webhooks.configuration.concurrency - self.inFlight.load(ordering: .relaxed)
        guard free > 0 else { return }
        let claimed: [ClaimedDelivery]
        do {
            claimed = try await self.webhooks.claim(limit: free)
        } catch {
            self.logger.warning("could not claim webhook deliveries", metadata: ["error": "\(error)"])
            return
        }
        for delivery in claimed {
            self.inFlight.add(1, ordering: .relaxed)
            group.addTask {
                defer {
                    self.inFlight.subtract(1, ordering: .relaxed)
                    self.wakeup.yield()
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
        do {
            try await self.webhooks.complete(delivery, outcome)
        } catch {
            // The lease runs out and the delivery is attempted again: at least once.
            self.logger.warning("could not record a webhook attempt", metadata: ["delivery": "\(delivery.messageID)", "error": "\(error)"])
        }
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
