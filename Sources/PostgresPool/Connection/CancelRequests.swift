import CLibPQ
import DequeModule
import Dispatch
import Synchronization

/// Sends cancel requests to PostgreSQL on two threads of their own.
///
/// libpq 15's `PQcancel` opens a new connection to the server and blocks until the server
/// answers — against a frozen server (SIGSTOP, a silent network) until it thaws. Run on
/// Dispatch's global queues it blocked the very threads every request runs on; here it can
/// block only these two. Requests wait in a short queue and are dropped once their deadline
/// has passed (by then the connection they were for is abandoned anyway) or when the queue
/// is full. Either way `done` is called exactly once.
final class CancelRequests: Sendable {
    static let shared = CancelRequests(threads: 2, capacity: 64)

    struct Request: Sendable {
        let handle: UnsafeSendable<OpaquePointer>
        /// Uptime nanoseconds after which sending it is pointless.
        let deadline: UInt64
        let done: @Sendable () -> Void
    }

    private let queue = Mutex<Deque<Request>>([])
    private let available = DispatchSemaphore(value: 0)
    private let capacity: Int

    init(threads: Int, capacity: Int) {
        self.capacity = capacity
        for index in 0..<threads {
            DedicatedThread.start(name: "atrium-pg-cancel\(index)") { [self] in self.work() }
        }
    }

    /// Queues a cancel request for the backend behind `handle` (from `PQgetCancel`), which it
    /// then owns and frees.
    func submit(_ handle: OpaquePointer, deadline: UInt64, done: @escaping @Sendable () -> Void) {
        let request = Request(handle: UnsafeSendable(handle), deadline: deadline, done: done)
        let queued = self.queue.withLock { queue in
            guard queue.count < self.capacity else { return false }
            queue.append(request)
            return true
        }
        if queued {
            self.available.signal()
        } else {
            Self.finish(request, send: false)
        }
    }

    private func work() -> Never {
        while true {
            self.available.wait()
            guard let request = self.queue.withLock({ $0.popFirst() }) else { continue }
            Self.finish(request, send: DispatchTime.now().uptimeNanoseconds < request.deadline)
        }
    }

    private static func finish(_ request: Request, send: Bool) {
        if send {
            var buffer = [CChar](repeating: 0, count: 256)
            _ = PQcancel(request.handle.value, &buffer, Int32(buffer.count))
        }
        PQfreeCancel(request.handle.value)
        request.done()
    }
}
