import Dispatch
import Logging
import CLibPQ

extension PostgresConnection {
    /// Sends `work` as one round: every batch with its own pipeline sync, all in one write.
    /// On the connection's queue only.
    ///
    /// Returns false, without calling any completion, when the connection is already closed:
    /// nothing was sent, so the pool may safely give the work to another connection.
    func start(_ work: [BatchWork], returnsToPool: Bool) -> Bool {
        switch self.state {
        case .idle:
            break
        case .closed:
            return false
        case .initial, .connecting, .busy, .settling:
            for item in work {
                item.completion(.failed(PostgresError(code: .protocolViolation, message: "connection \(self.id) is not idle")))
            }
            return true
        }
        var batches: [InFlight] = []
        batches.reserveCapacity(work.count)
        for item in work {
            if let reason = item.batch.invalidReason {
                item.completion(.failed(PostgresError(code: .invalidParameter, message: reason)))
                continue
            }
            batches.append(InFlight(
                requestID: item.requestID,
                statementCount: item.batch.statements.count,
                mayBeRefusedOnArrival: !batches.isEmpty,
                completion: item.completion
            ))
        }
        guard !batches.isEmpty else {
            if returnsToPool { self.settle() }
            return true
        }
        let round = Round(batches: batches, returnsToPool: returnsToPool)
        self.state = .busy(round)
        self.lastProgress = DispatchTime.now().uptimeNanoseconds
        let valid = work.filter { $0.batch.invalidReason == nil }
        for (index, item) in valid.enumerated() {
            // Consecutive transactions share one sync: each commits on its own, and if one fails
            // the rest of the segment is skipped (and retried), so nothing is lost. A batch
            // outside BEGIN/COMMIT gets a sync of its own: sharing the implicit transaction
            // would tie its fate to its neighbours'.
            let last = index == valid.count - 1
            let endsSegment = last || !item.batch.transaction || !valid[index + 1].batch.transaction
            guard self.send(item.batch, batches[index], sync: endsSegment, deallocate: last) else {
                self.fail(.connectionClosed("could not send to PostgreSQL: \(self.libpqErrorMessage)"))
                return true
            }
        }
        self.flush()
        return true
    }

    /// Sends one batch on its own (for a borrowed connection).
    func start(_ batch: PipelineBatch, requestID: Int, completion: @escaping @Sendable (BatchOutcome) -> Void) -> Bool {
        self.start([BatchWork(batch: batch, requestID: requestID, completion: completion)], returnsToPool: false)
    }

    private func send(_ batch: PipelineBatch, _ inFlight: InFlight, sync: Bool, deallocate: Bool) -> Bool {
        if batch.transaction {
            guard self.send(Self.begin, inFlight, as: .discard) else { return false }
        }
        for query in batch.prelude {
            guard self.send(query, inFlight, as: .discard) else { return false }
        }
        for (index, query) in batch.statements.enumerated() {
            guard self.send(query, inFlight, as: .statement(index: index)) else { return false }
        }
        if batch.transaction {
            guard self.send(Self.commit, inFlight, as: .discard) else { return false }
        }
        // Outside any transaction, at the very end of the round.
        while deallocate, let name = self.pendingDeallocations.popLast() {
            guard PQsendQueryParams(self.pg, "DEALLOCATE \(name)", 0, nil, nil, nil, nil, 0) == 1 else { return false }
            inFlight.expect(.deallocate(name: name))
        }
        if sync {
            // libpq 15 flushes at every sync, so syncs are what a round saves on.
            guard PQpipelineSync(self.pg) == 1 else { return false }
            inFlight.expect(.sync)
        }
        return true
    }

    private static let begin: PostgresQuery = "BEGIN"
    private static let commit: PostgresQuery = "COMMIT"
    private static let rollback: PostgresQuery = "ROLLBACK"

