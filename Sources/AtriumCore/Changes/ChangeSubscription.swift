import Foundation
import Synchronization

/// One subscriber's view of the change feed: first the changes it missed (read from the log),
/// then live ones, through a bounded buffer. A subscriber that falls more than `capacity`
/// changes behind is ended (`slowConsumer`) rather than buffered for without limit.
public final class ChangeSubscription: Sendable {
    public enum Item: Sendable {
        /// A change the subscriber may see.
        case change(Change)
        /// Where the stream starts when no resume position was given: a client that reconnects
        /// before any event arrives resumes from here.
        case position(Int64)
        /// The resume position is no longer in the log: reload, then follow from `position`.
        case reset(position: Int64, reason: ResetReason)
        /// Nothing happened for a while; keeps proxies from closing an idle connection.
        case heartbeat
    }

    public enum ResetReason: String, Sendable {
        /// Older than the change retention.
        case expired = "position_expired"
        /// Not an id this tenant was given (malformed, tampered with, or from before a key change).
        case unknown = "position_unknown"
    }

    public enum EndReason: String, Sendable {
        case slowConsumer = "slow_consumer"
        case sessionRevoked = "session_revoked"
        case keyRevoked = "key_revoked"
        case credentialExpired = "credential_expired"
        case shutdown = "shutdown"
        case disconnected = "disconnected"
    }

    public let principal: Principal
    let collections: Set<String>?
    let expiresAt: Date?
    let capacity: Int
    private let feed: ChangeFeed
    private let state: Mutex<State>

    struct State {
        var items: [Item] = []
        var bufferedChanges = 0
        /// Live changes at or below this position are skipped (the replay covers them, or the
        /// client has seen them on another server).
        var after: Int64
        /// Replay of the log still to read: (after, through].
        var replay: (after: Int64, through: Int64)?
        var ended: EndReason?
        var waiter: CheckedContinuation<Void, Never>?
        var lastActivity = ContinuousClock.now
    }

    init(
        feed: ChangeFeed, principal: Principal, collections: Set<String>?, expiresAt: Date?, capacity: Int,
        after: Int64, replay: (after: Int64, through: Int64)?, first: Item?
    ) {
        self.feed = feed
        self.principal = principal
        self.collections = collections
        self.expiresAt = expiresAt
        self.capacity = capacity
        var state = State(after: after)
        state.replay = replay
        if let first { state.items.append(first) }
        self.state = Mutex(state)
    }

    /// Whether the subscriber asked for changes of this collection.
    func wants(_ change: Change) -> Bool {
        self.collections?.contains(change.collection) ?? true
    }

    /// The next items, waiting for some; empty with a reason once the subscription has ended.
    /// The replay comes first, a page at a time.
    public func next() async throws -> (items: [Item], end: EndReason?) {
        while true {
            if let replay = self.state.withLock({ $0.ended == nil ? $0.replay : nil }) {
                let (changes, last, done) = try await self.feed.replayPage(for: self, after: replay.after, through: replay.through)
                self.state.withLock { $0.replay = done ? nil : (last, replay.through) }
                if !changes.isEmpty { return (changes.map(Item.change), nil) }
                continue
            }
            let taken: (items: [Item], end: EndReason?)? = self.state.withLock { state in
                guard !state.items.isEmpty || state.ended != nil else { return nil }
                defer {
                    state.items.removeAll(keepingCapacity: true)
                    state.bufferedChanges = 0
                    state.lastActivity = .now
                }
                return (state.items, state.ended)
            }
            if let taken { return taken }
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let resumeNow = self.state.withLock { state -> Bool in
                        guard state.items.isEmpty, state.ended == nil else { return true }
                        state.waiter = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                self.end(.disconnected)
            }
        }
    }

    enum Offer { case queued, skipped, ended }

    /// Offers a live change (the feed holds its lock).
    func offer(_ change: Change) -> Offer {
        let (waiter, outcome) = self.state.withLock { state -> (CheckedContinuation<Void, Never>?, Offer) in
            guard state.ended == nil else { return (nil, .ended) }
            guard change.position > state.after else { return (nil, .skipped) }
            state.after = change.position
            if state.bufferedChanges >= self.capacity {
                state.items.removeAll()
                state.bufferedChanges = 0
                state.ended = .slowConsumer
            } else {
                state.items.append(.change(change))
                state.bufferedChanges += 1
            }
            defer { state.waiter = nil }
            return (state.waiter, state.ended == nil ? .queued : .ended)
        }
        waiter?.resume()
        return outcome
    }

    /// Queues a heartbeat when nothing was handed out for `interval`.
    func heartbeat(ifIdleFor interval: Duration, now: ContinuousClock.Instant) {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.ended == nil, state.items.isEmpty, now - state.lastActivity >= interval else { return nil }
            state.items.append(.heartbeat)
            state.lastActivity = now
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Ends the subscription; the consumer gets what is buffered (unless it overflowed) and the reason.
    public func end(_ reason: EndReason) {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.ended == nil else { return nil }
            state.ended = reason
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
        self.feed.unsubscribe(self)
    }

    /// Why it ended, once it has.
    public var endReason: EndReason? {
        self.state.withLock { $0.ended }
    }
}
