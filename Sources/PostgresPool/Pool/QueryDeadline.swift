import Dispatch
import Synchronization

/// A time by which the database work of a task must be done: set it for a task (an HTTP request)
/// with `QueryDeadline.$current.withValue(…)`, and every statement the task runs through a pool
/// or a borrowed connection after that is given up — taken out of the queue, or answered at
/// once and cancelled on the server — when the time passes; one started later fails at once.
/// Either fails with `PostgresError.cancelled`, as if the task had been cancelled.
///
/// Unlike cancelling a task, this needs no task of its own: an HTTP request runs in the task
/// that reads its connection, and a child task per request only to be able to cancel it cost
/// 7 µs of the 48 of a `/healthz`. Other waits can be guarded by the same deadline
/// (`guarding`). All deadlines share one repeating timer, so they are kept to its tick
/// (100 ms), plenty for timeouts measured in seconds.
public final class QueryDeadline: Sendable {
    @TaskLocal public static var current: QueryDeadline?

    public let instant: ContinuousClock.Instant
    private let fired = Atomic<Bool>(false)

    public init(_ instant: ContinuousClock.Instant) {
        self.instant = instant
    }

    /// Whether database work was given up because of this deadline.
    public var hasFired: Bool {
        self.fired.load(ordering: .acquiring)
    }

    /// Runs `operation`, calling `giveUp` (on the timer's thread) if the deadline passes before
    /// it ends; throws `PostgresError.cancelled` at once if it has passed already. The pool
    /// guards each of its requests this way; a server can guard other waits of a request, such as
    /// reading its body, with the same deadline.
    public func guarding<Result>(
        giveUp: @escaping @Sendable () -> Void,
        isolation: isolated (any Actor)? = #isolation,
        _ operation: () async throws -> Result
    ) async throws -> Result {
        guard ContinuousClock.now < self.instant else {
            self.markFired()
            throw PostgresError.cancelled
        }
        let id = DeadlineTimer.shared.register(self, giveUp)
        defer { DeadlineTimer.shared.unregister(id) }
        return try await operation()
    }

    func markFired() {
        self.fired.store(true, ordering: .releasing)
    }
}

/// The one timer behind every `QueryDeadline`. Registering and unregistering are short locked
/// updates; cancelling runs outside the lock. A cancel can race with the request finishing —
/// the pool's cancellation by request id does nothing for a request that is done.
final class DeadlineTimer: Sendable {
    static let shared = DeadlineTimer()

    private struct Entry {
        let deadline: QueryDeadline
        let cancel: @Sendable () -> Void
    }

    private struct State {
        var nextID: UInt64 = 0
        var entries: [UInt64: Entry] = [:]
    }

    private let state = Mutex(State())
    // Kept only so the source lives as long as the timer; never touched after init.
    private nonisolated(unsafe) let timer: any DispatchSourceTimer

    private init() {
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "postgres.deadlines"))
        self.timer = timer
        timer.schedule(deadline: .now() + .milliseconds(100), repeating: .milliseconds(100), leeway: .milliseconds(20))
        timer.setEventHandler { [weak self] in self?.fire() }
        timer.resume()
    }

    func register(_ deadline: QueryDeadline, _ cancel: @escaping @Sendable () -> Void) -> UInt64 {
        let entry = Entry(deadline: deadline, cancel: cancel)
        return self.state.withLock { state in
            state.nextID &+= 1
            state.entries[state.nextID] = entry
            return state.nextID
        }
    }

    func unregister(_ id: UInt64) {
        _ = self.state.withLock { $0.entries.removeValue(forKey: id) }
    }

    private func fire() {
        let now = ContinuousClock.now
        let due = self.state.withLock { state -> [Entry] in
            guard !state.entries.isEmpty else { return [] }
            var due: [Entry] = []
            for (id, entry) in state.entries where entry.deadline.instant <= now {
                due.append(entry)
                state.entries[id] = nil
            }
            return due
        }
        for entry in due {
            entry.deadline.markFired()
            entry.cancel()
        }
    }
}

/// Runs `operation`, one request of the pool or of a connection, calling `cancel` when the task
/// is cancelled or its `QueryDeadline` passes first.
func withCancellation<Result>(
    _ cancel: @escaping @Sendable () -> Void,
    isolation: isolated (any Actor)? = #isolation,
    _ operation: () async throws -> Result
) async throws -> Result {
    guard let deadline = QueryDeadline.current else {
        return try await withTaskCancellationHandler(operation: operation, onCancel: cancel)
    }
    return try await deadline.guarding(giveUp: cancel) {
        try await withTaskCancellationHandler(operation: operation, onCancel: cancel)
    }
}
