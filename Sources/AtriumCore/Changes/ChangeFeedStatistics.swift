import Synchronization

/// Counters for the metrics endpoint.
public final class ChangeFeedStatistics: Sendable {
    let delivered = Atomic<Int>(0)
    let dropped = Atomic<Int>(0)
    let read = Atomic<Int>(0)
    let lagMicroseconds = Atomic<Int>(0)

    /// Changes handed to subscribers.
    public var eventsDelivered: Int { self.delivered.load(ordering: .relaxed) }
    /// Subscribers disconnected for falling behind.
    public var slowConsumersDropped: Int { self.dropped.load(ordering: .relaxed) }
    /// Changes read from the log.
    public var changesRead: Int { self.read.load(ordering: .relaxed) }
    /// Seconds from the last dispatched change's transaction start to its dispatch.
    public var lagSeconds: Double { Double(self.lagMicroseconds.load(ordering: .relaxed)) / 1e6 }
}
