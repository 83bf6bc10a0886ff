import COpenSSL

/// AES-128 on single 16-byte blocks, from OpenSSL: a keyed permutation, for identifiers that
/// must be opaque and unforgeable but stay short (an event position bound to its tenant).
public struct AESBlock: Sendable {
    private let key: [UInt8]

    /// `key` is 16 bytes (longer keys are cut to 16).
    public init(key: [UInt8]) {
        precondition(key.count >= 16, "AES-128 needs a 16-byte key")
        self.key = Array(key.prefix(16))
    }

    public func encrypt(_ block: [UInt8]) -> [UInt8] {
        self.apply(block, encrypting: true)
    }

    public func decrypt(_ block: [UInt8]) -> [UInt8] {
        self.apply(block, encrypting: false)
    }

    private func apply(_ block: [UInt8], encrypting: Bool) -> [UInt8] {
        precondition(block.count == 16, "AES works on 16-byte blocks")
        guard let context = EVP_CIPHER_CTX_new() else { fatalError("EVP_CIPHER_CTX_new failed") }
        defer { EVP_CIPHER_CTX_free(context) }
        var output = [UInt8](repeating: 0, count: 32)
        var written: Int32 = 0
        let ok = EVP_CipherInit_ex(context, EVP_aes_128_ecb(), nil, self.key, nil, encrypting ? 1 : 0) == 1
            && EVP_CIPHER_CTX_set_padding(context, 0) == 1
            && EVP_CipherUpdate(context, &output, &written, block, 16) == 1
        precondition(ok && written == 16, "AES-128 failed")
        return Array(output.prefix(16))
    }
}
