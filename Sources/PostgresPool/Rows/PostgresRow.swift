/// One result row; values are decoded from PostgreSQL's text format on access.
public struct PostgresRow: Sendable {
    let result: PostgresResult
    let index: Int

    /// Number of columns.
    public var count: Int { self.result.columnCount }

    /// Decodes the column at `column` as `T`.
    @inlinable
    public func decode<T: PostgresDecodable>(_ type: T.Type = T.self, column: Int) throws -> T {
        try self.decodeCell(T.self, column: column)
    }

    /// Decodes the column named `name` as `T`.
    public func decode<T: PostgresDecodable>(_ type: T.Type = T.self, column name: String) throws -> T {
        guard let column = self.result.columnIndex(name) else {
            throw PostgresError(code: .decoding, message: "no column named \"\(name)\" in the result")
        }
        return try self.decodeCell(T.self, column: column)
    }

    /// Decodes the leading columns as a tuple: `let (id, name) = try row.decode((UUID, String).self)`.
    public func decode<each T: PostgresDecodable>(_ types: (repeat each T).Type) throws -> (repeat each T) {
        var column = 0
        func next<U: PostgresDecodable>(_: U.Type) throws -> U {
            defer { column += 1 }
            return try self.decodeCell(U.self, column: column)
        }
        return (repeat try next((each T).self))
    }

    /// Calls `body` with the column's text as PostgreSQL sent it (nil for SQL NULL), valid only
    /// during the call: for passing a value on without decoding it.
    @inlinable
    public func withUnsafeBytes<T>(column: Int, _ body: (UnsafeRawBufferPointer?) throws -> T) throws -> T {
        let cell = try self.cell(column: column)
        return try withExtendedLifetime(self) { try body(cell.bytes) }
    }

    /// Whether the column holds SQL NULL.
    public func isNull(column: Int) -> Bool {
        self.result.withCell(row: self.index, column: column) { $0 == nil }
    }

    /// Inlinable, so that the decoder is specialized where a row is read: unspecialized, each
    /// cell went through the generic runtime (4 % of a list page's server CPU in a profile).
    @inlinable
    func decodeCell<T: PostgresDecodable>(_: T.Type, column: Int) throws -> T {
        let cell = try self.cell(column: column)
        do {
            // The cell's bytes belong to the result, which the row keeps alive.
            return try withExtendedLifetime(self) { try T.decode(from: cell) }
        } catch let failure as PostgresCell.DecodingFailure {
            throw self.decodingError(column: column, cell: cell, type: T.self, failure)
        }
    }

    /// The cell at `column`; its bytes are valid while this row (its result) lives.
    @usableFromInline
    func cell(column: Int) throws -> PostgresCell {
        guard column >= 0, column < self.result.columnCount else {
            throw PostgresError(
                code: .decoding,
                message: "column \(column) requested but the result has \(self.result.columnCount)"
            )
        }
        let type = self.result.type(ofColumn: column)
        return self.result.withCell(row: self.index, column: column) { PostgresCell(bytes: $0, type: type) }
    }

    @usableFromInline
    func decodingError(column: Int, cell: PostgresCell, type: Any.Type, _ failure: PostgresCell.DecodingFailure) -> PostgresError {
        PostgresError(
            code: .decoding,
            message: "cannot decode column \"\(self.result.columnName(column))\" (\(cell.type)) as \(type): \(failure.reason)"
        )
    }
}
