import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Request deadlines on one shared repeating timer. A request's handler runs in one child task
/// that registers itself here; when its deadline passes the timer cancels that task (its
/// database work with it). Waiting costs no timer, no continuation and no second task per
/// request: two short locked updates. Deadlines are kept to the tick (100 ms), plenty for
/// timeouts measured in seconds.
final class DeadlineTicker: Sendable {
    static let shared = DeadlineTicker()
    static let tick = Duration.milliseconds(100)

    /// What `run` ended with.
    enum Outcome<Value: Sendable>: Sendable {
        case finished(Value)
        /// The deadline passed and the operation then failed (it was cancelled).
        case timedOut
    }

    /// Valid until the waiting task unregisters, which it cannot do while the timer is
    /// cancelling it (see `firing`); cancelling a task from another thread is safe.
    private struct Waiter: @unchecked Sendable {
        let deadline: ContinuousClock.Instant
        let task: UnsafeCurrentTask
    }

    private struct State {
        var nextID: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
        /// Being cancelled by the timer right now, outside the lock.
        var firing: Set<UInt64> = []
        /// Cancelled because their deadline passed.
        var fired: Set<UInt64> = []
    }

    private let state = Mutex(State())
    // Kept only so the source lives as long as the ticker; never touched after init.
    private nonisolated(unsafe) let timer: any DispatchSourceTimer

    private init() {
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "atrium.deadlines"))
        self.timer = timer
        timer.schedule(deadline: .now() + .milliseconds(100), repeating: .milliseconds(100), leeway: .milliseconds(20))
        timer.setEventHandler { [weak self] in self?.fire() }
        timer.resume()
    }

    /// Runs `operation` in a child task that is cancelled when `deadline` passes. An operation
    /// that completes is `.finished` even when the deadline passed meanwhile (its work is done:
    /// a committed write is answered as committed); one that fails after its deadline is
    /// `.timedOut`; any other failure is rethrown.
    func run<Value: Sendable>(until deadline: ContinuousClock.Instant, _ operation: @escaping @Sendable () async throws -> Value) async throws -> Outcome<Value> {
        try await withThrowingTaskGroup(of: Outcome<Value>.self) { group in
            group.addTask {
                let id = withUnsafeCurrentTask { task in self.register(task!, deadline: deadline) }
                do {
                    let value = try await operation()
                    _ = self.unregister(id)
                    return .finished(value)
                } catch {
                    if self.unregister(id) { return .timedOut }
                    throw error
                }
            }
            return try await group.next()!
        }
    }

    private func register(_ task: UnsafeCurrentTask, deadline: ContinuousClock.Instant) -> UInt64 {
        let waiter = Waiter(deadline: deadline, task: task)
        return self.state.withLock { state in
            state.nextID &+= 1
            state.waiters[state.nextID] = waiter
            return state.nextID
        }
    }

    /// Ends a registration before its task finishes: true when the deadline had fired. Waits
    /// for the timer to finish cancelling the task, so it never touches a finished task.
    private func unregister(_ id: UInt64) -> Bool {
        while true {
            let answer: Bool? = self.state.withLock { state in
                if state.waiters.removeValue(forKey: id) != nil { return false }
                if state.fired.remove(id) != nil { return true }
                return state.firing.contains(id) ? nil : false
            }
            if let answer { return answer }
            sched_yield()
        }
    }

    private func fire() {
        let now = ContinuousClock.now
        let due = self.state.withLock { state -> [(UInt64, Waiter)] in
            guard !state.waiters.isEmpty else { return [] }
            var due: [(UInt64, Waiter)] = []
            for (id, waiter) in state.waiters where waiter.deadline <= now {
                due.append((id, waiter))
                state.waiters[id] = nil
                state.firing.insert(id)
            }
            return due
        }
        guard !due.isEmpty else { return }
        // Outside the lock: cancelling runs the task's cancellation handlers (a database query
        // being cancelled), which must not hold up registrations.
        for (_, waiter) in due { waiter.task.cancel() }
        self.state.withLock { state in
            for (id, _) in due {
                state.firing.remove(id)
                state.fired.insert(id)
            }
        }
    }
}
