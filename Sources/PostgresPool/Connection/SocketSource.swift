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
/// Both watch `dup()`s of libpq's descriptor: libpq may close its own (PQfinish, or switching
/// sockets during connect) whenever it likes, while a watched descriptor must stay open until
/// it is no longer watched. Readability comes from the process's `ReadPoller` on Linux (its
/// thread runs the handler itself) and from a Dispatch source elsewhere; writability, needed
/// only while the socket's send buffer is full, from a Dispatch source. The write duplicate is
/// closed in the source's cancel handler, the one place Dispatch allows.
final class SocketSource {
    /// A duplicate of the watched socket (to compare with libpq's current one).
    let descriptor: Int32
    private let reader: Reader
    private let write: any DispatchSourceWrite
    private var readActive = false
    private var writeActive = false
    private var cancelled = false

    /// `onReadable` gets a hint of the bytes waiting; 0 means end of stream (or nothing).
    init?(libpqSocket: Int32, queue: DispatchQueue, onReadable: @escaping (UInt) -> Void, onWritable: @escaping () -> Void) {
        let writeDescriptor = dup(libpqSocket)
        guard writeDescriptor >= 0 else { return nil }
        guard let reader = Reader(libpqSocket: libpqSocket, queue: queue, onReadable: onReadable) else {
            close(writeDescriptor)
            return nil
        }
        self.descriptor = writeDescriptor
        self.reader = reader
        self.write = DispatchSource.makeWriteSource(fileDescriptor: writeDescriptor, queue: queue)
        self.write.setEventHandler(handler: onWritable)
        self.write.setCancelHandler { close(writeDescriptor) }
    }

    func setReading(_ on: Bool) {
        guard !self.cancelled, on != self.readActive else { return }
        self.readActive = on
        self.reader.setReading(on)
    }

    func setWriting(_ on: Bool) {
        guard !self.cancelled, on != self.writeActive else { return }
        self.writeActive = on
        if on { self.write.resume() } else { self.write.suspend() }
    }

    /// Stops both; safe to call more than once.
    func cancel() {
        guard !self.cancelled else { return }
        // A suspended source never runs its cancel handler, and releasing one is an error.
        self.setWriting(true)
        self.cancelled = true
        self.reader.cancel()
        self.write.cancel()
    }

    deinit {
        self.cancel()
    }
}

#if os(Linux)
extension SocketSource {
    /// Readability through the shared poller; the handler runs on the poller's thread inside
    /// `queue.sync`, so it is on the connection's queue like everything else.
    final class Reader {
        private let descriptor: Int32
        private let id: UInt64

        init?(libpqSocket: Int32, queue: DispatchQueue, onReadable: @escaping (UInt) -> Void) {
            let descriptor = dup(libpqSocket)
            guard descriptor >= 0 else { return nil }
            let handler = UnsafeSendable(onReadable)
            guard let id = ReadPoller.shared.register(descriptor, handler: { available in
                queue.sync { handler.value(available) }
            }) else {
                close(descriptor)
                return nil
            }
            self.descriptor = descriptor
            self.id = id
        }

        func setReading(_ on: Bool) {
            ReadPoller.shared.setReading(self.id, self.descriptor, on)
        }

        func cancel() {
            ReadPoller.shared.unregister(self.id, self.descriptor)
            close(self.descriptor)
        }
    }
}
#else
extension SocketSource {
    /// Readability through a Dispatch source.
    final class Reader {
        private let source: any DispatchSourceRead
        private var active = false

        init?(libpqSocket: Int32, queue: DispatchQueue, onReadable: @escaping (UInt) -> Void) {
            let descriptor = dup(libpqSocket)
            guard descriptor >= 0 else { return nil }
            let source = DispatchSource.makeReadSource(fileDescriptor: descriptor, queue: queue)
            source.setEventHandler { onReadable(source.data) }
            source.setCancelHandler { close(descriptor) }
            self.source = source
        }

        func setReading(_ on: Bool) {
            self.active = on
            if on { self.source.resume() } else { self.source.suspend() }
        }

        func cancel() {
            if !self.active { self.source.resume() }
            self.source.cancel()
        }
    }
}
#endif
