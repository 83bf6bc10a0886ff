import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A client on a plain blocking socket with a small receive buffer: it reads only when told,
/// so a server writing to it soon has to wait — a client that has stopped reading. Its
/// blocking calls run on a queue of its own, never on the threads the server in this process
/// needs.
final class SlowReader: @unchecked Sendable {
    private let descriptor: Int32
    private let queue = DispatchQueue(label: "slow-reader")

    init(port: Int, receiveBuffer: Int32 = 4096) throws {
        self.descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard self.descriptor >= 0 else { throw TestFailure("socket() failed") }
        var size = receiveBuffer
        setsockopt(self.descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(self.descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(self.descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else {
            close(self.descriptor)
            throw TestFailure("could not connect to port \(port)")
        }
    }

    deinit {
        close(self.descriptor)
    }

    func send(_ text: String) {
        var bytes = Array(text.utf8)
        _ = Glibc.send(self.descriptor, &bytes, bytes.count, Int32(MSG_NOSIGNAL))
    }

    /// Reads up to `count` bytes; empty at the end of the stream (or a reset).
    func read(_ count: Int = 65536) async -> [UInt8] {
        await self.blocking { self.receive(count) }
    }

    /// Reads until the server closes; returns everything.
    func readToEnd() async -> [UInt8] {
        await self.blocking {
            var all: [UInt8] = []
            while true {
                let chunk = self.receive(65536)
                if chunk.isEmpty { return all }
                all += chunk
            }
        }
    }

    private func receive(_ count: Int) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        let received = recv(self.descriptor, &buffer, count, 0)
        return received > 0 ? Array(buffer[0..<received]) : []
    }

    private func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            self.queue.async { continuation.resume(returning: body()) }
        }
    }
}
