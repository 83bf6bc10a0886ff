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
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let ok = withUnsafeMutableBytes(of: &bytes) { RAND_bytes($0.baseAddress!.assumingMemoryBound(to: UInt8.self), 16) }
        precondition(ok == 1, "RAND_bytes failed: the system has no usable source of randomness")
        bytes.6 = bytes.6 & 0x0F | 0x40
        bytes.8 = bytes.8 & 0x3F | 0x80
        return UUID(uuid: bytes)
    }
}
