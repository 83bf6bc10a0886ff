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
    func handleReadable(available: UInt) {
        switch self.state {
        case .initial, .closed:
            return
        case .connecting:
            self.continueConnecting()
        case .idle, .busy, .settling:
            guard let pg else { return }
            self.lastProgress = DispatchTime.now().uptimeNanoseconds
            guard self.consumeInput(pg, available: available) else {
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

    /// Reads what the socket holds.
    ///
    /// Dispatch re-arms a read source after each event, so data left unread is reported again,
    /// except after a hang-up: then the source is removed for good and `available` is 0. In that
    /// case keep reading until libpq sees the end of the stream (and reports the connection
    /// lost), or a FATAL message that came with the hang-up would be the last thing ever read.
    private func consumeInput(_ pg: OpaquePointer, available: UInt) -> Bool {
        guard PQconsumeInput(pg) == 1 else { return false }
        guard available == 0 else { return true }
        let descriptor = PQsocket(pg)
        while true {
            var byte: UInt8 = 0
            let peeked = recv(descriptor, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
            if peeked < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                return true
            }
            // Data, end of stream or a socket error: let libpq read it and report it.
            guard PQconsumeInput(pg) == 1 else { return false }
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
        if case .busy(let round) = previous {
            // Sent batches may or may not have run; they cannot be retried blindly.
            while let inFlight = round.inFlight {
                round.current += 1
                inFlight.complete(.failed(error))
            }
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

    /// The caller of `requestID` gave up (its task was cancelled, usually by a deadline).
    ///
    /// It is answered `cancelled` at once, whatever PostgreSQL is doing. If the batch is the one
    /// running, the server is asked to cancel it, from the cancel threads (`PQcancel` blocks).
    /// Only the last batch of a round can be cancelled that way — a cancel aimed at an earlier
    /// one could land on the batch after it — and until the cancel request is done the
    /// connection takes no new work, so a late cancel finds the backend idle (where PostgreSQL
    /// ignores it). If the round has not finished `cancelGracePeriod` later — PostgreSQL
    /// frozen, or the network silent — the connection is closed and the pool opens another:
    /// a connection waiting for a reply that may never come is never handed out again.
    func cancelRequest(_ requestID: Int) {
        self.queue.async {
            guard case .busy(let round) = self.state,
                  let index = round.batches.indices.first(where: { $0 >= round.current && round.batches[$0].requestID == requestID })
            else { return }
            let inFlight = round.batches[index]
            guard !inFlight.isComplete else { return }
            self.logger.debug("request given up while PostgreSQL works on it", metadata: ["db.request.id": "\(requestID)"])
            inFlight.cancelRequested = true
            inFlight.complete(.failed(.cancelled))
            if index == round.current, index == round.batches.count - 1 {
                self.sendCancel()
            }
            self.abandonUnlessFinished(requestID)
        }
    }

    private func sendCancel() {
        guard let pg = self.pg, let handle = PQgetCancel(pg) else { return }
        self.cancelsInFlight += 1
        let deadline = DispatchTime.now().uptimeNanoseconds + self.configuration.cancelGracePeriod.nanoseconds
        CancelRequests.shared.submit(handle, deadline: deadline) {
            self.queue.async {
                self.cancelsInFlight -= 1
                if self.cancelsInFlight == 0, case .settling = self.state {
                    self.state = .idle
                    self.settle()
                }
            }
        }
    }

    /// Closes the connection if the round holding `requestID` (ids are unique in the process)
    /// is still running when the grace period is over.
    private func abandonUnlessFinished(_ requestID: Int) {
        let grace = self.configuration.cancelGracePeriod
        self.queue.asyncAfter(deadline: .now() + .nanoseconds(Int(grace.nanoseconds))) {
            guard case .busy(let round) = self.state, round.batches.contains(where: { $0.requestID == requestID }) else { return }
            self.fail(.connectionClosed("PostgreSQL did not answer within \(grace) of a cancelled request; the connection was abandoned"))
        }
    }

    /// Closes the connection if it has been waiting for PostgreSQL for more than `limit`
    /// nanoseconds without hearing a byte: with `statement_timeout` set, a server that is
    /// alive always answers sooner. For work nobody waits on with a deadline of its own.
    func checkForSilence(now: UInt64, limit: UInt64) {
        self.queue.async {
            guard case .busy = self.state, now > self.lastProgress, now - self.lastProgress > limit else { return }
            self.fail(.connectionClosed("no reply from PostgreSQL for \(limit / 1_000_000_000) s; the connection was abandoned"))
        }
    }
}

/// Carries a value the compiler cannot prove Sendable across a queue hop we know is safe.
struct UnsafeSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
