/// Statements sent to PostgreSQL together, in one network round trip.
///
/// With `transaction` set the batch becomes `BEGIN; prelude…; statements…; COMMIT` followed by
/// one pipeline sync. If any statement fails, PostgreSQL skips the rest up to the sync, the
/// caller gets that statement's error and the pool rolls the connection back before reuse.
public struct PipelineBatch: Sendable {
    /// Statements whose results are returned, one `PostgresRows` each.
    public var statements: [PostgresQuery]
    /// Statements run first (after `BEGIN`), whose results are discarded, e.g. setting the tenant.
    public var prelude: [PostgresQuery]
    /// Wraps the batch in `BEGIN … COMMIT`.
    public var transaction: Bool

    public init(statements: [PostgresQuery], prelude: [PostgresQuery] = [], transaction: Bool = false) {
        self.statements = statements
        self.prelude = prelude
        self.transaction = transaction
    }
}
