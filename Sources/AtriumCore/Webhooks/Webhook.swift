import AtriumCrypto
public import Foundation

/// A webhook endpoint of a tenant, as admins see it (never with its secret).
public struct Webhook: Sendable {
    public static let eventTypes = ["record.created", "record.updated", "record.deleted"]

    public let id: UUID
    public let url: String
    public let description: String
    public let events: [String]
    /// Collections whose changes are sent; nil for all.
    public let collections: [String]?
    public let enabled: Bool
    /// One delivery at a time, in change order.
    public let ordered: Bool
    /// Why the server disabled it (a 410 Gone answer); nil otherwise.
    public let disabledReason: String?
    /// Until when deliveries are also signed with the secret before the last rotation.
    public let previousSecretUntil: Date?
    public let createdAt: Date
    public let updatedAt: Date
}

/// One delivery of a change (or a test) to an endpoint.
public struct WebhookDelivery: Sendable {
    public enum Status: String, Sendable {
        /// Waiting for its next attempt.
        case pending
        /// An attempt is in flight.
        case delivering
        case succeeded
        /// Given up: the retries ran out, the endpoint answered 410, or the change had expired.
        case failed
    }

    public let id: UUID
    public let webhookID: UUID
    public let eventType: String
    /// The change's position in the log (nil for a test).
    public let position: Int64?
    public let status: Status
    public let attempts: Int
    /// When the next attempt is due (pending only).
    public let nextAttemptAt: Date?
    public let lastAttemptAt: Date?
    public let responseStatus: Int?
    /// The first 1 KiB of the last answer.
    public let responseBody: String?
    public let durationMilliseconds: Int?
    public let error: String?
    public let createdAt: Date
    public let completedAt: Date?

    /// The `webhook-id` header: the same on every attempt, so receivers can drop repeats.
    public var messageID: String { Self.messageID(self.id) }

    public static func messageID(_ id: UUID) -> String {
        "msg_" + id.uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    }
}

/// Signing per the Standard Webhooks specification: `v1,` and the base64 HMAC-SHA256 of
/// `id.timestamp.body` keyed with the secret's bytes (`whsec_` and base64).
public enum WebhookSignature {
    static let secretPrefix = "whsec_"

    /// A new secret: 32 random bytes.
    public static func makeSecret() -> String {
        Self.secretPrefix + Self.paddedBase64(SecureRandom.bytes(32))
    }

    /// The `webhook-signature` header for `body`, with one signature per secret (the current one
    /// first; during a rotation's overlap the previous one too), separated by spaces.
    public static func header(secrets: [String], id: String, timestamp: Int, body: [UInt8]) -> String {
        var message = Array("\(id).\(timestamp).".utf8)
        message.append(contentsOf: body)
        return secrets.compactMap { secret -> String? in
            guard let key = Self.key(secret) else { return nil }
            return "v1," + Self.paddedBase64(HMACSHA256.authenticationCode(for: message, key: key))
        }.joined(separator: " ")
    }

    static func key(_ secret: String) -> [UInt8]? {
        guard secret.hasPrefix(Self.secretPrefix) else { return nil }
        var text = secret.dropFirst(Self.secretPrefix.count)
        while text.hasSuffix("=") { text = text.dropLast() }
        return Base64.decode(text, alphabet: .standard)
    }

    /// Base64 with padding, as the specification's libraries expect.
    static func paddedBase64(_ bytes: [UInt8]) -> String {
        let text = Base64.encode(bytes, alphabet: .standard)
        return text + String(repeating: "=", count: (4 - text.utf8.count % 4) % 4)
    }
}
