import COpenSSL
public import Foundation

/// Cryptographically secure random bytes from OpenSSL (`RAND_bytes`).
public enum SecureRandom {
    /// `count` random bytes.
    public static func bytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        guard count > 0 else { return bytes }
        let ok = bytes.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32(count)) }
        // Without randomness no secret can be made safely; carrying on would be worse than stopping.
        precondition(ok == 1, "RAND_bytes failed: the system has no usable source of randomness")
        return bytes
    }
}

extension SecureRandom {
    /// A random (version 4) UUID from OpenSSL. Foundation's `UUID()` opens, reads and closes
    /// `/dev/urandom` for every id on Linux, three system calls where `RAND_bytes` serves from
    /// its own generator; and ids, like every other random value here, come from OpenSSL.
    public static func uuid() -> UUID {
        UUID(uuid: Self.uuidBytes(version: 4))
    }

    /// 16 random bytes with the RFC 9562 variant and `version` set.
    private static func uuidBytes(version: UInt8) -> uuid_t {
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let ok = withUnsafeMutableBytes(of: &bytes) { RAND_bytes($0.baseAddress!.assumingMemoryBound(to: UInt8.self), 16) }
        precondition(ok == 1, "RAND_bytes failed: the system has no usable source of randomness")
        bytes.6 = bytes.6 & 0x0F | version << 4
        bytes.8 = bytes.8 & 0x3F | 0x80
        return bytes
    }
}

extension SecureRandom {
    /// A time-ordered (version 7, RFC 9562) UUID: 48 bits of Unix time in milliseconds, then
    /// 74 random bits from OpenSSL. A btree keyed by such ids grows at one end, where a random id
    /// lands on any of its pages: record ids end the keys of most of the records' indexes.
    /// The last seven bytes are random in both versions (`RecordStore.estimatedCount` samples them).
    public static func uuidV7(milliseconds: UInt64 = SecureRandom.unixMilliseconds()) -> UUID {
        var bytes = Self.uuidBytes(version: 7)
        bytes.0 = UInt8(truncatingIfNeeded: milliseconds >> 40)
        bytes.1 = UInt8(truncatingIfNeeded: milliseconds >> 32)
        bytes.2 = UInt8(truncatingIfNeeded: milliseconds >> 24)
        bytes.3 = UInt8(truncatingIfNeeded: milliseconds >> 16)
        bytes.4 = UInt8(truncatingIfNeeded: milliseconds >> 8)
        bytes.5 = UInt8(truncatingIfNeeded: milliseconds)
        return UUID(uuid: bytes)
    }

    /// Milliseconds since 1970 by the system clock.
    public static func unixMilliseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1000 + UInt64(now.tv_nsec) / 1_000_000
    }
}
