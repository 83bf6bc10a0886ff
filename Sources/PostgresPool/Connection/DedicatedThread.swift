#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A thread of the pool's own, outside Dispatch's and Swift concurrency's pools, for work that
/// waits in the kernel (epoll, a blocking cancel request). Lives as long as the process.
enum DedicatedThread {
    static func start(name: String, _ body: @escaping @Sendable () -> Void) {
        final class Box: @unchecked Sendable {
            let name: String
            let body: @Sendable () -> Void
            init(name: String, body: @escaping @Sendable () -> Void) {
                self.name = name
                self.body = body
            }
        }
        #if os(Linux)
        var thread = pthread_t()
        #else
        var thread: pthread_t?
        #endif
        let box = Unmanaged.passRetained(Box(name: name, body: body)).toOpaque()
        let created = pthread_create(&thread, nil, { argument in
            let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
            #if os(Linux)
            // Named for top and perf (what pthread_setname_np does, which Glibc's module lacks).
            let comm = open("/proc/thread-self/comm", O_WRONLY)
            if comm >= 0 {
                _ = box.name.withCString { write(comm, $0, strlen($0)) }
                close(comm)
            }
            #endif
            box.body()
            return nil
        }, box)
        precondition(created == 0, "could not start thread \(name) (\(created))")
        #if os(Linux)
        pthread_detach(thread)
        #else
        pthread_detach(thread!)
        #endif
    }
}
