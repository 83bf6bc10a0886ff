import Foundation
import Logging
import PostgresPool
import Synchronization

extension ChangeFeed {
    /// Reads whenever woken (NOTIFY, or the listener's reconnect), until
    /// the wakeups end at shutdown. A failed read is retried with backoff; subscribers wait.
    func readUntilCancelled() async {
        var failures = 0
        for await _ in self.wakeups {
            do {
                try await self.readAvailable()
                failures = 0
            } catch {
                if Task.isCancelled { return }
                failures += 1
                self.logger.warning("change feed cannot read the log", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: min(.milliseconds(50) * (1 << min(failures, 7)), .seconds(5)))
                self.wake()
            }
        }
    }

    /// Hands out every change up to the current horizon. With no subscribers there is nothing
    /// to hand out: the reader stops following (no query per write) until one subscribes.
    func readAvailable() async throws {
        let following = self.state.withLock { state -> Int64? in
            if state.count == 0 { state.cursor = nil }
            return state.cursor
        }
        guard let start = following else { return }
        let (through, writers) = try await self.horizon()
        guard through > start else { return }
        var cursor = start
        var delay = Duration.milliseconds(1)
        let heldSince = ContinuousClock.now
        var warned = false
        while true {
            let rows = try await self.database.unscopedTransaction([
                "SELECT * FROM atrium.change_feed(\(cursor), \(through), \(writers)::text[], \(self.configuration.batchSize))",
            ])[0]
            guard let first = rows.first, try first.decode(Bool.self, column: 0) else {
                // A transaction that may hold a position below the horizon is still running.
                if self.subscriberCount == 0 { return }
                if !warned, ContinuousClock.now - heldSince > .seconds(10) {
                    warned = true
                    self.logger.warning("change feed held back by a long-running transaction")
                }
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .milliseconds(100))
                continue
            }
            let changes = try rows.compactMap { row -> Change? in
                try row.decode(Int64?.self, column: 1) == nil ? nil : Change(row: row, from: 1)
            }
            let complete = changes.count < self.configuration.batchSize
            cursor = complete ? through : changes.last!.position
            await self.dispatch(changes, advancingTo: cursor)
            if complete { return }
        }
    }

    /// The horizon: positions up to `through` are final once none of `writers` (the
    /// transactions writing changes when it was taken) is still running.
    func horizon() async throws -> (through: Int64, writers: [String]) {
        let row = try await self.database.unscopedTransaction(["SELECT through, writers FROM atrium.change_horizon()"])[0][0]
        return try row.decode((Int64, [String]).self)
    }

    /// A position to follow from: the current cursor, or (when the reader is not following)
    /// the horizon once it has settled.
    /// - Throws: `unavailable` when a long-running transaction keeps it from settling.
    func followingPosition() async throws -> Int64 {
        if let cursor = self.state.withLock({ $0.cursor }) { return cursor }
        let (through, writers) = try await self.horizon()
        var delay = Duration.milliseconds(1)
        let deadline = ContinuousClock.now + .seconds(5)
        while true {
            let row = try await self.database.unscopedTransaction([
                "SELECT settled FROM atrium.change_feed(\(through), \(through), \(writers)::text[], 0)",
            ])[0][0]
            if try row.decode(Bool.self, column: 0) { return through }
            guard ContinuousClock.now < deadline else {
                throw AtriumError(.unavailable, "the event feed is held back by a long-running transaction; retry shortly", retryAfter: 5, cause: "change horizon not settled")
            }
            try await Task.sleep(for: delay)
            delay = min(delay * 2, .milliseconds(100))
        }
    }

    /// Offers `changes` to the subscribers that may see them and moves the cursor, as one step
    /// under the lock, so a subscriber registering meanwhile replays exactly up to the cursor.
    func dispatch(_ changes: [Change], advancingTo cursor: Int64) async {
        self.statistics.read.add(changes.count, ordering: .relaxed)
        let watched = self.state.withLock { Set($0.subscribers.keys) }
        var rules: [CollectionKey: AccessRule] = [:]
        for change in changes where watched.contains(change.tenant) {
            let key = CollectionKey(tenant: change.tenant, collection: change.collectionID)
            if rules[key] == nil, let rule = await self.currentRule(of: change) { rules[key] = rule }
        }
        let delivered = self.state.withLock { state -> Int in
            var delivered = 0
            for change in changes {
                guard let subscribers = state.subscribers[change.tenant] else { continue }
                let rule = rules[CollectionKey(tenant: change.tenant, collection: change.collectionID)]
                for (key, subscriber) in subscribers where subscriber.wants(change) && change.isVisible(to: subscriber.principal, currentRule: rule) {
                    switch subscriber.offer(change) {
                    case .queued:
                        delivered += 1
                    case .skipped:
                        break
                    case .ended:
                        if state.subscribers[change.tenant]?.removeValue(forKey: key) != nil {
                            state.count -= 1
                            if subscriber.endReason == .slowConsumer { self.statistics.dropped.add(1, ordering: .relaxed) }
                        }
                    }
                }
                if state.subscribers[change.tenant]?.isEmpty == true { state.subscribers[change.tenant] = nil }
            }
            state.cursor = max(state.cursor ?? cursor, cursor)
            return delivered
        }
        self.statistics.delivered.add(delivered, ordering: .relaxed)
        if let last = changes.last {
            let lag = max(0, Date().timeIntervalSince(last.occurredAt))
            self.statistics.lagMicroseconds.store(Int(lag * 1e6), ordering: .relaxed)
        }
    }

    /// The collection's read rule now, or nil when it is gone (or was replaced by another of
    /// the same name): then the rule at the write decides alone.
    func currentRule(of change: Change) async -> AccessRule? {
        guard let collection = try? await self.collections.collection(named: change.collection, in: TenantContext(tenantID: change.tenant)),
              collection.id == change.collectionID
        else { return nil }
        return collection.definition.rules.read
    }
}

struct CollectionKey: Hashable {
    let tenant: UUID
    let collection: UUID
}
