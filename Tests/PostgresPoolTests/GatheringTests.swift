import Foundation
@testable import PostgresPool
import Testing

/// A batch that finds a connection idle while others are in rounds of fast batches waits for
/// the next of those rounds (`PoolConfiguration.gatherDelay`), never longer than the delay.
@Suite struct GatheringTests {
    typealias Request = PoolStateMachineTests.Request
    typealias Machine = PoolStateMachine<Request>

    static let millisecond: UInt64 = 1_000_000
    static let delay = 2 * millisecond

    /// Four connections open and idle, depth 4, gathering after `delay` unless turned off.
    func machine(gatherDelay: UInt64 = Self.delay) -> (Machine, [Int]) {
        var machine = Machine(configuration: .init(
            maxConnections: 4, minConnections: 0, acquireTimeout: 5_000 * Self.millisecond, keepAliveInterval: 30_000 * Self.millisecond,
            idleTimeout: 300_000 * Self.millisecond, reconnectDelay: 100 * Self.millisecond, maxReconnectDelay: 1_000 * Self.millisecond,
            pipelineDepth: 4, gatherDelay: gatherDelay
        ))
        var keys: [Int] = []
        for id in 1...4 { keys += machine.enqueue(Request(id: -id), now: 0).create }
        for key in keys { _ = machine.released(key, now: 0) }
        // The four placeholder requests ran as the connections came up; all four are idle now.
        for key in keys { #expect(machine.released(key, now: 0).run == nil) }
        #expect(machine.statistics.idle == 4)
        return (machine, keys)
    }

    /// Runs one fast round (0.1 ms) on a connection so that rounds are known to be fast.
    func warmUp(_ machine: inout Machine, id: Int) {
        let run = machine.enqueue(Request(id: id), now: 10 * Self.millisecond)
        guard let connection = run.run?.connection else {
            Issue.record("no connection for the warm-up")
            return
        }
        _ = machine.released(connection, now: 10 * Self.millisecond + Self.millisecond / 10)
    }

    /// A warmed-up machine with batches 1 and 2 in rounds on two connections (returned, in
    /// order) and two connections idle, at `now`.
    func twoRoundsInFlight() -> (machine: Machine, busy: [Int], now: UInt64) {
        var (machine, _) = self.machine()
        self.warmUp(&machine, id: 100)
        let now = 20 * Self.millisecond
        let first = machine.enqueue(Request(id: 1), now: now)
        let second = machine.enqueue(Request(id: 2), now: now)
        #expect(first.run?.requests.map(\.id) == [1])
        #expect(second.run?.requests.map(\.id) == [2])
        return (machine, [first, second].compactMap(\.run?.connection), now)
    }

    @Test func aBatchJoinsTheNextRoundOfABusyConnectionRatherThanWakingAnIdleOne() {
        var (machine, busy, now) = self.twoRoundsInFlight()
        // Two connections in rounds, two idle: the third and fourth batches wait for a round.
        let tenant = PoolStateMachineTests.tenantA
        let third = machine.enqueue(Request(id: 3, share: tenant), now: now)
        let fourth = machine.enqueue(Request(id: 4, share: tenant), now: now)
        #expect(third.run == nil && fourth.run == nil)
        #expect(third.create.isEmpty && fourth.create.isEmpty)
        #expect(third.armTimer == now + Self.delay)
        #expect(machine.statistics.gathered == 2)
        #expect(machine.statistics.waiting == 2)
        // The first round to finish takes both in one round.
        let next = machine.released(busy[0], now: now + Self.millisecond / 10)
        #expect(next.run?.requests.map(\.id) == [3, 4])
        #expect(next.run?.connection == busy[0])
        #expect(machine.statistics.idle == 2)
        // Being gathered is not waiting for want of a connection.
        #expect(machine.shareCounters[tenant] == nil)
    }

    @Test func aGatheredBatchTakesAnIdleConnectionAfterTheDelay() {
        var (machine, busy, now) = self.twoRoundsInFlight()
        #expect(busy.count == 2)
        #expect(machine.enqueue(Request(id: 3), now: now).run == nil)
        // The two rounds hang (a lock, a slow statement): before the delay nothing moves ...
        #expect(machine.timerFired(now: now + Self.delay - 1).run == nil)
        // ... at the delay an idle connection takes the batch.
        let spilled = machine.timerFired(now: now + Self.delay)
        #expect(spilled.run?.requests.map(\.id) == [3])
        #expect(spilled.run.map { !busy.contains($0.connection) } == true)
        #expect(machine.statistics.waiting == 0)
        #expect(spilled.armTimer == nil)
    }

    @Test func aLeaseDoesNotWaitBehindGatheredBatches() {
        var (machine, _, now) = self.twoRoundsInFlight()
        #expect(machine.enqueue(Request(id: 3), now: now).run == nil)
        let lease = machine.enqueue(Request(id: 4, canShareConnection: false), now: now)
        #expect(lease.run?.requests.map(\.id) == [4])
        #expect(machine.statistics.waiting == 1)
    }

    @Test func aWriteTakesAnIdleConnectionAndTheGatheredBatchesAlong() {
        var (machine, _, now) = self.twoRoundsInFlight()
        #expect(machine.enqueue(Request(id: 3), now: now).run == nil)
        // A write's commit waits for its flush: it goes out at once, with what was gathered.
        let write = machine.enqueue(Request(id: 4, write: true), now: now)
        #expect(write.run?.requests.map(\.id) == [3, 4])
        #expect(machine.statistics.waiting == 0)
        #expect(machine.statistics.gathered == 1)
    }

    @Test func aFullNextRoundGoesToAnIdleConnectionAtOnce() {
        var (machine, _, now) = self.twoRoundsInFlight()
        // Depth 4: three may wait for the next round; the fourth makes a full round, sent now.
        for id in 3...5 { #expect(machine.enqueue(Request(id: id), now: now).run == nil) }
        let full = machine.enqueue(Request(id: 6), now: now)
        #expect(full.run?.requests.map(\.id) == [3, 4, 5, 6])
        #expect(machine.statistics.gathered == 3)
        #expect(machine.statistics.waiting == 0)
    }

    @Test func slowRoundsOneRoundInFlightOrNoDelayMeanNoGathering() {
        // Rounds that lately took longer than half the delay: every batch goes straight out.
        var (slow, _) = self.machine()
        let warm = slow.enqueue(Request(id: 100), now: 0)
        _ = slow.released(warm.run!.connection, now: 10 * Self.millisecond)
        for id in 1...3 { #expect(slow.enqueue(Request(id: id), now: 20 * Self.millisecond).run?.requests.map(\.id) == [id]) }
        // One round in flight is not enough: a slow round must not hold the next batch.
        var (single, _) = self.machine()
        self.warmUp(&single, id: 100)
        #expect(single.enqueue(Request(id: 1), now: 20 * Self.millisecond).run != nil)
        #expect(single.enqueue(Request(id: 2), now: 20 * Self.millisecond).run != nil)
        // Turned off.
        var (off, _) = self.machine(gatherDelay: 0)
        self.warmUp(&off, id: 100)
        for id in 1...4 { #expect(off.enqueue(Request(id: id), now: 20 * Self.millisecond).run?.requests.map(\.id) == [id]) }
        #expect(slow.statistics.gathered == 0 && single.statistics.gathered == 0 && off.statistics.gathered == 0)
    }
}
