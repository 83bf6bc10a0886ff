import AtriumCrypto

/// Request ids: the client's `X-Request-ID` when it is well formed, otherwise a new random one.
enum RequestIdentifier {
    /// The logger metadata key holding the request id (Hummingbird's own).
    static let metadataKey = "hb.request.id"

    /// 16 random bytes as hex: unique without coordination, and nothing to guess from.
    static func generate() -> String {
        Hex.encode(SecureRandom.bytes(16))
    }

    /// Accepts 1 to 128 characters of letters, digits, `-`, `_`, `.` and `:`, nothing that could
    /// forge log lines or headers.
    static func isWellFormed(_ candidate: Substring) -> Bool {
        guard !candidate.isEmpty, candidate.utf8.count <= 128 else { return false }
        return candidate.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
                UInt8(ascii: "."), UInt8(ascii: ":"):
                true
            default:
                false
            }
        }
    }
}
