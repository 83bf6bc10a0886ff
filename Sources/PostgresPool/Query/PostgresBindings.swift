/// Parameter values of a query, encoded for libpq.
///
/// All values share one byte buffer; text values are followed by a NUL byte so libpq can read
/// them as C strings without another copy.
public struct PostgresBindings: Sendable, Hashable {
    @usableFromInline
    struct Slot: Sendable, Hashable {
        @usableFromInline var offset: Int
        /// -1 for SQL NULL.
        @usableFromInline var length: Int
        @usableFromInline var format: PostgresFormat

        @usableFromInline
        init(offset: Int, length: Int, format: PostgresFormat) {
            self.offset = offset
            self.length = length
            self.format = format
        }
    }

    @usableFromInline var storage: [UInt8]
    @usableFromInline var slots: [Slot]
    /// Why a value cannot be sent, if one cannot; the query then fails before reaching the server.
    @usableFromInline var invalidReason: String?

    public init() {
        self.storage = []
        self.slots = []
    }

    public init(capacity: Int) {
        self.storage = []
        self.storage.reserveCapacity(capacity * 16)
        self.slots = []
        self.slots.reserveCapacity(capacity)
    }

    /// Number of parameters.
    public var count: Int { self.slots.count }

    /// Appends a value as the next parameter.
    @inlinable
    public mutating func append(_ value: some PostgresEncodable) {
        let offset = self.storage.count
        value.encode(into: &self.storage)
        let length = self.storage.count - offset
        let format = type(of: value).postgresFormat
        if format == .text {
            // libpq reads text parameters up to the first NUL; one inside the value would
            // silently truncate it, so refuse to send it at all.
            if self.storage[offset...].contains(0) {
                self.invalidReason = "parameter $\(self.slots.count + 1) contains a NUL byte, which PostgreSQL text cannot hold"
            }
            self.storage.append(0)
        }
        self.slots.append(Slot(offset: offset, length: length, format: format))
    }

    /// Appends SQL NULL as the next parameter.
    @inlinable
    public mutating func appendNull() {
        self.slots.append(Slot(offset: self.storage.count, length: -1, format: .text))
    }
}

/// How a value travels on the wire.
public enum PostgresFormat: Int32, Sendable, Hashable {
    case text = 0
    case binary = 1
}
