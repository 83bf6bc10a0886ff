public import Foundation
import PostgresPool

/// How busy the database connections are, for metrics: the layers above see these figures,
/// not the pool.
public struct DatabaseLoad: Sendable, Hashable {
    /// Established connections (idle or in use).
    public var open: Int
    public var idle: Int
    public var inUse: Int
    /// Requests waiting for a connection.
    public var waiting: Int
    /// Requests that got a connection, since start.
    public var acquired: Int
    /// Requests that gave up waiting, since start.
    public var timedOut: Int
    /// Requests that found a connection idle and joined a busy one's next round, since start.
    public var gathered: Int
}

/// How often one tenant's requests waited for a connection, and gave up, since start.
public struct TenantWaits: Sendable, Hashable {
    public var tenant: UUID
    public var waited: Int
    public var timedOut: Int
}

extension Database {
    /// The connections' state now.
    public var load: DatabaseLoad {
        let statistics = self.pool.statistics
        return DatabaseLoad(
            open: statistics.open, idle: statistics.idle, inUse: statistics.inUse,
            waiting: statistics.waiting, acquired: statistics.acquired, timedOut: statistics.timedOut,
            gathered: statistics.gathered
        )
    }

    /// The `limit` tenants that waited most for a connection.
    public func busiestTenants(limit: Int) -> [TenantWaits] {
        self.pool.busiestShares(limit: limit).map { TenantWaits(tenant: $0.share, waited: $0.counters.waited, timedOut: $0.counters.timedOut) }
    }
}
