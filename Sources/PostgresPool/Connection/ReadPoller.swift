import CLibPQ
import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

#if os(Linux)
/// One thread that waits (epoll) for PostgreSQL sockets to turn readable and runs each
/// connection's handler right there, on the connection's queue through `queue.sync`.
///
/// A Dispatch read source costs two thread wake-ups per reply: Dispatch's manager thread sees
/// the event and wakes a worker to run the handler. Here the thread that sees it runs it.
/// Handlers are short (libpq reads and parses what arrived, continuations are resumed), so one
/// thread serves every connection of the process.
final class ReadPoller: @unchecked Sendable {
    static let shared = ReadPoller()

    typealias Handler = @Sendable (_ available: UInt) -> Void

    private let epoll: Int32
    private let handlers = Mutex<[UInt64: Handler]>([:])
    private let nextID = Atomic<UInt64>(0)

    private init() {
        self.epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        precondition(self.epoll >= 0, "epoll_create1 failed (errno \(errno))")
        // The poller lives as long as the process.
        DedicatedThread.start(name: "atrium-pg-poll") { [unowned self] in
            self.run()
        }
    }

    /// Starts watching `descriptor` (not yet for reading); returns the id to refer to it by.
    /// `handler` gets a non-zero byte hint, or 0 after a hang-up or error (read to the end).
    func register(_ descriptor: Int32, handler: @escaping Handler) -> UInt64? {
        let id = self.nextID.add(1, ordering: .relaxed).newValue
        self.handlers.withLock { $0[id] = handler }
        var event = epoll_event(events: 0, data: epoll_data_t(u64: id))
        guard epoll_ctl(self.epoll, EPOLL_CTL_ADD, descriptor, &event) == 0 else {
            self.handlers.withLock { $0[id] = nil }
            return nil
        }
        return id
    }

    func setReading(_ id: UInt64, _ descriptor: Int32, _ on: Bool) {
        let flags = on ? EPOLLIN.rawValue | EPOLLRDHUP.rawValue : 0
        var event = epoll_event(events: flags, data: epoll_data_t(u64: id))
        _ = epoll_ctl(self.epoll, EPOLL_CTL_MOD, descriptor, &event)
    }

    /// Stops watching; an event already picked up for `id` finds no handler and is dropped.
    /// The caller may close `descriptor` as soon as this returns.
    func unregister(_ id: UInt64, _ descriptor: Int32) {
        var event = epoll_event()
        _ = epoll_ctl(self.epoll, EPOLL_CTL_DEL, descriptor, &event)
        self.handlers.withLock { $0[id] = nil }
    }

    private func run() -> Never {
        let capacity = 64
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        while true {
            let count = epoll_wait(self.epoll, events, Int32(capacity), -1)
            guard count > 0 else { continue }
            for index in 0..<Int(count) {
                let event = events[index]
                guard let handler = self.handlers.withLock({ $0[event.data.u64] }) else { continue }
                let closing = event.events & (EPOLLHUP.rawValue | EPOLLERR.rawValue | EPOLLRDHUP.rawValue) != 0
                handler(closing ? 0 : 1)
            }
        }
    }
}
#endif
