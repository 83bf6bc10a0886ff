import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The exit of a child process, reaped as soon as it happens: a thread of its own waits for
/// it, so a dead server never lingers as a zombie (which PostgreSQL would take for a live
/// postmaster and refuse to start beside), and anyone may await the exit status.
final class ProcessExit: Sendable {
    let pid: pid_t
    private let state = Mutex<(status: Int32?, waiters: [Int: CheckedContinuation<Int32?, Never>], next: Int)>((nil, [:], 0))

    init(pid: pid_t) {
        self.pid = pid
        // Blocking in waitpid: on a serial queue of its own, never on the threads Swift tasks
        // run on (Dispatch's global queues share those).
        DispatchQueue(label: "atrium.embedded-postgres.reaper.\(pid)").async {
            let status = ChildProcess(pid: pid).blockingWait()
            let waiters = self.state.withLock { state in
                state.status = status
                defer { state.waiters = [:] }
                return state.waiters
            }
            for waiter in waiters.values { waiter.resume(returning: status) }
        }
    }

    /// The exit status (the signal number + 128 for a process killed by a signal), if it exited.
    var status: Int32? {
        self.state.withLock { $0.status }
    }

    /// Waits for the exit and returns its status; nil if the calling task is cancelled first.
    func wait() async -> Int32? {
        let id = self.state.withLock { state in
            defer { state.next += 1 }
            return state.next
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let status = self.state.withLock { state -> Int32?? in
                    if let status = state.status { return .some(status) }
                    if Task.isCancelled { return .some(nil) }
                    state.waiters[id] = continuation
                    return .none
                }
                if let status { continuation.resume(returning: status) }
            }
        } onCancel: {
            self.state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: nil)
        }
    }
}
