public import Foundation
import PostgresPool
import Synchronization

extension ChangeFeed {
    /// Where a subscriber starts.
    public enum ResumePoint: Sendable, Equatable {
        /// From now on.
        case now
        /// After a position it was given (an event id).
        case after(Int64)
        /// After an id this tenant was never given: the subscriber is told to reload.
        case unknown
    }

    /// Subscribes `principal` to its tenant's changes (only those of `collections`, when given)
    /// until `expiresAt`. Changes after `resume` that are already in the log are replayed
    /// first, then live ones follow, with none missed or repeated at the seam.
    ///
    /// - Throws: `unavailable` (retry later) when this server or the tenant has as many
    ///   subscribers as allowed, or the feed has not started reading yet.
    public func subscribe(
        _ principal: Principal, resume: ResumePoint, collections: Set<String>?, expiresAt: Date?
    ) async throws -> ChangeSubscription {
        var resume = resume
        var reset = ChangeSubscription.ResetReason.unknown
        if case .after(let position) = resume, position < (try await self.prunedThrough()) {
            resume = .unknown
            reset = .expired
        }
        let tenant = principal.tenant.tenantID
        let established = try await self.followingPosition()
        // A NOTIFY that came while nobody subscribed was not acted on: read now.
        defer { self.wake() }
        return try self.state.withLock { state in
            guard !state.shuttingDown else {
                throw AtriumError(.unavailable, "the server is shutting down", retryAfter: 1, cause: "change feed stopping")
            }
            // The reader may have moved on meanwhile (then its cursor), or stopped following.
            let cursor = state.cursor ?? established
            state.cursor = cursor
            guard state.count < self.configuration.maximumSubscribers else {
                throw AtriumError(.unavailable, "this server has as many event subscribers as it takes; retry shortly", reason: "too_many_subscribers", retryAfter: 5, cause: "subscriber limit")
            }
            guard (state.subscribers[tenant]?.count ?? 0) < self.configuration.maximumSubscribersPerTenant else {
                throw AtriumError(.unavailable, "the tenant has as many event subscribers as it may have on this server; retry later", reason: "too_many_subscribers", retryAfter: 5, cause: "tenant subscriber limit")
            }
            let subscription: ChangeSubscription
            switch resume {
            case .now:
                subscription = ChangeSubscription(
                    feed: self, principal: principal, collections: collections, expiresAt: expiresAt, capacity: self.configuration.bufferCapacity,
                    after: cursor, replay: nil, first: .position(cursor)
                )
            case .unknown:
                subscription = ChangeSubscription(
                    feed: self, principal: principal, collections: collections, expiresAt: expiresAt, capacity: self.configuration.bufferCapacity,
                    after: cursor, replay: nil, first: .reset(position: cursor, reason: reset)
                )
            case .after(let position):
                // Behind the cursor: replay (position, cursor] from the log. Ahead of it (the
                // client was on a server whose reader is further on): skip what it has seen.
                subscription = ChangeSubscription(
                    feed: self, principal: principal, collections: collections, expiresAt: expiresAt, capacity: self.configuration.bufferCapacity,
                    after: max(position, cursor), replay: position < cursor ? (position, cursor) : nil, first: nil
                )
            }
            state.subscribers[tenant, default: [:]][ObjectIdentifier(subscription)] = subscription
            state.count += 1
            return subscription
        }
    }

    /// The next page of a subscriber's replay, filtered as live changes are; `last` is where
    /// the page ended, `done` whether the replay is over.
    func replayPage(for subscription: ChangeSubscription, after: Int64, through: Int64) async throws -> (changes: [Change], last: Int64, done: Bool) {
        let limit = self.configuration.batchSize
        let rows = try await self.database.query(in: subscription.principal.tenant, """
            SELECT \(unescaped: Change.columns) FROM atrium.record_changes
            WHERE tenant_id = \(subscription.principal.tenant.tenantID) AND position > \(after) AND position <= \(through)
            ORDER BY position LIMIT \(limit)
            """)
        let changes = try rows.map { try Change(row: $0, from: 0) }
        var rules: [UUID: AccessRule?] = [:]
        var visible: [Change] = []
        for change in changes where subscription.wants(change) {
            if rules[change.collectionID] == nil { rules[change.collectionID] = .some(await self.currentRule(of: change)) }
            if change.isVisible(to: subscription.principal, currentRule: rules[change.collectionID] ?? nil) { visible.append(change) }
        }
        self.statistics.delivered.add(visible.count, ordering: .relaxed)
        return (visible, changes.last?.position ?? through, changes.count < limit)
    }

    private func prunedThrough() async throws -> Int64 {
        try await self.database.unscopedTransaction(["SELECT atrium.change_pruned_through()"])[0][0].decode(Int64.self, column: 0)
    }
}
