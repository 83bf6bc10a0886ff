import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Read and write readiness of one socket, delivered on a connection's queue.
///
/// The sources watch a `dup()` of libpq's descriptor: libpq may close its own (PQfinish, or
/// switching sockets during connect) whenever it likes, while Dispatch requires the watched
/// descriptor to stay open until its sources are cancelled. The duplicate is closed in the
/// cancel handler, the one place Dispatch allows.
final class SocketSource {
    let descriptor: Int32
    private let read: any DispatchSourceRead
    private let write: any DispatchSourceWrite
    private var readActive = false
    private var writeActive = false
    private var cancelled = false

    /// `onReadable` gets the byte count Dispatch saw waiting; 0 means end of stream (or nothing).
    init?(libpqSocket: Int32, queue: DispatchQueue, onReadable: @escaping (UInt) -> Void, onWritable: @escaping () -> Void) {
        let duplicate = dup(libpqSocket)
        guard duplicate >= 0 else { return nil }
        self.descriptor = duplicate
        self.read = DispatchSource.makeReadSource(fileDescriptor: duplicate, queue: queue)
        self.write = DispatchSource.makeWriteSource(fileDescriptor: duplicate, queue: queue)
        let read = self.read
        self.read.setEventHandler { onReadable(read.data) }
        self.write.setEventHandler(handler: onWritable)
        let pending = PendingCancels(count: 2, descriptor: duplicate)
        self.read.setCancelHandler { pending.finishOne() }
        self.write.setCancelHandler { pending.finishOne() }
    }

    func setReading(_ on: Bool) {
        guard !self.cancelled, on != self.readActive else { return }
        self.readActive = on
        if on { self.read.resume() } else { self.read.suspend() }
    }

    func setWriting(_ on: Bool) {
        guard !self.cancelled, on != self.writeActive else { return }
        self.writeActive = on
        if on { self.write.resume() } else { self.write.suspend() }
    }

    /// Stops both sources; safe to call more than once.
    func cancel() {
        guard !self.cancelled else { return }
        // A suspended source never runs its cancel handler, and releasing one is an error.
        self.setReading(true)
        self.setWriting(true)
        self.cancelled = true
        self.read.cancel()
        self.write.cancel()
    }

    deinit {
        self.cancel()
    }
}

/// Closes the duplicated descriptor once both sources have finished cancelling.
private final class PendingCancels: @unchecked Sendable {
    private var count: Int
    private let descriptor: Int32

    init(count: Int, descriptor: Int32) {
        self.count = count
        self.descriptor = descriptor
    }

    // Both cancel handlers run on the same serial queue, so no lock is needed.
    func finishOne() {
        self.count -= 1
        if self.count == 0 {
            close(self.descriptor)
        }
    }
}
