/// The rows one statement returned, decoded on access.
public struct PostgresRows: Sendable, RandomAccessCollection {
    let result: PostgresResult?

    init(result: PostgresResult?) {
        self.result = result
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { self.result?.rowCount ?? 0 }

    public subscript(position: Int) -> PostgresRow {
        precondition(position >= 0 && position < self.endIndex, "row index out of range")
        return PostgresRow(result: self.result!, index: position)
    }

    /// Rows inserted, updated, deleted, selected, … as PostgreSQL's command tag reports them.
    public var affectedRows: Int { self.result?.affectedRows ?? 0 }

    /// The command tag, e.g. `INSERT 0 1`.
    public var commandTag: String { self.result?.commandTag ?? "" }

    /// Column names, in order.
    public var columns: [String] {
        guard let result else { return [] }
        return (0..<result.columnCount).map(result.columnName)
    }

    /// The single row, or nil when there is none; more than one row is a programming error.
    public var single: PostgresRow? {
        self.isEmpty ? nil : self[0]
    }
}
