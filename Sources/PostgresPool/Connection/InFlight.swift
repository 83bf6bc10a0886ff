import CLibPQ
import Dispatch

/// How a batch ended.
enum BatchOutcome {
    case rows([PostgresRows])
    case failed(PostgresError)
    /// An earlier batch of the same round failed, so PostgreSQL skipped this one (or refused
    /// its first statement in the failed transaction left behind) and ran none of it: it can
    /// be sent again.
    case notExecuted
}

/// One batch sent on a connection whose results are still coming back.
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
    private let completion: @Sendable (BatchOutcome) -> Void
    /// The caller has its answer: the outcome, or `cancelled` when it gave up first.
    private(set) var isComplete = false
    /// Only a batch after the first of its round can be refused on arrival (see `notExecuted`).
    let mayBeRefusedOnArrival: Bool
    private(set) var expectations: [Expectation] = []
    private var nextIndex = 0
    private var sawResult = false
    private var refusedOnArrival = false
    var results: [PostgresRows]
    var error: PostgresError?
    var cancelRequested = false

    init(requestID: Int, statementCount: Int, mayBeRefusedOnArrival: Bool, completion: @escaping @Sendable (BatchOutcome) -> Void) {
        self.requestID = requestID
        self.mayBeRefusedOnArrival = mayBeRefusedOnArrival
        self.completion = completion
        self.results = Array(repeating: PostgresRows(result: nil), count: statementCount)
        self.expectations.reserveCapacity(statementCount + 5)
    }

    /// Answers the caller, once: a batch the caller gave up on may still have its results
    /// arrive (or be skipped) later, and those are read and dropped.
    func complete(_ outcome: BatchOutcome) {
        guard !self.isComplete else { return }
        self.isComplete = true
        self.completion(outcome)
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
    /// Skipped statements are recorded as 25P02 too, so a batch whose very first result is
    /// one never ran at all.
    func record(_ error: PostgresError) {
        if !self.sawResult, self.mayBeRefusedOnArrival, error.sqlState == PostgresError.SQLState.inFailedTransaction {
            self.refusedOnArrival = true
        }
        self.sawResult = true
        if self.error == nil {
            self.error = error
        }
    }

    func recordSuccess() {
        self.sawResult = true
    }

    var outcome: BatchOutcome {
        if self.refusedOnArrival { return .notExecuted }
        if var error = self.error {
            if self.cancelRequested, error.sqlState == PostgresError.SQLState.queryCanceled {
                error.code = .cancelled
            }
            return .failed(error)
        }
        return .rows(self.results)
    }
}

/// Batches sent together on a connection, each with its own pipeline sync, answered in order.
final class Round {
    let batches: [InFlight]
    var current = 0
    /// Pool-owned work: roll back if needed and report idle to the pool when done.
    let returnsToPool: Bool
    /// Sent with the simple query protocol (pipeline mode left for its duration).
    let simpleProtocol: Bool

    init(batches: [InFlight], returnsToPool: Bool, simpleProtocol: Bool = false) {
        self.batches = batches
        self.returnsToPool = returnsToPool
        self.simpleProtocol = simpleProtocol
    }

    var inFlight: InFlight? {
        self.current < self.batches.count ? self.batches[self.current] : nil
    }
}

/// Work handed to a connection: a batch and who to tell how it ended.
struct BatchWork: Sendable {
    let batch: PipelineBatch
    let requestID: Int
    let completion: @Sendable (BatchOutcome) -> Void
}

/// An attempt to establish the connection.
struct ConnectAttempt {
    /// Called once on the connection's queue with the outcome.
    let completion: (Result<Void, PostgresError>) -> Void
    let timeout: DispatchWorkItem
}
