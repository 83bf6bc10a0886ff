/// Limits and timings of the feed.
public struct ChangeFeedConfiguration: Sendable {
    /// How long changes are kept for resuming (default 7 days).
    public var retention: Duration = .seconds(7 * 24 * 3600)
    /// Subscribers per server; beyond, a subscription is refused (503).
    public var maximumSubscribers = 2_000
    /// Subscribers per tenant on one server; beyond, refused (503).
    public var maximumSubscribersPerTenant = 200
    /// Live changes one subscriber may have waiting; beyond, it is disconnected.
    public var bufferCapacity = 1_000
    /// A comment is sent after this long without events.
    public var heartbeat: Duration = .seconds(15)
    /// Changes read per query.
    public var batchSize = 500
    /// How often old changes and unused tickets are pruned.
    public var pruneInterval: Duration = .seconds(60)
    /// How often the API keys behind streams are checked again (a revoked key ends its streams).
    public var keyCheckInterval: Duration = .seconds(15)
    /// While anyone subscribes, the log is read at least this often even without a NOTIFY (one
    /// that was never sent: its writer stopped between the commit and the announcement).
    public var rereadInterval: Duration = .seconds(5)

    public init() {}
}
