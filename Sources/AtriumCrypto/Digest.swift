import COpenSSL

/// SHA-256 from OpenSSL.
public enum SHA256 {
    /// The 32-byte digest of `bytes`.
    @inlinable
    public static func hash(_ bytes: some Collection<UInt8>) -> [UInt8] {
        withContiguousBytes(bytes) { Self.hash(buffer: $0) }
    }

    @usableFromInline
    static func hash(buffer input: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        var length: UInt32 = 0
        let ok = digest.withUnsafeMutableBufferPointer { output in
            EVP_Digest(input.baseAddress, input.count, output.baseAddress, &length, EVP_sha256(), nil)
        }
        precondition(ok == 1 && length == 32, "EVP_Digest(SHA-256) failed")
        return digest
    }

    /// The digest of the UTF-8 bytes of `text`.
    public static func hash(_ text: String) -> [UInt8] {
        self.hash(Array(text.utf8))
    }
}

/// HMAC-SHA256 from OpenSSL.
public enum HMACSHA256 {
    /// The 32-byte authentication code of `message` under `key`.
    @inlinable
    public static func authenticationCode(for message: some Collection<UInt8>, key: [UInt8]) -> [UInt8] {
        withContiguousBytes(message) { Self.authenticationCode(buffer: $0, key: key) }
    }

    @usableFromInline
    static func authenticationCode(buffer input: UnsafeBufferPointer<UInt8>, key: [UInt8]) -> [UInt8] {
        var code = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let result = key.withUnsafeBufferPointer { keyBuffer in
            code.withUnsafeMutableBufferPointer { output in
                HMAC(EVP_sha256(), keyBuffer.baseAddress, Int32(keyBuffer.count), input.baseAddress, input.count, output.baseAddress, &length)
            }
        }
        precondition(result != nil && length == 32, "HMAC-SHA256 failed")
        return Array(code.prefix(Int(length)))
    }
}

/// Comparison whose time does not depend on where the inputs differ (`CRYPTO_memcmp`).
public func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    guard !a.isEmpty else { return true }
    return a.withUnsafeBytes { left in
        b.withUnsafeBytes { right in
            CRYPTO_memcmp(left.baseAddress, right.baseAddress, left.count) == 0
        }
    }
}

/// Calls `body` with the collection's bytes in contiguous memory, copying only when needed.
@inlinable
func withContiguousBytes<R>(_ bytes: some Collection<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
    if let result = bytes.withContiguousStorageIfAvailable(body) {
        return result
    }
    return Array(bytes).withUnsafeBufferPointer(body)
}
