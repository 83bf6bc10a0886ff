import Foundation
@testable import PostgresPool
import Testing

/// The pool's decisions, driven by hand with an injected clock: no sockets, no waiting.
@Suite struct PoolStateMachineTests {
    struct Request: PoolRequestProtocol, Equatable {
        let id: Int
        var canShareConnection = true
        var share: UUID?
        var write = false
        var mayGather: Bool { self.canShareConnection && !self.write }
    }

    typealias Machine = PoolStateMachine<Request>

    static let second: UInt64 = 1_000_000_000

    func machine(max: Int = 2, min: Int = 0) -> Machine {
        Machine(configuration: .init(
            maxConnections: max,
            minConnections: min,
            acquireTimeout: 5 * Self.second,
            keepAliveInterval: 30 * Self.second,
            idleTimeout: 300 * Self.second,
            reconnectDelay: Self.second / 10,
            maxReconnectDelay: Self.second,
            pipelineDepth: 4
        ))
    }

    @Test func opensConnectionsOnDemandUpToTheLimitAndServesWaitersInOrder() {
        var machine = self.machine(max: 2)
        var created: [Int] = []
        for id in 1...4 {
            let action = machine.enqueue(Request(id: id), now: 0)
            #expect(action.run == nil)
            created += action.create
        }
        #expect(created.count == 2)
        #expect(machine.statistics.waiting == 4)
        // Each connection that comes up takes its even share of the queue, oldest first, as one round.
        let first = machine.released(created[0], now: 1)
        #expect(first.run?.requests == [Request(id: 1), Request(id: 2)])
        let second = machine.released(created[1], now: 1)
        #expect(second.run?.requests == [Request(id: 3), Request(id: 4)])
        #expect(machine.statistics.waiting == 0)
        // With nobody waiting, released connections go idle and serve the next caller at once.
        #expect(machine.released(created[0], now: 3).run == nil)
        let direct = machine.enqueue(Request(id: 5), now: 4)
        #expect(direct.run?.requests == [Request(id: 5)])
        #expect(direct.run?.connection == created[0])
        #expect(machine.statistics.acquired == 5)
    }

    @Test func roundsAreCappedByDepthAndLeasesGoAlone() {
        var machine = self.machine(max: 1)
        let key = machine.enqueue(Request(id: 1), now: 0).create[0]
        for id in 2...6 { _ = machine.enqueue(Request(id: id), now: 0) }
        _ = machine.enqueue(Request(id: 7, canShareConnection: false), now: 0)
        _ = machine.enqueue(Request(id: 8), now: 0)
        // Depth 4 caps the round even though one connection could take everything.
        #expect(machine.released(key, now: 1).run?.requests.map(\.id) == [1, 2, 3, 4])
        // A lease is never grouped with batches in front of or behind it.
        #expect(machine.released(key, now: 2).run?.requests.map(\.id) == [5, 6])
        #expect(machine.released(key, now: 3).run?.requests.map(\.id) == [7])
        #expect(machine.released(key, now: 4).run?.requests.map(\.id) == [8])
    }

    @Test func waitersTimeOutAtTheirDeadline() {
        var machine = self.machine(max: 1)
        let first = machine.enqueue(Request(id: 1), now: 0)
        #expect(first.armTimer == 5 * Self.second)
        _ = machine.enqueue(Request(id: 2), now: Self.second)
        #expect(machine.timerFired(now: 4 * Self.second).fail.isEmpty)
        let expired = machine.timerFired(now: 5 * Self.second)
        #expect(expired.fail.map(\.request) == [Request(id: 1)])
        #expect(expired.fail.first?.error.code == .acquireTimeout)
        #expect(expired.armTimer == 6 * Self.second)
        #expect(machine.statistics.timedOut == 1)
        #expect(machine.statistics.waiting == 1)
    }

    @Test func cancelledWaiterIsRemovedAndFailed() {
        var machine = self.machine(max: 1)
        _ = machine.enqueue(Request(id: 1), now: 0)
        _ = machine.enqueue(Request(id: 2), now: 0)
        let cancelled = machine.cancel(requestID: 1)
        #expect(cancelled.fail.map(\.request) == [Request(id: 1)])
        #expect(cancelled.fail.first?.error.code == .cancelled)
        #expect(machine.cancel(requestID: 1).fail.isEmpty)
        #expect(machine.statistics.waiting == 1)
    }

