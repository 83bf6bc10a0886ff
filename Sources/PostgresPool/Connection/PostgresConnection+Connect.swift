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
    /// Establishes the connection with `PQconnectStartParams`/`PQconnectPoll`, never blocking.
    func open() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            self.queue.async {
                self.startConnecting { result in
                    continuation.resume(with: result.mapError { $0 })
                }
            }
        }
    }

    /// Starts connecting; `completion` runs on the connection's queue. Call on the queue.
    func startConnecting(_ completion: @escaping (Result<Void, PostgresError>) -> Void) {
        let pairs = self.configuration.keywordValues
        let pg = withCStringArray(pairs.map(\.0)) { keywords in
            withCStringArray(pairs.map(\.1)) { values in
                PQconnectStartParams(keywords, values, 1)
            }
        }
        guard let pg else {
            let error = PostgresError(code: .connectionFailed, message: "libpq could not allocate a connection")
            self.state = .closed(error)
            completion(.failure(error))
            return
        }
        self.pg = pg
        PQsetNoticeReceiver(pg, { argument, result in
            guard let argument, let result else { return }
            let connection = Unmanaged<PostgresConnection>.fromOpaque(argument).takeUnretainedValue()
            let message = PQresultErrorMessage(result).map { String(cString: $0) } ?? ""
            connection.logger.debug("postgres notice", metadata: ["db.notice": "\(message.trimmingTrailingNewlines())"])
        }, Unmanaged.passUnretained(self).toOpaque())

        let timeout = DispatchWorkItem { [weak self] in
            self?.failConnecting("timed out after \(self?.configuration.connectTimeout ?? .zero)")
        }
        self.state = .connecting(ConnectAttempt(completion: completion, timeout: timeout))
        if PQstatus(pg) == CONNECTION_BAD {
            self.failConnecting(self.libpqErrorMessage)
            return
        }
        self.queue.asyncAfter(
            deadline: .now() + .nanoseconds(Int(min(self.configuration.connectTimeout.nanoseconds, UInt64(Int.max)))),
            execute: timeout
        )
        // libpq: before the first PQconnectPoll, behave as if it had asked to wait for writing.
        self.waitForConnect(PGRES_POLLING_WRITING)
    }

    private func waitForConnect(_ poll: PostgresPollingStatusType) {
        guard let pg else { return }
        let descriptor = PQsocket(pg)
        guard descriptor >= 0 else {
            self.failConnecting(self.libpqErrorMessage)
            return
        }
        // libpq may have moved to a new socket (next host, SSL fallback); watch the current one.
        if let socket = self.socket, !Self.sameSocket(socket.descriptor, descriptor) {
            socket.cancel()
            self.socket = nil
        }
        if self.socket == nil {
            self.socket = SocketSource(
                libpqSocket: descriptor,
                queue: self.queue,
                // Weak: the poller may have picked up an event just before the connection was
                // torn down and freed (connections are dropped whenever they fail).
                onReadable: { [weak self] available in self?.handleReadable(available: available) },
                onWritable: { [weak self] in self?.handleWritable() }
            )
            guard self.socket != nil else {
                self.failConnecting("could not watch the socket (dup failed, errno \(errno))")
                return
            }
        }
        let reading = poll == PGRES_POLLING_READING
        self.socket?.setReading(reading)
        self.socket?.setWriting(!reading)
    }

    /// A readiness event while connecting: let libpq take its next step.
    func continueConnecting() {
        guard let pg else { return }
        switch PQconnectPoll(pg) {
        case PGRES_POLLING_OK:
            self.finishConnecting()
        case PGRES_POLLING_READING:
            // Sockets are watched edge-triggered: if input is already waiting, no event will
            // announce it, so take the next step now.
            if Self.hasPendingInput(PQsocket(pg)) {
                self.queue.async { self.continueConnecting() }
                return
            }
            self.waitForConnect(PGRES_POLLING_READING)
        case PGRES_POLLING_WRITING:
            self.waitForConnect(PGRES_POLLING_WRITING)
        default:
            self.failConnecting(self.libpqErrorMessage)
        }
    }

    private func finishConnecting() {
        guard case .connecting(let attempt) = self.state, let pg else { return }
        guard PQsetnonblocking(pg, 1) == 0, PQenterPipelineMode(pg) == 1 else {
            self.failConnecting("could not enter nonblocking pipeline mode: \(self.libpqErrorMessage)")
            return
        }
        attempt.timeout.cancel()
        self.socket?.setWriting(false)
        self.socket?.setReading(true)
        self.state = .idle
        self.logger.debug("postgres connection established", metadata: [
            "db.backend.pid": "\(PQbackendPID(pg))"
        ])
        attempt.completion(.success(()))
    }

    private func failConnecting(_ message: String) {
        guard case .connecting(let attempt) = self.state else { return }
        attempt.timeout.cancel()
        let error = PostgresError(code: .connectionFailed, message: "could not connect to PostgreSQL: \(message)")
        self.state = .closed(error)
        self.tearDown()
        attempt.completion(.failure(error))
    }

    /// Whether the socket holds unread data or has reached its end.
    static func hasPendingInput(_ descriptor: Int32) -> Bool {
        guard descriptor >= 0 else { return false }
        var byte: UInt8 = 0
        let peeked = recv(descriptor, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        return peeked >= 0
    }

    /// Whether two descriptors refer to the same open socket.
    static func sameSocket(_ a: Int32, _ b: Int32) -> Bool {
        var statA = stat()
        var statB = stat()
        guard fstat(a, &statA) == 0, fstat(b, &statB) == 0 else { return false }
        return statA.st_dev == statB.st_dev && statA.st_ino == statB.st_ino
    }

    var libpqErrorMessage: String {
        guard let pg, let message = PQerrorMessage(pg) else { return "unknown libpq error" }
        return String(cString: message).trimmingTrailingNewlines()
    }
}

extension String {
    func trimmingTrailingNewlines() -> String {
        var text = Substring(self)
        while let last = text.last, last == "\n" || last == " " {
            text = text.dropLast()
        }
        return String(text)
    }
}

/// Calls `body` with a NULL-terminated array of C strings.
func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { pointers.forEach { free($0) } }
    return pointers.withUnsafeBufferPointer { buffer in
        buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) { body($0) }
    }
}
