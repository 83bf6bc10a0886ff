import Dispatch
import Foundation
import Logging
extension ConnectionPool {
    /// Runs `batch` on the next free connection in one round trip.
    ///
    /// `share` names whose work it is (a tenant): while callers wait, shares take turns for
    /// the connections that come free, and none gets more than half of them while another
    /// waits. Cancelling the calling task, or its `QueryDeadline` passing, removes the request
    /// from the queue, or answers it at once and cancels the running statement on the server.
    public func execute(_ batch: PipelineBatch, share: UUID? = nil) async throws -> [PostgresRows] {
        let id = PostgresConnection.nextRequestID()
        return try await withCancellation({ self.cancel(requestID: id) }) {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<[PostgresRows], any Error>) in
                self.enqueue(.batch(id: id, share: share, batch, continuation))
            }
        }
    }

    /// Runs one statement (in its own implicit transaction).
    public func query(_ query: PostgresQuery) async throws -> PostgresRows {
        try await self.execute(PipelineBatch(statements: [query]))[0]
    }

    /// Runs `BEGIN; prelude…; statements…; COMMIT` in one round trip and returns the statements' rows.
    ///
    /// If a statement fails, nothing is committed and the error is that statement's.
    public func transaction(_ statements: [PostgresQuery], prelude: [PostgresQuery] = [], share: UUID? = nil) async throws -> [PostgresRows] {
        try await self.execute(PipelineBatch(statements: statements, prelude: prelude, transaction: true), share: share)
    }

    /// Borrows a connection for work that cannot be expressed as one batch.
    ///
    /// The connection returns to the pool when `body` ends; a transaction left open is rolled back.
    @discardableResult
    public func withConnection<Result>(
        share: UUID? = nil,
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let connection = try await self.lease(share: share)
        do {
            let result = try await body(connection)
            self.release(connection)
            return result
        } catch {
            self.release(connection)
            throw error
        }
    }

    /// Runs an interactive transaction: each `query` on the transaction is one round trip, and
    /// `BEGIN` plus `prelude` travel with the first of them.
    ///
    /// Commits when `body` returns, rolls back when it throws.
    @discardableResult
    public func withTransaction<Result>(
        prelude: [PostgresQuery] = [],
        share: UUID? = nil,
        _ body: (PostgresTransaction) async throws -> Result
    ) async throws -> Result {
        try await self.withConnection(share: share) { connection in
            let transaction = PostgresTransaction(connection: connection, prelude: prelude)
            let result = try await body(transaction)
            try await transaction.commit()
            return result
        }
    }

    private func lease(share: UUID?) async throws -> PostgresConnection {
        let id = PostgresConnection.nextRequestID()
        return try await withCancellation({ self.cancel(requestID: id) }) {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<PostgresConnection, any Error>) in
                self.enqueue(.lease(id: id, share: share, continuation))
            }
        }
    }
}

/// A transaction in progress on a borrowed connection; use it from one task only.
public final class PostgresTransaction: @unchecked Sendable {
    /// The connection the transaction runs on.
    public let connection: PostgresConnection
    private let prelude: [PostgresQuery]
    private var begun = false
    private var finished = false

    init(connection: PostgresConnection, prelude: [PostgresQuery]) {
        self.connection = connection
        self.prelude = prelude
    }

    /// Runs one statement inside the transaction.
    public func query(_ query: PostgresQuery) async throws -> PostgresRows {
        try await self.execute([query])[0]
    }

    /// Runs several statements inside the transaction in one round trip.
    public func execute(_ statements: [PostgresQuery]) async throws -> [PostgresRows] {
        precondition(!self.finished, "the transaction has already ended")
        var batch = PipelineBatch(statements: statements)
        if !self.begun {
            batch.prelude = [Self.begin] + self.prelude
            self.begun = true
        }
        return try await self.connection.execute(batch)
    }

    /// Runs the transaction's last statements and commits in the same round trip. A failed
    /// statement skips the rest, COMMIT included, and the transaction is rolled back.
    public func executeAndCommit(_ statements: [PostgresQuery]) async throws -> [PostgresRows] {
        precondition(!self.finished, "the transaction has already ended")
        var batch = PipelineBatch(statements: statements + [Self.commit])
        if !self.begun {
            batch.prelude = [Self.begin] + self.prelude
            self.begun = true
        }
        let results = try await self.connection.execute(batch)
        self.finished = true
        return Array(results.dropLast())
    }

    func commit() async throws {
        guard self.begun, !self.finished else { return }
        self.finished = true
        _ = try await self.connection.execute(PipelineBatch(statements: [Self.commit]))
    }

    private static let begin: PostgresQuery = "BEGIN"
    private static let commit: PostgresQuery = "COMMIT"
}