    @Test func failedConnectsBackOffExponentiallyAndProbeWithOneConnection() {
        var machine = self.machine(max: 4)
        let created = machine.enqueue(Request(id: 1), now: 0).create
        #expect(created.count == 1)
        let error = PostgresError(code: .connectionFailed, message: "refused")
        let firstFailure = machine.connectFailed(created[0], error: error, now: 0)
        #expect(firstFailure.retryAt == Self.second / 10)
        // More callers during the backoff do not open connections early.
        #expect(machine.enqueue(Request(id: 2), now: Self.second / 20).create.isEmpty)
        let retry = machine.retryConnecting(now: Self.second / 10)
        #expect(retry.create.count == 1)
        let secondFailure = machine.connectFailed(retry.create[0], error: error, now: Self.second / 10)
        #expect(secondFailure.retryAt == Self.second / 10 + Self.second / 5)
        // A waiter that times out while nothing connects is told why.
        let expired = machine.timerFired(now: 5 * Self.second)
        #expect(expired.fail.first?.error.message.contains("refused") == true)
        // Once a probe succeeds, further connections open as needed.
        let probe = machine.retryConnecting(now: Self.second).create
        #expect(probe.count == 1)
        let served = machine.released(probe[0], now: Self.second)
        #expect(served.run?.requests == [Request(id: 2)])
    }

    @Test func brokenConnectionIsReplacedWhileCallersWait() {
        var machine = self.machine(max: 1)
        let key = machine.enqueue(Request(id: 1), now: 0).create[0]
        _ = machine.released(key, now: 0)
        _ = machine.enqueue(Request(id: 2), now: 0)
        let replaced = machine.closed(key, now: 1)
        #expect(replaced.create.count == 1)
        #expect(machine.statistics.open == 0)
    }

    @Test func maintenancePingsIdleConnectionsAndClosesSurplusOnes() {
        var machine = self.machine(max: 2, min: 1)
        let keys = machine.maintenance(now: 0).create
        #expect(keys.count == 1)
        _ = machine.released(keys[0], now: 0)
        let pinged = machine.maintenance(now: 31 * Self.second)
        #expect(pinged.ping == keys)
        _ = machine.released(keys[0], now: 31 * Self.second)
        // Kept because it is the minimum, even when idle for long.
        #expect(machine.maintenance(now: 400 * Self.second).close.isEmpty)

        var surplus = self.machine(max: 2, min: 0)
        let key = surplus.enqueue(Request(id: 1), now: 0).create[0]
        _ = surplus.released(key, now: 0)
        _ = surplus.released(key, now: 0)
        #expect(surplus.maintenance(now: 301 * Self.second).close == [key])
    }

    @Test func shutdownFailsWaitersClosesIdleAndFinishesWhenBusyOnesReturn() {
        var machine = self.machine(max: 2)
        let keys = machine.enqueue(Request(id: 1), now: 0).create + machine.enqueue(Request(id: 2), now: 0).create
        _ = machine.released(keys[0], now: 0) // runs request 1
        _ = machine.enqueue(Request(id: 3), now: 0)
        let shutdown = machine.shutdown()
        #expect(Set(shutdown.fail.map(\.request.id)) == [2, 3])
        #expect(!shutdown.shutdownComplete)
        #expect(machine.enqueue(Request(id: 4), now: 0).fail.first?.error.code == .poolClosed)
        let returned = machine.released(keys[0], now: 1)
        #expect(returned.close == [keys[0]])
        _ = machine.closed(keys[0], now: 1)
        let done = machine.connectFailed(keys[1], error: PostgresError(code: .connectionFailed, message: "x"), now: 1)
        #expect(done.shutdownComplete)
    }

    static let tenantA = UUID()
    static let tenantB = UUID()

    @Test func whileAnotherTenantWaitsNoTenantGetsMoreThanHalfTheConnections() {
        var machine = Machine(configuration: .init(
            maxConnections: 4, minConnections: 0, acquireTimeout: 5 * Self.second, keepAliveInterval: 30 * Self.second,
            idleTimeout: 300 * Self.second, reconnectDelay: Self.second / 10, maxReconnectDelay: Self.second, pipelineDepth: 4
        ))
        // Tenant A queues six leases; the pool opens its four connections.
        var created: [Int] = []
        for id in 1...6 { created += machine.enqueue(Request(id: id, canShareConnection: false, share: Self.tenantA), now: 0).create }
        #expect(created.count == 4)
        #expect(machine.released(created[0], now: 1).run?.requests.map(\.id) == [1])
        #expect(machine.released(created[1], now: 1).run?.requests.map(\.id) == [2])
        // Tenant B arrives: A holds half the connections, so the next two go to B, not to A's backlog.
        _ = machine.enqueue(Request(id: 7, canShareConnection: false, share: Self.tenantB), now: 2)
        _ = machine.enqueue(Request(id: 8, canShareConnection: false, share: Self.tenantB), now: 2)
        #expect(machine.released(created[2], now: 3).run?.requests.map(\.id) == [7])
        #expect(machine.released(created[3], now: 3).run?.requests.map(\.id) == [8])
        // With only A waiting, A gets whatever comes free: no connection idles while someone waits.
        #expect(machine.released(created[2], now: 4).run?.requests.map(\.id) == [3])
        #expect(machine.released(created[3], now: 4).run?.requests.map(\.id) == [4])
        #expect(machine.released(created[0], now: 4).run?.requests.map(\.id) == [5])
    }

