import AtriumCrypto
import Foundation
import PostgresPool

/// An idempotency key and the request it came with: the same key with the same request
/// gets the first answer again; with another request, it is refused.
public struct IdempotencyRequest: Sendable {
    public let key: String
    /// What the caller calls the key, for error messages.
    public let name: String
    /// SHA-256 over what identifies the request (`target`, opaque here) and the body's canonical JSON.
    public let fingerprint: String

    public init?(key: String, named name: String, target: String, body: JSONValue) {
        guard (1...255).contains(key.utf8.count), key.unicodeScalars.allSatisfy({ $0.value >= 0x21 && $0.value <= 0x7E }) else { return nil }
        self.key = key
        self.name = name
        self.fingerprint = Hex.encode(SHA256.hash(Array((target + "\n").utf8) + JSONSerializer.bytes(body)))
    }
}

/// Stored answers for idempotent creates.
enum Idempotency {
    static let lifetime = "24 hours"

    /// Claims the key, then runs `write`; a key already used (within 24 hours) returns the
    /// first response instead, or fails validation if it came with a different request.
    ///
    /// Two requests racing with one key serialise on the key's row: the second waits for the
    /// first to commit (and replays its answer) or roll back (and takes its place).
    static func perform(
        _ request: IdempotencyRequest, principal: Principal, in transaction: PostgresTransaction, write: () async throws -> StoredResponse
    ) async throws -> StoredResponse {
        let tenant = principal.tenant.tenantID
        let caller = Actor(principal).id
        let claimed = try await transaction.query("""
            INSERT INTO atrium.idempotency_keys (tenant_id, principal_id, idempotency_key, request_hash, status, headers, body)
            VALUES (\(tenant), \(caller), \(request.key), \(request.fingerprint), 0, '[]', '')
            ON CONFLICT (tenant_id, principal_id, idempotency_key) DO UPDATE
                SET request_hash = excluded.request_hash, status = 0, headers = '[]', body = '', created_at = now()
                WHERE atrium.idempotency_keys.created_at < now() - interval '24 hours'
            RETURNING 1
            """)
        guard claimed.isEmpty else {
            let response = try await write()
            let headers = JSONValue.array(response.headers.map { .array([.string($0.name), .string($0.value)]) })
            _ = try await transaction.query("""
                UPDATE atrium.idempotency_keys SET status = \(response.status), headers = \(JSONSerializer.text(headers))::jsonb, body = \(response.body)
                WHERE tenant_id = \(tenant) AND principal_id = \(caller) AND idempotency_key = \(request.key)
                """)
            return response
        }
        let stored = try await transaction.query("""
            SELECT request_hash, status, headers, body FROM atrium.idempotency_keys
            WHERE tenant_id = \(tenant) AND principal_id = \(caller) AND idempotency_key = \(request.key)
            """)
        guard let row = stored.single else { throw AtriumError(.conflict, "the \(request.name) is in use; retry", reason: "idempotency_key_in_use") }
        let (fingerprint, status, headersText, body) = try row.decode((String, Int, String, String).self)
        guard fingerprint == request.fingerprint else {
            throw AtriumError.invalid([.init(field: request.name, reason: "was already used with a different request in the last 24 hours")])
        }
        var headers: [(name: String, value: String)] = []
        if case .array(let pairs) = try JSONParser.parse(headersText, limits: .stored) {
            for pair in pairs {
                if case .array(let parts) = pair, parts.count == 2, let name = parts[0].stringValue, let value = parts[1].stringValue {
                    headers.append((name, value))
                }
            }
        }
        var response = StoredResponse(status: status, headers: headers, body: body)
        response.replayed = true
        return response
    }
}
