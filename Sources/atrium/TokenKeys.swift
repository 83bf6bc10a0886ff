import AtriumCrypto
import Foundation
import Logging

/// Where the access-token key ring comes from: `ATRIUM_TOKEN_KEYS`, or a key kept in the data
/// directory (generated on first use, mode 0600), which is right for one server only.
enum TokenKeys {
    static func load(_ settings: Settings, logger: Logger) throws -> TokenKeyRing {
        if let text = settings.tokenKeys {
            do {
                return try TokenKeyRing(parsing: text)
            } catch {
                throw SettingsError("ATRIUM_TOKEN_KEYS is not valid: \(error); generate a key with `atrium keygen`")
            }
        }
        let path = URL(fileURLWithPath: settings.dataDirectory).appendingPathComponent("token-keys").path
        if let existing = try? String(contentsOfFile: path, encoding: .utf8) {
            return try TokenKeyRing(parsing: existing.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        try FileManager.default.createDirectory(atPath: settings.dataDirectory, withIntermediateDirectories: true)
        let key = TokenKeyRing.generateKey()
        guard FileManager.default.createFile(atPath: path, contents: Data((key + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw SettingsError("could not write \(path)")
        }
        if settings.databaseURL != nil {
            logger.warning("ATRIUM_TOKEN_KEYS is not set: signing with a key of this server only; every server of a deployment must share ATRIUM_TOKEN_KEYS", metadata: ["file": "\(path)"])
        } else {
            logger.info("generated an access-token signing key", metadata: ["file": "\(path)"])
        }
        return try TokenKeyRing(parsing: key)
    }
}