    @Test func tenantsTakeTurnsWithinARoundAndKeepTheirOwnOrder() {
        var machine = self.machine(max: 1)
        let key = machine.enqueue(Request(id: 1, share: Self.tenantA), now: 0).create[0]
        for id in 2...6 { _ = machine.enqueue(Request(id: id, share: Self.tenantA), now: 0) }
        _ = machine.enqueue(Request(id: 7, share: Self.tenantB), now: 0)
        _ = machine.enqueue(Request(id: 8, share: Self.tenantB), now: 0)
        _ = machine.enqueue(Request(id: 9), now: 0)
        // One each per turn: A, B, then the work of no tenant, then A again.
        #expect(machine.released(key, now: 1).run?.requests.map(\.id) == [1, 7, 9, 2])
        #expect(machine.released(key, now: 2).run?.requests.map(\.id) == [8, 3, 4, 5])
        #expect(machine.released(key, now: 3).run?.requests.map(\.id) == [6])
    }

    @Test func aTenantWhoseBatchesAreSlowGetsFewerOfThemIntoARound() {
        // Depth 4, a round budget of 20 ms: shares slower than 5 ms a batch are cut short.
        var machine = self.machine(max: 1)
        let ms: UInt64 = 1_000_000
        let key = machine.enqueue(Request(id: 1, share: Self.tenantA), now: 0).create[0]
        for id in 2...30 { _ = machine.enqueue(Request(id: id, share: Self.tenantA), now: 0) }
        // Nothing is known of A yet: a whole round.
        #expect(machine.released(key, now: 1).run?.requests.map(\.id) == [1, 2, 3, 4])
        // That round kept the connection 400 ms, 100 ms a batch: A's rounds now hold one.
        #expect(machine.released(key, now: 400 * ms).run?.requests.map(\.id) == [5])
        #expect(machine.released(key, now: 500 * ms).run?.requests.map(\.id) == [6])
        // B arrives with no history and fills the round A can no longer, ahead of A's slow
        // batch though A's turn came first: B's answers do not wait behind it.
        for id in 101...103 { _ = machine.enqueue(Request(id: id, share: Self.tenantB), now: 500 * ms) }
        #expect(machine.released(key, now: 600 * ms).run?.requests.map(\.id) == [101, 102, 103, 7])
        // A 40 ms round of four: 10 ms a batch for both, so two each (the budget's worth).
        for id in 104...106 { _ = machine.enqueue(Request(id: id, share: Self.tenantB), now: 600 * ms) }
        let mixed = machine.released(key, now: 640 * ms).run?.requests.map(\.id) ?? []
        #expect(mixed.filter { $0 < 100 }.count == 1, "A is still slow on average: \(mixed)")
        #expect(mixed.filter { $0 > 100 }.count == 2, "B is at 10 ms a batch: \(mixed)")
        #expect(mixed == [104, 105, 8], "A's batch goes last")
        // When A's batches turn fast, its rounds grow back to the whole depth.
        var now = 640 * ms
        var sizes: [Int] = []
        while sizes.last != 4, sizes.count < 30 {
            now += ms
            let round = machine.released(key, now: now).run?.requests ?? []
            if round.isEmpty { for id in 0..<8 { _ = machine.enqueue(Request(id: 1000 + sizes.count * 8 + id, share: Self.tenantA), now: now) } }
            sizes.append(round.count)
        }
        #expect(sizes.last == 4, "round sizes as A got faster: \(sizes)")
    }

    @Test func roundsOfFastBatchesAreNotCutShort() {
        var machine = self.machine(max: 1)
        let key = machine.enqueue(Request(id: 1, share: Self.tenantA), now: 0).create[0]
        for id in 2...12 { _ = machine.enqueue(Request(id: id, share: Self.tenantA), now: 0) }
        var now: UInt64 = 1
        var sizes: [Int] = []
        for _ in 0..<3 {
            // Each round of four takes 4 ms: 1 ms a batch, well within 20 ms for four.
            sizes.append(machine.released(key, now: now).run?.requests.count ?? 0)
            now += 4_000_000
        }
        #expect(sizes == [4, 4, 4])
    }

    @Test func waitsAndTimeoutsAreCountedPerTenant() {
        var machine = self.machine(max: 1)
        // Leases, so each needs the one connection to itself.
        let key = machine.enqueue(Request(id: 1, canShareConnection: false, share: Self.tenantA), now: 0).create[0]
        _ = machine.enqueue(Request(id: 2, canShareConnection: false, share: Self.tenantA), now: 0)
        _ = machine.enqueue(Request(id: 3, canShareConnection: false, share: Self.tenantB), now: 0)
        #expect(machine.released(key, now: 1).run?.requests.map(\.id) == [1])
        _ = machine.timerFired(now: 6 * Self.second)
        #expect(machine.shareCounters[Self.tenantA] == ShareCounters(waited: 2, timedOut: 1))
        #expect(machine.shareCounters[Self.tenantB] == ShareCounters(waited: 1, timedOut: 1))
    }
}
