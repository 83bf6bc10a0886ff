import Foundation

/// How long each share's batches have lately kept a connection busy, so that a round is cut
/// short for a share whose batches are slow.
///
/// Under load a connection takes up to `pipelineDepth` batches at once, and a request that
/// arrives while every connection is in a round waits until one of them finishes its round.
/// With fast statements a round is over in a millisecond or two. With one tenant's slow ones
/// (100 ms each, say) a round of eight held its connection for 800 ms while a neighbour waited,
/// and a greedy tenant could keep every connection in such rounds. So a share gets about
/// `budget` worth of its batches per round, never fewer than one, judged by the rounds it was in.
///
/// A round's time is shared out evenly between its batches: a fast batch that rode with slow
/// ones is taken for slow too, until its share's next rounds say otherwise. Only shares slower
/// than `budget / depth` a batch are remembered (the others get whole rounds anyway), at most
/// `trackedShares` of them.
struct RoundCosts {
    let budget: UInt64
    let depth: Int
    /// Nanoseconds a batch of each slow share kept its connection busy (a moving average).
    private var perBatch: [UUID?: UInt64] = [:]
    /// When each connection's round of batches started, and how many batches it holds.
    private var rounds: [Int: Round] = [:]
    /// How long rounds of any share have lately taken, start to finish (a moving average).
    private(set) var typicalRound: UInt64 = 0

    struct Round {
        var started: UInt64
        var batches: Int
    }

    static var trackedShares: Int { 1000 }

    init(budget: UInt64, depth: Int) {
        self.budget = budget
        self.depth = depth
    }

    /// How many connections are in a round of batches now.
    var roundsInFlight: Int { self.rounds.count }

    /// Whether any share is held back: when none is, rounds need not count per share.
    var hasSlowShares: Bool { !self.perBatch.isEmpty }

    /// How many of `share`'s batches the next round may take, up to `limit`.
    func allowance(for share: UUID?, limit: Int) -> Int {
        guard let cost = self.perBatch[share], cost > 0 else { return limit }
        return max(1, min(limit, Int(clamping: self.budget / cost)))
    }

    /// `connection` starts a round of `batches` (leases are not timed: a lease's length is its
    /// holder's, not its statements').
    mutating func started(_ batches: Int, on connection: Int, now: UInt64) {
        self.rounds[connection] = Round(started: now, batches: batches)
    }

    /// `connection` finished its round, which held batches of `shares`.
    mutating func finished(_ connection: Int, shares: some Sequence<UUID?>, now: UInt64) {
        guard let round = self.rounds.removeValue(forKey: connection), round.batches > 0 else { return }
        let length = min(now &- round.started, 60_000_000_000)
        self.typicalRound = (self.typicalRound * 7 + length) / 8
        let sample = length / UInt64(round.batches)
        for share in shares {
            let average = self.perBatch[share].map { ($0 * 3 + sample) / 4 } ?? sample
            if average * UInt64(self.depth) <= self.budget {
                self.perBatch[share] = nil
            } else {
                if self.perBatch[share] == nil, self.perBatch.count >= Self.trackedShares, let any = self.perBatch.keys.first {
                    self.perBatch[any] = nil
                }
                self.perBatch[share] = average
            }
        }
    }

    /// `connection` was lost mid-round: its time says nothing about its batches.
    mutating func abandoned(_ connection: Int) {
        self.rounds[connection] = nil
    }
}