    /// Queues one statement: prepared the first time this connection sees its SQL, then reused
    /// (or, for a one-off statement, sent unnamed).
    private func send(_ query: PostgresQuery, _ inFlight: InFlight, as expectation: InFlight.Expectation) -> Bool {
        guard query.isPrepared, !self.configuration.transactionPooling else {
            let sent = query.bindings.withLibpqArrays { count, values, lengths, formats in
                PQsendQueryParams(self.pg, query.sql, count, nil, values, lengths, formats, 0)
            }
            guard sent == 1 else { return false }
            inFlight.expect(expectation)
            return true
        }
        let name: String
        if let cached = self.statements.name(for: query.sql) {
            name = cached
        } else {
            let (fresh, evicted) = self.statements.insert(query.sql)
            name = fresh
            if let evicted { self.pendingDeallocations.append(evicted) }
            guard PQsendPrepare(self.pg, name, query.sql, 0, nil) == 1 else { return false }
            inFlight.expect(.prepare(sql: query.sql, name: name))
        }
        let sent = query.bindings.withLibpqArrays { count, values, lengths, formats in
            PQsendQueryPrepared(self.pg, name, count, values, lengths, formats, 0)
        }
        guard sent == 1 else { return false }
        inFlight.expect(expectation)
        return true
    }

    /// Reads every result libpq has complete, finishing each batch at its sync and the round
    /// after its last batch.
    func processResults() {
        guard case .busy(let round) = self.state, let pg else { return }
        while let inFlight = round.inFlight {
            while let expectation = inFlight.next {
                guard PQisBusy(pg) == 0 else { return }
                let result = PQgetResult(pg)
                switch expectation {
                case .sync:
                    guard let result else { continue }
                    let status = PQresultStatus(result)
                    PQclear(result)
                    guard status == PGRES_PIPELINE_SYNC else {
                        self.fail(PostgresError(code: .protocolViolation, message: "expected a pipeline sync, got \(String(cString: PQresStatus(status)))"))
                        return
                    }
                    inFlight.advance()
                case .simple, .prepare, .discard, .deallocate, .statement:
                    guard let result else {
                        // NULL ends the current command's results.
                        inFlight.advance()
                        continue
                    }
                    self.handle(result, for: expectation, in: inFlight)
                }
            }
            round.current += 1
            // Each caller hears as soon as its own batch is done, not when the round is.
            inFlight.complete(inFlight.outcome)
        }
        self.finish(round)
    }

    private func handle(_ result: OpaquePointer, for expectation: InFlight.Expectation, in inFlight: InFlight) {
        let status = PQresultStatus(result)
        switch status {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            inFlight.recordSuccess()
            switch expectation {
            case .statement(let index):
                inFlight.results[index] = PostgresRows(result: PostgresResult(result))
            case .simple:
                inFlight.results.append(PostgresRows(result: PostgresResult(result)))
            default:
                PQclear(result)
            }
        case PGRES_FATAL_ERROR, PGRES_NONFATAL_ERROR:
            var error = PostgresError(result: result)
            if case .statement(let index) = expectation { error.statementIndex = index }
            PQclear(result)
            self.forget(expectation)
            // A cached plan invalidated by a schema change: prepare afresh next time.
            if error.sqlState == "0A000", error.message.contains("cached plan") { self.statements.removeAll() }
            inFlight.record(error)
        case PGRES_PIPELINE_ABORTED:
            PQclear(result)
            self.forget(expectation)
            inFlight.record(PostgresError(code: .server, message: "statement skipped after an earlier error in the pipeline", sqlState: PostgresError.SQLState.inFailedTransaction))
        default:
            let description = String(cString: PQresStatus(status))
            PQclear(result)
            inFlight.record(PostgresError(code: .protocolViolation, message: "unexpected result status \(description)"))
        }
    }

    /// A prepare or deallocate that did not happen must not be remembered as done.
    private func forget(_ expectation: InFlight.Expectation) {
        switch expectation {
        case .prepare(let sql, let name):
            self.statements.remove(sql, name: name)
        case .deallocate(let name):
            self.pendingDeallocations.append(name)
        default:
            break
        }
    }

    private func finish(_ round: Round) {
        if round.simpleProtocol, let pg {
            guard PQenterPipelineMode(pg) == 1 else {
                self.fail(.connectionClosed("could not re-enter pipeline mode: \(self.libpqErrorMessage)"))
                return
            }
        }
        self.state = .idle
        if round.returnsToPool || self.releasePending {
            self.releasePending = false
            self.settle()
        }
    }

