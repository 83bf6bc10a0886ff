import DequeModule
import Dispatch
import Synchronization

/// Runs blocking, CPU- or memory-heavy work (scrypt) on a fixed number of threads of its own,
/// never on the Swift concurrency pool. Work beyond the permits waits in a short queue; beyond
/// that it is refused at once, so a flood turns into fast 503s instead of a stalled server.
public final class BoundedExecutor: Sendable {
    /// The executor is full: the caller should be told to retry later.
    public struct Overloaded: Error, Sendable {}

    private struct Job {
        let run: @Sendable () -> Void
    }

    private struct State {
        var freeWorkers: [Int]
        var waiting: Deque<Job> = []
        var running = 0
    }

    public let permits: Int
    public let queueLimit: Int
    private let workers: [DispatchQueue]
    private let state: Mutex<State>

    public init(label: String, permits: Int, queueLimit: Int) {
        self.permits = max(1, permits)
        self.queueLimit = max(0, queueLimit)
        // A serial queue per permit: each is at most one busy thread.
        self.workers = (0..<self.permits).map { DispatchQueue(label: "\(label).\($0)") }
        self.state = Mutex(State(freeWorkers: Array(0..<self.permits)))
    }

    /// Jobs running and waiting now (for metrics and health).
    public var depth: (running: Int, waiting: Int) {
        self.state.withLock { ($0.running, $0.waiting.count) }
    }

    /// Runs `work` on one of the executor's threads; throws `Overloaded` when the queue is full.
    public func run<Result: Sendable>(_ work: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, any Error>) in
            let job = Job {
                continuation.resume(with: Swift.Result { try work() })
            }
            let worker: Int?? = self.state.withLock { state in
                if let free = state.freeWorkers.popLast() {
                    state.running += 1
                    return .some(free)
                }
                guard state.waiting.count < self.queueLimit else { return nil }
                state.waiting.append(job)
                return .some(nil)
            }
            switch worker {
            case .none:
                continuation.resume(throwing: Overloaded())
            case .some(.none):
                break
            case .some(.some(let index)):
                self.start(job, on: index)
            }
        }
    }

    private func start(_ job: Job, on index: Int) {
        self.workers[index].async {
            job.run()
            let next = self.state.withLock { state -> Job? in
                if let next = state.waiting.popFirst() { return next }
                state.running -= 1
                state.freeWorkers.append(index)
                return nil
            }
            if let next { self.start(next, on: index) }
        }
    }
}
