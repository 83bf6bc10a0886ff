import Foundation

/// Which shares (tenants) the connections are working for, for the fair-share rules of
/// `PoolStateMachine`, and each share's waits for metrics.
extension PoolStateMachine {
    /// Records that `connection` now works for the shares of `requests`, from `now`.
    mutating func serve(_ requests: [Request], on connection: Int, now: UInt64) {
        guard let first = requests.first else { return }
        if first.canShareConnection { self.costs.started(requests.count, on: connection, now: now) }
        let served: Served = requests.allSatisfy({ $0.share == first.share }) ? .one(first.share) : .several(Set(requests.map(\.share)))
        switch served {
        case .one(let share): self.holders[share, default: 0] += 1
        case .several(let shares): for share in shares { self.holders[share, default: 0] += 1 }
        }
        self.servedBy[connection] = served
    }

    /// `connection` finished its work at `finishedAt`, or lost it (nil).
    mutating func unserve(_ connection: Int, finishedAt: UInt64?) {
        guard let served = self.servedBy.removeValue(forKey: connection) else { return }
        switch served {
        case .one(let share):
            self.release(share)
            if let finishedAt { self.costs.finished(connection, shares: CollectionOfOne(share), now: finishedAt) }
        case .several(let shares):
            for share in shares { self.release(share) }
            if let finishedAt { self.costs.finished(connection, shares: shares, now: finishedAt) }
        }
        if finishedAt == nil { self.costs.abandoned(connection) }
    }

    mutating func release(_ share: UUID?) {
        let remaining = self.holders[share, default: 1] - 1
        self.holders[share] = remaining > 0 ? remaining : nil
    }

    mutating func count(_ share: UUID?, _ change: (inout ShareCounters) -> Void) {
        guard let share else { return }
        if self.shareCounters[share] == nil, self.shareCounters.count >= Self.trackedShares {
            // Forget the quietest to make room: the busiest are the ones worth reporting.
            if let quietest = self.shareCounters.min(by: { $0.value.waited < $1.value.waited })?.key {
                self.shareCounters[quietest] = nil
            }
        }
        change(&self.shareCounters[share, default: ShareCounters()])
    }
}
