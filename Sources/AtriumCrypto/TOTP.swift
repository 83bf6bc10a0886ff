import COpenSSL

/// RFC 6238 time-based one-time passwords (HMAC-SHA1 from OpenSSL, 30-second steps), and the
/// RFC 4648 base32 that authenticator apps take secrets in.
public struct TOTP: Sendable {
    public let secret: [UInt8]
    public let digits: Int
    public let period: Int

    public init(secret: [UInt8], digits: Int = 6, period: Int = 30) {
        self.secret = secret
        self.digits = digits
        self.period = period
    }

    /// The time step of a Unix time.
    public func step(at unixTime: Int64) -> Int64 {
        unixTime / Int64(self.period)
    }

    /// The code for a time step (RFC 4226 dynamic truncation), zero-padded.
    public func code(step: Int64) -> String {
        var counter = [UInt8](repeating: 0, count: 8)
        for index in 0..<8 { counter[7 - index] = UInt8(truncatingIfNeeded: UInt64(bitPattern: step) >> (8 * UInt64(index))) }
        var mac = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let result = self.secret.withUnsafeBufferPointer { key in
            HMAC(EVP_sha1(), key.baseAddress, Int32(key.count), counter, counter.count, &mac, &length)
        }
        precondition(result != nil && length == 20, "HMAC-SHA1 failed")
        let offset = Int(mac[19] & 0x0f)
        let binary = (UInt32(mac[offset] & 0x7f) << 24) | (UInt32(mac[offset + 1]) << 16) | (UInt32(mac[offset + 2]) << 8) | UInt32(mac[offset + 3])
        var modulus: UInt32 = 1
        for _ in 0..<self.digits { modulus *= 10 }
        let value = String(binary % modulus)
        return String(repeating: "0", count: self.digits - value.count) + value
    }

    /// The step among `step - window … step + window` whose code is `code`, if any (compared
    /// in constant time).
    public func matchingStep(_ code: String, around step: Int64, window: Int64 = 1) -> Int64? {
        let typed = Array(code.utf8)
        var found: Int64?
        for candidate in (step - window)...(step + window) {
            if constantTimeEquals(Array(self.code(step: candidate).utf8), typed), found == nil {
                found = candidate
            }
        }
        return found
    }
}

/// RFC 4648 base32 without padding (what `otpauth://` URIs carry).
public enum Base32 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                output.append(Self.alphabet[Int((buffer >> UInt32(bits - 5)) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { output.append(Self.alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return String(decoding: output, as: UTF8.self)
    }
}
