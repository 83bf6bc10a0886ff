import Dispatch
import Synchronization

/// Request deadlines on one shared repeating timer. A `Task.sleep` per request would create and
/// cancel a dispatch timer for every request; here waiting costs two short locked updates, and
/// deadlines are kept to the tick (100 ms), plenty for timeouts measured in seconds.
final class DeadlineTicker: Sendable {
    static let shared = DeadlineTicker()
    static let tick = Duration.milliseconds(100)

    private struct Waiter {
        let deadline: ContinuousClock.Instant
        let continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var nextID: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
        /// Waits cancelled before their continuation was registered.
        var cancelledEarly: Set<UInt64> = []
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

    /// Waits until `deadline`: true when it passed, false when the task was cancelled first.
    func wait(until deadline: ContinuousClock.Instant) async -> Bool {
        let id = self.state.withLock { state in
            state.nextID &+= 1
            return state.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let cancelled = self.state.withLock { state in
                    if state.cancelledEarly.remove(id) != nil { return true }
                    state.waiters[id] = Waiter(deadline: deadline, continuation: continuation)
                    return false
                }
                if cancelled { continuation.resume(returning: false) }
            }
        } onCancel: {
            let waiter = self.state.withLock { state in
                if let waiter = state.waiters.removeValue(forKey: id) { return Optional(waiter) }
                state.cancelledEarly.insert(id)
                return nil
            }
            waiter?.continuation.resume(returning: false)
        }
    }

    private func fire() {
        let now = ContinuousClock.now
        let due = self.state.withLock { state -> [Waiter] in
            guard !state.waiters.isEmpty else { return [] }
            var due: [Waiter] = []
            for (id, waiter) in state.waiters where waiter.deadline <= now {
                due.append(waiter)
                state.waiters[id] = nil
            }
            return due
        }
        for waiter in due { waiter.continuation.resume(returning: true) }
    }
}
