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
    public func withUnsafeBytes<T>(column: Int, _ body: (UnsafeRawBufferPointer?) throws -> T) throws -> T {
        guard column >= 0, column < self.result.columnCount else {
            throw PostgresError(code: .decoding, message: "column \(column) requested but the result has \(self.result.columnCount)")
        }
        return try self.result.withCell(row: self.index, column: column, body)
    }

    /// Whether the column holds SQL NULL.
    public func isNull(column: Int) -> Bool {
        self.result.withCell(row: self.index, column: column) { $0 == nil }
    }

    @usableFromInline
    func decodeCell<T: PostgresDecodable>(_: T.Type, column: Int) throws -> T {
        guard column >= 0, column < self.result.columnCount else {
            throw PostgresError(
                code: .decoding,
                message: "column \(column) requested but the result has \(self.result.columnCount)"
            )
        }
        let type = self.result.type(ofColumn: column)
        return try self.result.withCell(row: self.index, column: column) { bytes in
            do {
                return try T.decode(from: PostgresCell(bytes: bytes, type: type))
            } catch let error as PostgresCell.DecodingFailure {
                throw PostgresError(
                    code: .decoding,
                    message: "cannot decode column \"\(self.result.columnName(column))\" (\(type)) as \(T.self): \(error.reason)"
                )
            }
        }
    }
}
