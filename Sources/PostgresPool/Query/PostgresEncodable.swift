#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A Swift value that can be sent as a query parameter.
///
/// Parameters are sent untyped and PostgreSQL infers each one's type from where it is used, so
/// text format (which PostgreSQL parses into whatever type it inferred) is the default.
public protocol PostgresEncodable: Sendable {
    /// Wire format of the encoded bytes.
    static var postgresFormat: PostgresFormat { get }
    /// Appends the value's bytes to `buffer`.
    func encode(into buffer: inout [UInt8])
}

extension PostgresEncodable {
    public static var postgresFormat: PostgresFormat { .text }
}

extension String: PostgresEncodable {
    @inlinable
    public func encode(into buffer: inout [UInt8]) {
        buffer.append(contentsOf: self.utf8)
    }
}

extension Substring: PostgresEncodable {
    @inlinable
    public func encode(into buffer: inout [UInt8]) {
        buffer.append(contentsOf: self.utf8)
    }
}

extension Bool: PostgresEncodable {
    @inlinable
    public func encode(into buffer: inout [UInt8]) {
        buffer.append(self ? UInt8(ascii: "t") : UInt8(ascii: "f"))
    }
}

extension FixedWidthInteger where Self: PostgresEncodable {
    @inlinable
    public func encode(into buffer: inout [UInt8]) {
        PostgresTextCoding.appendDecimal(Int64(self), to: &buffer)
    }
}

extension Int: PostgresEncodable {}
extension Int16: PostgresEncodable {}
extension Int32: PostgresEncodable {}
extension Int64: PostgresEncodable {}

extension Double: PostgresEncodable {
    public func encode(into buffer: inout [UInt8]) {
        if self.isNaN {
            buffer.append(contentsOf: "NaN".utf8)
        } else if self.isInfinite {
            buffer.append(contentsOf: (self < 0 ? "-Infinity" : "Infinity").utf8)
        } else {
            // Swift's description is the shortest text that reads back as the same Double.
            buffer.append(contentsOf: self.description.utf8)
        }
    }
}

extension Float: PostgresEncodable {
    public func encode(into buffer: inout [UInt8]) {
        Double(self).encode(into: &buffer)
    }
}

extension UUID: PostgresEncodable {
    public func encode(into buffer: inout [UInt8]) {
        PostgresTextCoding.appendUUID(self, to: &buffer)
    }
}

extension Date: PostgresEncodable {
    public func encode(into buffer: inout [UInt8]) {
        PostgresTextCoding.appendTimestamp(self, to: &buffer)
    }
}

/// Raw bytes for a `bytea` parameter, sent in binary format.
public struct PostgresBytes: PostgresEncodable, Hashable {
    public var bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public static var postgresFormat: PostgresFormat { .binary }
    public func encode(into buffer: inout [UInt8]) {
        buffer.append(contentsOf: self.bytes)
    }
}

extension Array: PostgresEncodable where Element == String {
    /// Encodes as a text array literal (`{"a","b"}`); every element is quoted, so any text is safe.
    public func encode(into buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "{"))
        for (index, element) in self.enumerated() {
            if index > 0 { buffer.append(UInt8(ascii: ",")) }
            buffer.append(UInt8(ascii: "\""))
            for byte in element.utf8 {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                    buffer.append(UInt8(ascii: "\\"))
                }
                buffer.append(byte)
            }
            buffer.append(UInt8(ascii: "\""))
        }
        buffer.append(UInt8(ascii: "}"))
    }
}
