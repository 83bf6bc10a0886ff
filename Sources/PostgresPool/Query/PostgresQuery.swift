/// SQL text with its bound parameters.
///
/// Build one with string interpolation: every interpolated value becomes a `$n` parameter, so
/// values never end up in the SQL text. Identifiers that must be dynamic (a sort column) go
/// through `unescaped:` and must come from an allowlist.
///
/// ```swift
/// let rows = try await pool.query("SELECT name FROM items WHERE tenant_id = \(tenant) AND id = \(id)")
/// ```
public struct PostgresQuery: Sendable, Hashable {
    /// The SQL text, with `$1`, `$2`, … where parameters go.
    public var sql: String
    /// The parameter values, in order.
    public var bindings: PostgresBindings
    /// Prepared once per connection and reused (the default), or sent unnamed each time: for
    /// SQL whose text differs every time, which would only churn the statement cache.
    public var isPrepared = true

    /// Creates a query from SQL text and bindings built by hand.
    public init(unsafeSQL sql: String, bindings: PostgresBindings = PostgresBindings()) {
        self.sql = sql
        self.bindings = bindings
    }

    /// A statement sent as it is, unprepared: SQL that cannot take parameters (utility
    /// statements) and differs every time. The text must not hold anything a client chose.
    public static func oneOff(unsafeSQL sql: String) -> PostgresQuery {
        var query = PostgresQuery(unsafeSQL: sql)
        query.isPrepared = false
        return query
    }
}

extension PostgresQuery: ExpressibleByStringInterpolation {
    public init(stringLiteral value: String) {
        self.init(unsafeSQL: value)
    }

    public init(stringInterpolation: StringInterpolation) {
        self.init(unsafeSQL: stringInterpolation.sql, bindings: stringInterpolation.bindings)
    }

    /// Collects SQL text and turns each interpolated value into a bound parameter.
    public struct StringInterpolation: StringInterpolationProtocol, Sendable {
        public typealias StringLiteralType = String

        @usableFromInline var sql: String
        @usableFromInline var bindings: PostgresBindings

        public init(literalCapacity: Int, interpolationCount: Int) {
            self.sql = ""
            self.sql.reserveCapacity(literalCapacity + interpolationCount * 3)
            self.bindings = PostgresBindings(capacity: interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) {
            self.sql.append(literal)
        }

        @inlinable
        public mutating func appendInterpolation(_ value: some PostgresEncodable) {
            self.bindings.append(value)
            self.sql.append("$\(self.bindings.count)")
        }

        @inlinable
        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value?) {
            if let value {
                self.bindings.append(value)
            } else {
                self.bindings.appendNull()
            }
            self.sql.append("$\(self.bindings.count)")
        }

        /// Appends text to the SQL as is. Only for identifiers taken from an allowlist.
        public mutating func appendInterpolation(unescaped text: String) {
            self.sql.append(text)
        }
    }
}

extension PostgresQuery: CustomStringConvertible {
    /// The SQL and how many parameters it has; never the values, which may be secrets.
    public var description: String {
        "\(self.sql) [\(self.bindings.count) parameter(s)]"
    }
}
