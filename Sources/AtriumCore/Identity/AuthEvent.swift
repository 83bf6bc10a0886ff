import Foundation
import PostgresPool

/// Appends to the audit trail (`atrium.auth_events`) inside the caller's tenant transaction.
enum AuthEvent {
    static func insert(
        _ kind: String,
        tenant: UUID,
        user: UUID? = nil,
        apiKey: UUID? = nil,
        subject: UUID? = nil,
        origin: RequestOrigin?,
        detail: [String: String] = [:]
    ) -> PostgresQuery {
        """
        INSERT INTO atrium.auth_events (tenant_id, kind, user_id, api_key_id, subject_id, client_address, request_id, detail)
        VALUES (\(tenant), \(kind), \(user), \(apiKey), \(subject), \(origin?.clientAddress), \(origin?.requestID), \(Self.json(detail))::jsonb)
        """
    }

    /// An account-level event (no tenant), through the definer function.
    static func account(_ kind: String, user: UUID?, origin: RequestOrigin, detail: [String: String] = [:]) -> PostgresQuery {
        "SELECT atrium.auth_record_account_event(\(kind), \(user), \(origin.clientAddress), \(origin.requestID), \(Self.json(detail))::jsonb)"
    }

    static func json(_ detail: [String: String]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: detail, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
