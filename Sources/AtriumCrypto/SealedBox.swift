import COpenSSL

/// AES-256-GCM from OpenSSL: secrets the server must read back (a TOTP key) are stored sealed, so
/// a copy of the database alone does not give them away.
///
/// Sealed form: a 12-byte random nonce, the ciphertext, the 16-byte tag. `context` is
/// authenticated but not stored (e.g. the user id: a sealed value moved to another row fails).
public struct SealedBox: Sendable {
    private let key: [UInt8]

    public init(key: [UInt8]) {
        precondition(key.count >= 32, "AES-256 needs a 32-byte key")
        self.key = Array(key.prefix(32))
    }

    public func seal(_ plaintext: [UInt8], context: [UInt8]) -> [UInt8] {
        let nonce = SecureRandom.bytes(12)
        guard let cipher = EVP_CIPHER_CTX_new() else { fatalError("EVP_CIPHER_CTX_new failed") }
        defer { EVP_CIPHER_CTX_free(cipher) }
        var output = [UInt8](repeating: 0, count: plaintext.count + 16)
        var written: Int32 = 0
        var tag = [UInt8](repeating: 0, count: 16)
        var ok = EVP_EncryptInit_ex(cipher, EVP_aes_256_gcm(), nil, nil, nil) == 1
            && EVP_CIPHER_CTX_ctrl(cipher, EVP_CTRL_GCM_SET_IVLEN, 12, nil) == 1
            && EVP_EncryptInit_ex(cipher, nil, nil, self.key, nonce) == 1
        if ok && !context.isEmpty {
            ok = EVP_EncryptUpdate(cipher, nil, &written, context, Int32(context.count)) == 1
        }
        var total: Int32 = 0
        if ok && !plaintext.isEmpty {
            ok = EVP_EncryptUpdate(cipher, &output, &written, plaintext, Int32(plaintext.count)) == 1
            total = written
        }
        ok = ok && output.withUnsafeMutableBufferPointer { EVP_EncryptFinal_ex(cipher, $0.baseAddress! + Int(total), &written) } == 1
        total += written
        ok = ok && EVP_CIPHER_CTX_ctrl(cipher, EVP_CTRL_GCM_GET_TAG, 16, &tag) == 1
        precondition(ok, "AES-256-GCM sealing failed")
        return nonce + output.prefix(Int(total)) + tag
    }

    /// The plaintext, or nil when `sealed` was not made by this key with this context.
    public func open(_ sealed: [UInt8], context: [UInt8]) -> [UInt8]? {
        guard sealed.count >= 28 else { return nil }
        let nonce = Array(sealed.prefix(12))
        let ciphertext = Array(sealed.dropFirst(12).dropLast(16))
        var tag = Array(sealed.suffix(16))
        guard let cipher = EVP_CIPHER_CTX_new() else { fatalError("EVP_CIPHER_CTX_new failed") }
        defer { EVP_CIPHER_CTX_free(cipher) }
        var output = [UInt8](repeating: 0, count: ciphertext.count + 16)
        var written: Int32 = 0
        var ok = EVP_DecryptInit_ex(cipher, EVP_aes_256_gcm(), nil, nil, nil) == 1
            && EVP_CIPHER_CTX_ctrl(cipher, EVP_CTRL_GCM_SET_IVLEN, 12, nil) == 1
            && EVP_DecryptInit_ex(cipher, nil, nil, self.key, nonce) == 1
        if ok && !context.isEmpty {
            ok = EVP_DecryptUpdate(cipher, nil, &written, context, Int32(context.count)) == 1
        }
        var total: Int32 = 0
        if ok && !ciphertext.isEmpty {
            ok = EVP_DecryptUpdate(cipher, &output, &written, ciphertext, Int32(ciphertext.count)) == 1
            total = written
        }
        ok = ok && EVP_CIPHER_CTX_ctrl(cipher, EVP_CTRL_GCM_SET_TAG, 16, &tag) == 1
        ok = ok && output.withUnsafeMutableBufferPointer { EVP_DecryptFinal_ex(cipher, $0.baseAddress! + Int(total), &written) } == 1
        guard ok else { return nil }
        return Array(output.prefix(Int(total + written)))
    }
}
