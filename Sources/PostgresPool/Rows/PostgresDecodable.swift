#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One value of a result row as PostgreSQL sent it (text format), valid only while decoding.
public struct PostgresCell {
    /// The value's bytes, or nil for SQL NULL.
    public let bytes: UnsafeRawBufferPointer?
    /// The column's type.
    public let type: PostgresDataType

    /// Thrown by decoders; the row turns it into a `PostgresError` naming the column.
    public struct DecodingFailure: Error {
        public let reason: String
        public init(_ reason: String) { self.reason = reason }
    }

    /// The bytes, or a failure when the value is NULL.
    public func requireBytes() throws -> UnsafeRawBufferPointer {
        guard let bytes else { throw DecodingFailure("value is NULL") }
        return bytes
    }

    /// Fails unless the column has one of `types`.
    public func require(_ types: PostgresDataType...) throws {
        guard types.contains(self.type) else {
            throw DecodingFailure("column type is \(self.type)")
        }
    }
}

/// A Swift type a column can be decoded into.
public protocol PostgresDecodable: Sendable {
    static func decode(from cell: PostgresCell) throws -> Self
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public static func decode(from cell: PostgresCell) throws -> Self {
        guard cell.bytes != nil else { return nil }
        return try Wrapped.decode(from: cell)
    }
}

extension String: PostgresDecodable {
    /// Any column decodes as its text representation.
    public static func decode(from cell: PostgresCell) throws -> String {
        String(decoding: try cell.requireBytes(), as: UTF8.self)
    }
}

extension Bool: PostgresDecodable {
    public static func decode(from cell: PostgresCell) throws -> Bool {
        try cell.require(.bool)
        let bytes = try cell.requireBytes()
        guard bytes.count == 1 else { throw PostgresCell.DecodingFailure("not a boolean") }
        return bytes[0] == UInt8(ascii: "t")
    }
}

extension Int: PostgresDecodable {
    public static func decode(from cell: PostgresCell) throws -> Int {
        Int(try Int64.decode(from: cell))
    }
}

extension Int32: PostgresDecodable {
    public static func decode(from cell: PostgresCell) throws -> Int32 {
        let value = try Int64.decode(from: cell)
        guard let narrow = Int32(exactly: value) else { throw PostgresCell.DecodingFailure("\(value) does not fit") }
        return narrow
    }
}

extension Int64: PostgresDecodable {
    public static func decode(from cell: PostgresCell) throws -> Int64 {
        try cell.require(.int2, .int4, .int8, .oid)
        guard let value = PostgresTextCoding.parseInteger(try cell.requireBytes()) else {
            throw PostgresCell.DecodingFailure("not an integer")
        }
        return value
    }
}

extension Double: PostgresDecodable {
    public static func decode(from cell: PostgresCell) throws -> Double {
        try cell.require(.float4, .float8, .numeric, .int2, .int4, .int8)
        let text = String(decoding: try cell.requireBytes(), as: UTF8.self)
        guard let value = Double(text) else { throw PostgresCell.DecodingFailure("not a number") }
        return value
    }
}

extension UUID: PostgresDecodable {
    public static func decode(from cell: PostgresCell) throws -> UUID {
        try cell.require(.uuid)
        guard let value = PostgresTextCoding.parseUUID(try cell.requireBytes()) else {
            throw PostgresCell.DecodingFailure("not a uuid")
        }
        return value
    }
}

extension Date: PostgresDecodable {
    public static func decode(from cell: PostgresCell) throws -> Date {
        try cell.require(.timestamptz, .timestamp, .date)
        guard let value = PostgresTextCoding.parseTimestamp(try cell.requireBytes()) else {
            throw PostgresCell.DecodingFailure("not a timestamp")
        }
        return value
    }
}

extension PostgresBytes: PostgresDecodable {
    /// `bytea` decodes to its bytes; `json`/`jsonb`/text to their UTF-8 text.
    public static func decode(from cell: PostgresCell) throws -> PostgresBytes {
        let bytes = try cell.requireBytes()
        switch cell.type {
        case .bytea:
            guard let raw = PostgresTextCoding.parseByteaHex(bytes) else {
                throw PostgresCell.DecodingFailure("not hex-encoded bytea")
            }
            return PostgresBytes(raw)
        case .json, .jsonb, .text, .varchar:
            return PostgresBytes(Array(bytes))
        default:
            throw PostgresCell.DecodingFailure("column type is \(cell.type)")
        }
    }
}

extension Array: PostgresDecodable where Element == String {
    /// One-dimensional `text[]`/`varchar[]`; NULL elements are refused.
    public static func decode(from cell: PostgresCell) throws -> [String] {
        try cell.require(.textArray, .varcharArray)
        guard let elements = PostgresArrayParser.parse(try cell.requireBytes()) else {
            throw PostgresCell.DecodingFailure("not a one-dimensional text array without NULLs")
        }
        return elements
    }
}
