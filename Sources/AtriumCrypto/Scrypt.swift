import COpenSSL

/// scrypt (RFC 7914) through OpenSSL.
public enum Scrypt {
    /// Cost parameters: N = 2^logN, block size r, parallelism p.
    public struct Parameters: Sendable, Hashable, CustomStringConvertible {
        public var logN: Int
        public var r: Int
        public var p: Int

        public init(logN: Int, r: Int, p: Int) {
            self.logN = logN
            self.r = r
            self.p = p
        }

        /// OWASP's recommendation: N=2^17, r=8, p=1 (128 MiB, a few hundred milliseconds).
        public static let recommended = Parameters(logN: 17, r: 8, p: 1)

        /// Memory scrypt needs for these parameters, in bytes (128 · r · N, plus 128 · r · p).
        public var memory: UInt64 {
            128 * UInt64(self.r) * (UInt64(1) << UInt64(self.logN)) + 128 * UInt64(self.r) * UInt64(self.p)
        }

        public var isValid: Bool {
            (1...24).contains(self.logN) && (1...32).contains(self.r) && (1...16).contains(self.p)
        }

        /// The PHC form, `ln=17,r=8,p=1`.
        public var description: String { "ln=\(self.logN),r=\(self.r),p=\(self.p)" }

        /// Parses the PHC form (each of ln, r and p once, in any order); nil unless valid.
        public init?(phc text: some StringProtocol) {
            var values: [Substring: Int] = [:]
            for pair in text.split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, let number = Int(parts[1]), values[Substring(parts[0])] == nil else { return nil }
                values[Substring(parts[0])] = number
            }
            guard values.count == 3, let logN = values["ln"], let r = values["r"], let p = values["p"] else { return nil }
            self.init(logN: logN, r: r, p: p)
            guard self.isValid else { return nil }
        }
    }

    /// Derives `length` bytes from `password` and `salt`.
    public static func derive(password: [UInt8], salt: [UInt8], parameters: Parameters, length: Int = 32) throws -> [UInt8] {
        guard parameters.isValid else { throw CryptoError("scrypt parameters \(parameters) are out of range") }
        var key = [UInt8](repeating: 0, count: length)
        // A non-empty buffer so there is always a valid pointer; the length passed is the real one.
        let passwordStorage = password.isEmpty ? [UInt8(0)] : password
        // OpenSSL refuses anything above maxmem (32 MiB by default); N=2^17 needs 128 MiB.
        let maxMemory = parameters.memory + 1024 * 1024
        let status = passwordStorage.withUnsafeBufferPointer { passwordBuffer in
            salt.withUnsafeBufferPointer { saltBuffer in
                key.withUnsafeMutableBufferPointer { keyBuffer in
                    passwordBuffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: passwordBuffer.count) { passwordPointer in
                        EVP_PBE_scrypt(
                            passwordPointer, password.count,
                            saltBuffer.baseAddress, saltBuffer.count,
                            UInt64(1) << UInt64(parameters.logN), UInt64(parameters.r), UInt64(parameters.p),
                            maxMemory,
                            keyBuffer.baseAddress, keyBuffer.count
                        )
                    }
                }
            }
        }
        guard status == 1 else { throw CryptoError("scrypt failed (OpenSSL error \(ERR_get_error()))") }
        return key
    }
}

/// A failure inside the cryptography layer.
public struct CryptoError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
