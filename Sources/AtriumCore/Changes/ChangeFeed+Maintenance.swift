import AtriumText
import Foundation
import Logging
import PostgresPool
import Synchronization

extension ChangeFeed {
    /// Once a second: heartbeats for idle subscribers and the end of those whose session was
    /// revoked (in case a NOTIFY was missed) or whose credential expired. API keys are checked
    /// again every `keyCheckInterval` (a revoked key ends its streams), old changes and unused tickets
    /// pruned every `pruneInterval`, and the log read every `rereadInterval` (a NOTIFY never
    /// sent). Nothing here queries while nobody subscribes, but pruning.
    func maintainUntilCancelled() async {
        var lastKeyCheck = ContinuousClock.now
        var lastPrune = ContinuousClock.now
        var lastReread = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            guard !Task.isCancelled else { return }
            let now = ContinuousClock.now
            self.endInvalidSubscriptions(heartbeatAt: now)
            if now - lastKeyCheck >= self.configuration.keyCheckInterval {
                lastKeyCheck = now
                await self.endRevokedKeySubscriptions()
            }
            if now - lastReread >= self.configuration.rereadInterval {
                lastReread = now
                if self.subscriberCount > 0 { self.wake() }
            }
            if now - lastPrune >= self.configuration.pruneInterval {
                lastPrune = now
                await self.prune()
            }
        }
    }

    /// Heartbeats, revoked sessions and expired credentials.
    func endInvalidSubscriptions(heartbeatAt now: ContinuousClock.Instant = .now) {
        let all = self.state.withLock { $0.subscribers.values.flatMap(\.values) }
        let date = Date()
        for subscription in all {
            if let session = subscription.principal.sessionID, self.revocations.contains(session) {
                subscription.end(.sessionRevoked)
            } else if let expiresAt = subscription.expiresAt, expiresAt <= date {
                subscription.end(.credentialExpired)
            } else {
                subscription.heartbeat(ifIdleFor: self.configuration.heartbeat, now: now)
            }
        }
    }

    private func endRevokedKeySubscriptions() async {
        let byTenant = self.state.withLock { state in
            state.subscribers.compactMapValues { subscribers -> [ChangeSubscription]? in
                let keyed = subscribers.values.filter { $0.principal.apiKeyID != nil }
                return keyed.isEmpty ? nil : keyed
            }
        }
        for (tenant, subscriptions) in byTenant {
            let keys = Array(Set(subscriptions.compactMap(\.principal.apiKeyID?.lowercasedString)))
            do {
                let rows = try await self.database.query(in: TenantContext(tenantID: tenant), """
                    SELECT key_id FROM atrium.api_keys
                    WHERE tenant_id = \(tenant) AND key_id = ANY(\(keys)::uuid[]) AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
                    """)
                let valid = Set(try rows.map { try $0.decode(UUID.self, column: 0) })
                for subscription in subscriptions where !valid.contains(subscription.principal.apiKeyID!) {
                    subscription.end(.keyRevoked)
                }
            } catch {
                self.logger.warning("could not check the API keys of event subscribers", metadata: ["error": "\(error)"])
            }
        }
    }

    private func prune() async {
        do {
            var removed = 0
            for _ in 0..<20 {
                let batch = try await self.database.unscopedTransaction([
                    "SELECT atrium.prune_changes(\(self.configuration.retention.components.seconds)::float8 * interval '1 second', 10000)",
                ])[0][0].decode(Int64.self, column: 0)
                removed += Int(batch)
                if batch < 10000 { break }
            }
            _ = try await self.database.unscopedTransaction(["SELECT atrium.prune_event_tickets()"])
            if removed > 0 {
                self.logger.info("old changes pruned", metadata: ["changes": "\(removed)"])
            }
        } catch {
            self.logger.warning("could not prune the change log", metadata: ["error": "\(error)"])
        }
    }
}
