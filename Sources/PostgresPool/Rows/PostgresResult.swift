import CLibPQ

/// Owns one libpq `PGresult` and frees it when the last reference goes.
///
/// A `PGresult` is immutable once libpq hands it over, so reading it from any thread is safe.
final class PostgresResult: @unchecked Sendable {
    let pointer: OpaquePointer
    let rowCount: Int
    let columnCount: Int

    init(_ pointer: OpaquePointer) {
        self.pointer = pointer
        self.rowCount = Int(PQntuples(pointer))
        self.columnCount = Int(PQnfields(pointer))
    }

    deinit {
        PQclear(self.pointer)
    }

    /// Rows changed by INSERT/UPDATE/DELETE/…, from the command tag.
    var affectedRows: Int {
        guard let tuples = PQcmdTuples(self.pointer) else { return 0 }
        return Int(String(cString: tuples)) ?? 0
    }

    var commandTag: String {
        PQcmdStatus(self.pointer).map { String(cString: $0) } ?? ""
    }

    func columnName(_ column: Int) -> String {
        PQfname(self.pointer, Int32(column)).map { String(cString: $0) } ?? "?column?"
    }

    func columnIndex(_ name: String) -> Int? {
        for column in 0..<self.columnCount where self.columnName(column) == name {
            return column
        }
        return nil
    }

    func type(ofColumn column: Int) -> PostgresDataType {
        PostgresDataType(PQftype(self.pointer, Int32(column)))
    }

    /// Calls `body` with the cell's bytes (nil for SQL NULL), valid only during the call.
    @inline(__always)
    func withCell<T>(row: Int, column: Int, _ body: (UnsafeRawBufferPointer?) throws -> T) rethrows -> T {
        let r = Int32(row)
        let c = Int32(column)
        if PQgetisnull(self.pointer, r, c) != 0 {
            return try body(nil)
        }
        let length = Int(PQgetlength(self.pointer, r, c))
        let value = PQgetvalue(self.pointer, r, c)
        return try withExtendedLifetime(self) {
            try body(UnsafeRawBufferPointer(start: value, count: length))
        }
    }
}
