import CLibPQ
import Dispatch

/// A batch sent on a connection whose results are still coming back.
final class InFlight {
    /// What the next result from libpq belongs to.
    enum Expectation {
        /// The result of preparing `sql` under `name`.
        case prepare(sql: String, name: String)
        /// A statement whose result nobody wants (BEGIN, prelude, COMMIT).
        case discard
        /// Deallocating an evicted prepared statement.
        case deallocate(name: String)
        /// The caller's statement number `index`.
        case statement(index: Int)
        /// The pipeline sync that ends the batch.
        case sync
        /// Every result of a simple-protocol query, up to the terminating NULL.
        case simple
    }

    let requestID: Int
    /// Pool-owned work: roll back if needed and report idle to the pool when done.
    let returnsToPool: Bool
    let completion: (Result<[PostgresRows], PostgresError>) -> Void
    private(set) var expectations: [Expectation] = []
    private var nextIndex = 0
    var results: [PostgresRows]
    var error: PostgresError?
    var cancelRequested = false
    /// Sent with the simple query protocol (pipeline mode left for its duration).
    var simpleProtocol = false

    init(
        requestID: Int,
        statementCount: Int,
        returnsToPool: Bool,
        completion: @escaping (Result<[PostgresRows], PostgresError>) -> Void
    ) {
        self.requestID = requestID
        self.returnsToPool = returnsToPool
        self.completion = completion
        self.results = Array(repeating: PostgresRows(result: nil), count: statementCount)
    }

    func expect(_ expectation: Expectation) {
        self.expectations.append(expectation)
    }

    var next: Expectation? {
        self.nextIndex < self.expectations.count ? self.expectations[self.nextIndex] : nil
    }

    func advance() {
        self.nextIndex += 1
    }

    /// Keeps the first error: later ones are usually "skipped because of the earlier one".
    func record(_ error: PostgresError) {
        if self.error == nil {
            self.error = error
        }
    }

    var outcome: Result<[PostgresRows], PostgresError> {
        if var error = self.error {
            if self.cancelRequested, error.sqlState == PostgresError.SQLState.queryCanceled {
                error.code = .cancelled
            }
            return .failure(error)
        }
        return .success(self.results)
    }
}

/// An attempt to establish the connection.
struct ConnectAttempt {
    /// Called once on the connection's queue with the outcome.
    let completion: (Result<Void, PostgresError>) -> Void
    let timeout: DispatchWorkItem
}
