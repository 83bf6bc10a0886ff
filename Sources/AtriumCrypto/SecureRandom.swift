import COpenSSL

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
