import DequeModule
import Foundation

/// Callers waiting for a connection: a FIFO queue per share (a tenant; nil for work that
/// belongs to none), served in turn, so one share's backlog delays its own requests and not
/// everyone's.
struct WaitQueue<Request: PoolRequestProtocol> {
    struct Waiter {
        var request: Request
        var deadline: UInt64
        /// When it started waiting.
        var since: UInt64 = 0
    }

    private var queues: [UUID?: Deque<Waiter>] = [:]
    /// Shares with waiters, in the order they are served next.
    private var turns: Deque<UUID?> = []
    private var shareOf: [Int: UUID?] = [:]
    private(set) var count = 0

    var isEmpty: Bool { self.count == 0 }

    /// How many shares have someone waiting.
    var sharesWaiting: Int { self.turns.count }

    /// Queues `waiter` at the back of its share's queue, or at the front (a request that was
    /// handed to a connection but never sent).
    mutating func append(_ waiter: Waiter, atFront: Bool = false) {
        let share = waiter.request.share
        if self.queues[share, default: []].isEmpty { self.turns.append(share) }
        if atFront {
            self.queues[share, default: []].prepend(waiter)
        } else {
            self.queues[share, default: []].append(waiter)
        }
        self.shareOf[waiter.request.id] = share
        self.count += 1
    }

    /// Removes the waiter for request `id`, if it still waits.
    mutating func remove(id: Int) -> Waiter? {
        guard let share = self.shareOf[id], let index = self.queues[share]?.firstIndex(where: { $0.request.id == id }) else { return nil }
        let waiter = self.queues[share]!.remove(at: index)
        self.forget(waiter, share: share)
        return waiter
    }

    /// The earliest deadline of any waiter. Deadlines rise within a share's queue (all share one
    /// timeout), but for requeued requests, so the heads are enough.
    var earliestDeadline: UInt64? {
        self.turns.compactMap { self.queues[$0]?.first?.deadline }.min()
    }

    /// When the longest-waiting waiter started waiting (the heads are enough, as above).
    var earliestSince: UInt64? {
        self.turns.compactMap { self.queues[$0]?.first?.since }.min()
    }

    /// Removes and returns the waiter whose deadline is earliest, if it is past `now`.
    mutating func popExpired(now: UInt64) -> Waiter? {
        var expired: (share: UUID?, deadline: UInt64)?
        for share in self.turns {
            guard let head = self.queues[share]?.first, head.deadline <= now else { continue }
            if expired == nil || head.deadline < expired!.deadline { expired = (share, head.deadline) }
        }
        // Not `expired?.share`: optional chaining would flatten a nil share into "none expired".
        guard let expired, let waiter = self.queues[expired.share]?.popFirst() else { return nil }
        self.forget(waiter, share: expired.share)
        return waiter
    }

    mutating func removeAll() -> [Waiter] {
        let all = self.turns.flatMap { self.queues[$0] ?? [] }
        self.queues = [:]
        self.turns = []
        self.shareOf = [:]
        self.count = 0
        return all
    }

    /// The requests for one connection, up to `limit`: shares take turns, one request each per
    /// pass, and a share's own requests stay in order. A lease goes alone, and only first.
    /// `mayTake` says whether a share may have another connection; when no waiting share may,
    /// they all may (a free connection never idles while someone waits). No share puts more
    /// than its `allowance` (at least one) into the round, and the batches of shares allowed
    /// fewer than `limit` go after the others. Without an `allowance` (no share is slow, the
    /// usual case) nothing is counted.
    mutating func nextRound(limit: Int, mayTake: (UUID?) -> Bool, allowance: ((UUID?) -> Int)?) -> [Request] {
        let anyEligible = self.turns.contains(where: mayTake)
        var round: [Request] = []
        // How many each share has in this round so far, against its allowance (few shares:
        // a round holds at most `limit`).
        var taken: [(share: UUID?, count: Int, allowed: Int)] = []
        var progress = true
        while progress, round.count < limit {
            progress = false
            for share in Array(self.turns) where round.count < limit {
                guard anyEligible ? mayTake(share) : true, let head = self.queues[share]?.first else { continue }
                if !head.request.canShareConnection {
                    // A lease needs the connection to itself.
                    guard round.isEmpty else { continue }
                    self.take(from: share)
                    return [head.request]
                }
                if let allowance {
                    let index: Int
                    if let known = taken.firstIndex(where: { $0.share == share }) {
                        index = known
                    } else {
                        taken.append((share, 0, allowance(share)))
                        index = taken.count - 1
                    }
                    guard taken[index].count < taken[index].allowed else { continue }
                    taken[index].count += 1
                }
                self.take(from: share)
                round.append(head.request)
                progress = true
            }
        }
        // A connection answers a round's batches in order: those of shares held back for being
        // slow go last, so the others' answers do not wait behind them. Each share's own stay
        // in order.
        if taken.count > 1, taken.contains(where: { $0.allowed < limit }) {
            func allowed(_ request: Request) -> Int { taken.first { $0.share == request.share }?.allowed ?? limit }
            round = round.enumerated().sorted { first, second in
                let (a, b) = (allowed(first.element), allowed(second.element))
                return a != b ? a > b : first.offset < second.offset
            }.map(\.element)
        }
        return round
    }

    /// Takes the head of `share`'s queue and sends the share to the back of the turns.
    private mutating func take(from share: UUID?) {
        guard let waiter = self.queues[share]?.popFirst() else { return }
        self.forget(waiter, share: share)
        if let index = self.turns.firstIndex(of: share) {
            self.turns.remove(at: index)
            if self.queues[share]?.isEmpty == false { self.turns.append(share) }
        }
    }

    private mutating func forget(_ waiter: Waiter, share: UUID?) {
        self.shareOf[waiter.request.id] = nil
        self.count -= 1
        if self.queues[share]?.isEmpty == true {
            self.queues[share] = nil
            if let index = self.turns.firstIndex(of: share) { self.turns.remove(at: index) }
        }
    }
}
