import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// A certificate for localhost (EC P-256, SAN localhost, 127.0.0.1 and ::1) made with
/// OpenSSL, for `--tls-self-signed` and tests.
public struct SelfSignedCertificate: Sendable {
    public let certificatePEM: String
    public let keyPEM: String
    /// SHA-256 of the certificate's DER, as `AB:CD:…` (what browsers show).
    public let fingerprint: String

    public struct Failure: Error, CustomStringConvertible {
        public var description: String { "could not create a self-signed certificate" }
    }

    /// A new key and a certificate valid from an hour ago for `days` days.
    public static func make(days: Int = 30) throws -> SelfSignedCertificate {
        var certificatePEM: UnsafeMutablePointer<CChar>?
        var keyPEM: UnsafeMutablePointer<CChar>?
        var digest = [UInt8](repeating: 0, count: 32)
        guard atrium_make_self_signed(Int32(days), &certificatePEM, &keyPEM, &digest) == 1, let certificatePEM, let keyPEM else {
            throw Failure()
        }
        defer {
            free(certificatePEM)
            free(keyPEM)
        }
        return SelfSignedCertificate(certificatePEM: String(cString: certificatePEM), keyPEM: String(cString: keyPEM), fingerprint: Self.fingerprint(digest))
    }

    /// A SHA-256 digest as upper-case hex pairs separated by colons.
    public static func fingerprint(_ digest: [UInt8]) -> String {
        digest.map { Hex.encode([$0]).uppercased() }.joined(separator: ":")
    }
}