    /// Makes a pool-owned connection clean before it is reused: no open or failed transaction,
    /// no cancel still on its way. Then tells the pool it is idle. A borrowed connection given
    /// back mid-round (its caller gave up) settles when the round ends.
    func settle() {
        if case .busy = self.state {
            self.releasePending = true
            return
        }
        guard case .idle = self.state, let pg else { return }
        if self.cancelsInFlight > 0 {
            self.state = .settling
            return
        }
        switch PQtransactionStatus(pg) {
        case PQTRANS_IDLE:
            self.delegate?.connectionBecameIdle(self)
        case PQTRANS_INTRANS, PQTRANS_INERROR:
            let rollback = PipelineBatch(statements: [Self.rollback])
            _ = self.start(rollback, requestID: Self.nextRequestID()) { [self] outcome in
                // Runs inside processResults, before the round is finished: decide afterwards.
                self.queue.async {
                    guard case .rows = outcome, let pg = self.pg, PQtransactionStatus(pg) == PQTRANS_IDLE else {
                        self.fail(.connectionClosed("could not roll back an unfinished transaction"))
                        return
                    }
                    self.delegate?.connectionBecameIdle(self)
                }
            }
        default:
            self.fail(.connectionClosed("connection in an unknown transaction state"))
        }
    }

    /// Sends SQL text with the simple query protocol: several statements, no parameters.
    func startSimple(_ sql: String, requestID: Int, completion: @escaping @Sendable (BatchOutcome) -> Void) -> Bool {
        guard case .idle = self.state, let pg else {
            if case .closed = self.state { return false }
            completion(.failed(PostgresError(code: .protocolViolation, message: "connection \(self.id) is not idle")))
            return true
        }
        guard PQexitPipelineMode(pg) == 1 else {
            completion(.failed(PostgresError(code: .protocolViolation, message: "could not leave pipeline mode: \(self.libpqErrorMessage)")))
            return true
        }
        let inFlight = InFlight(requestID: requestID, statementCount: 0, mayBeRefusedOnArrival: false, completion: completion)
        inFlight.expect(.simple)
        self.state = .busy(Round(batches: [inFlight], returnsToPool: false, simpleProtocol: true))
        self.lastProgress = DispatchTime.now().uptimeNanoseconds
        guard PQsendQuery(pg, sql) == 1 else {
            self.fail(.connectionClosed("could not send to PostgreSQL: \(self.libpqErrorMessage)"))
            return true
        }
        self.flush()
        return true
    }
}

extension PipelineBatch {
    var invalidReason: String? {
        for query in self.prelude where query.bindings.invalidReason != nil {
            return query.bindings.invalidReason
        }
        for query in self.statements where query.bindings.invalidReason != nil {
            return query.bindings.invalidReason
        }
        return nil
    }
}

extension PostgresBindings {
    /// Calls `body` with the parameter arrays `PQsendQueryPrepared` takes.
    func withLibpqArrays<R>(
        _ body: (Int32, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> R
    ) -> R {
        let count = self.slots.count
        if count == 0 {
            return body(0, nil, nil, nil)
        }
        return self.storage.withUnsafeBufferPointer { storage in
            withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: count) { values in
                withUnsafeTemporaryAllocation(of: Int32.self, capacity: count * 2) { numbers in
                    let base = UnsafeRawPointer(storage.baseAddress)
                    for (index, slot) in self.slots.enumerated() {
                        if slot.length < 0 {
                            values[index] = nil
                        } else {
                            // A zero-length binary value still needs a non-NULL pointer.
                            values[index] = (base ?? UnsafeRawPointer(bitPattern: 1)!)
                                .advanced(by: slot.offset)
                                .assumingMemoryBound(to: CChar.self)
                        }
                        numbers[index] = Int32(max(slot.length, 0))
                        numbers[count + index] = slot.format.rawValue
                    }
                    return body(
                        Int32(count),
                        UnsafePointer(values.baseAddress),
                        UnsafePointer(numbers.baseAddress),
                        UnsafePointer(numbers.baseAddress! + count)
                    )
                }
            }
        }
    }
}

extension PostgresError {
    /// The fields PostgreSQL sent with an error result.
    init(result: OpaquePointer) {
        func field(_ code: Character) -> String? {
            PQresultErrorField(result, Int32(code.asciiValue!)).map { String(cString: $0) }
        }
        self.init(
            code: .server,
            message: field("M") ?? PQresultErrorMessage(result).map { String(cString: $0).trimmingTrailingNewlines() } ?? "unknown error",
            sqlState: field("C"),
            detail: field("D"),
            hint: field("H"),
            constraint: field("n"),
            table: field("t"),
            column: field("c"),
            schema: field("s")
        )
    }
}
