import Dispatch
import Logging
import CLibPQ

extension PostgresConnection {
    /// Runs `batch` in one round trip and returns one `PostgresRows` per statement.
    ///
    /// Cancelling the calling task, or its `QueryDeadline` passing, cancels the statement on the server.
    public func execute(_ batch: PipelineBatch) async throws -> [PostgresRows] {
        let requestID = Self.nextRequestID()
        return try await withCancellation({ self.cancelRequest(requestID) }) {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<[PostgresRows], any Error>) in
                self.performSoon {
                    let accepted = self.start(batch, requestID: requestID) { outcome in
                        continuation.resume(with: outcome.result)
                    }
                    if !accepted {
                        continuation.resume(throwing: self.closedError)
                    }
                }
            }
        }
    }

    /// Runs one statement.
    public func query(_ query: PostgresQuery) async throws -> PostgresRows {
        try await self.execute(PipelineBatch(statements: [query]))[0]
    }

    /// Runs SQL text that may hold several statements, without parameters (the simple query
    /// protocol). For migrations and administrative commands; use `query` for anything with values.
    @discardableResult
    public func simpleQuery(_ sql: String) async throws -> [PostgresRows] {
        let requestID = Self.nextRequestID()
        return try await withCancellation({ self.cancelRequest(requestID) }) {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<[PostgresRows], any Error>) in
                self.performSoon {
                    let accepted = self.startSimple(sql, requestID: requestID) { outcome in
                        continuation.resume(with: outcome.result)
                    }
                    if !accepted {
                        continuation.resume(throwing: self.closedError)
                    }
                }
            }
        }
    }

    /// Sets the handler for LISTEN/NOTIFY notifications arriving on this connection.
    public func onNotification(_ handler: @escaping @Sendable (PostgresNotification) -> Void) {
        self.queue.async {
            self.notificationHandler = handler
        }
    }

    /// The backend process id serving this connection (`pg_backend_pid()`), 0 once closed.
    public var backendProcessID: Int32 {
        self.queue.sync {
            self.pg.map { PQbackendPID($0) } ?? 0
        }
    }

    var closedError: PostgresError {
        if case .closed(let error) = self.state { return error }
        return .connectionClosed("connection closed")
    }
}

extension BatchOutcome {
    /// The outcome for a caller that sent the batch alone (where `notExecuted` cannot happen).
    var result: Result<[PostgresRows], any Error> {
        switch self {
        case .rows(let rows): .success(rows)
        case .failed(let error): .failure(error)
        case .notExecuted: .failure(PostgresError(code: .server, message: "the batch was refused: the session is in a failed transaction", sqlState: PostgresError.SQLState.inFailedTransaction))
        }
    }
}
