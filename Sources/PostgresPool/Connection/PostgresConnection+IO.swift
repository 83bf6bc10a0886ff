import Logging
import CLibPQ
import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension PostgresConnection {
    func handleReadable() {
        switch self.state {
        case .initial, .closed:
            return
        case .connecting:
            self.continueConnecting()
        case .idle, .busy, .settling:
            guard let pg else { return }
            guard self.consumeAvailableInput(pg) else {
                self.fail(.connectionClosed("connection to PostgreSQL lost: \(self.libpqErrorMessage)"))
                return
            }
            self.deliverNotifications()
            if PQstatus(pg) == CONNECTION_BAD {
                self.fail(.connectionClosed("connection to PostgreSQL lost: \(self.libpqErrorMessage)"))
                return
            }
            // libpq asks to retry a pending flush whenever the socket turns readable.
            if case .busy = self.state {
                self.flush()
                self.processResults()
            }
        }
    }

    /// Reads until the socket has nothing more to give.
    ///
    /// Dispatch watches sockets edge-triggered on Linux: if bytes (or the end of the stream)
    /// are left unread after a handler returns, no new event comes for them. `PQconsumeInput`
    /// reads one buffer's worth, so keep going while a peek still finds data or EOF.
    private func consumeAvailableInput(_ pg: OpaquePointer) -> Bool {
        let descriptor = PQsocket(pg)
        while true {
            guard PQconsumeInput(pg) == 1 else { return false }
            var byte: UInt8 = 0
            let peeked = recv(descriptor, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
            if peeked < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                return true
            }
            // Data, end of stream or a socket error: let libpq read it and report it.
        }
    }

    func handleWritable() {
        switch self.state {
        case .initial, .closed:
            return
        case .connecting:
            self.continueConnecting()
        case .idle, .busy, .settling:
            self.flush()
        }
    }

    /// Sends whatever libpq has buffered; waits for writability while the socket is full.
    func flush() {
        guard let pg else { return }
        switch PQflush(pg) {
        case 0:
            self.socket?.setWriting(false)
        case 1:
            self.socket?.setWriting(true)
        default:
            self.fail(.connectionClosed("could not send to PostgreSQL: \(self.libpqErrorMessage)"))
        }
    }

    private func deliverNotifications() {
        guard let pg else { return }
        while let notify = PQnotifies(pg) {
            let notification = PostgresNotification(
                channel: String(cString: notify.pointee.relname),
                payload: String(cString: notify.pointee.extra),
                processID: notify.pointee.be_pid
            )
            PQfreemem(notify)
            self.notificationHandler?(notification)
        }
    }

    /// Ends the connection for good: fails the request on it and tells the pool.
    func fail(_ error: PostgresError) {
        let previous = self.state
        switch previous {
        case .closed:
            return
        case .connecting(let attempt):
            attempt.timeout.cancel()
            self.state = .closed(error)
            self.tearDown()
            attempt.completion(.failure(error))
            return
        case .initial, .idle, .busy, .settling:
            break
        }
        self.state = .closed(error)
        self.tearDown()
        self.logger.debug("postgres connection closed", metadata: ["db.error": "\(error.message)"])
        switch previous {
        case .busy(let inFlight), .settling(.some(let inFlight)):
            inFlight.completion(.failure(error))
        default:
            break
        }
        let waiters = self.closeWaiters
        self.closeWaiters = []
        for waiter in waiters {
            waiter.resume(returning: error)
        }
        self.delegate?.connectionClosed(self, error: error)
    }

    func tearDown() {
        self.socket?.cancel()
        self.socket = nil
        if let pg {
            PQfinish(pg)
            self.pg = nil
        }
        self.statements.removeAll()
    }

    /// Closes the connection; a request still on it fails with `connectionClosed`.
    public func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            self.queue.async {
                self.fail(.connectionClosed("connection closed"))
                continuation.resume()
            }
        }
    }

    /// Closes the connection without waiting, e.g. from a cancellation handler.
    public func terminate() {
        self.queue.async {
            self.fail(.connectionClosed("connection closed"))
        }
    }

    /// Waits until the connection ends and returns why.
    public func closed() async -> PostgresError {
        await withCheckedContinuation { (continuation: CheckedContinuation<PostgresError, Never>) in
            self.queue.async {
                if case .closed(let error) = self.state {
                    continuation.resume(returning: error)
                } else {
                    self.closeWaiters.append(continuation)
                }
            }
        }
    }

    /// Asks the server to cancel `requestID` if it is still running on this connection.
    ///
    /// `PQcancel` opens its own connection and blocks, so it runs off this queue. Until it
    /// returns, the connection takes no new work: a cancel that arrives late must find the
    /// backend idle (where PostgreSQL ignores it), never running the next caller's statement.
    func cancelRequest(_ requestID: Int) {
        self.queue.async {
            guard case .busy(let inFlight) = self.state, inFlight.requestID == requestID,
                  !inFlight.cancelRequested, let pg = self.pg, let handle = PQgetCancel(pg)
            else { return }
            inFlight.cancelRequested = true
            self.cancelsInFlight += 1
            let sendable = UnsafeSendable(handle)
            DispatchQueue.global().async {
                var buffer = [CChar](repeating: 0, count: 256)
                _ = PQcancel(sendable.value, &buffer, Int32(buffer.count))
                PQfreeCancel(sendable.value)
                self.queue.async {
                    self.cancelsInFlight -= 1
                    if self.cancelsInFlight == 0, case .settling = self.state {
                        self.state = .idle
                        self.settle()
                    }
                }
            }
        }
    }
}

/// Carries a value the compiler cannot prove Sendable across a queue hop we know is safe.
struct UnsafeSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
