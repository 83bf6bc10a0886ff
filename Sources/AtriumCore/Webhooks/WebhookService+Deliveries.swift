import AtriumCrypto
import AtriumText
public import Foundation
import PostgresPool

extension WebhookService {
    static let deliveryColumns = """
        delivery_id, webhook_id, event_type, position, status, lease IS NOT NULL AND lease_until > now(), attempts,
        next_attempt_at, last_attempt_at, response_status, response_body, duration_ms, error, created_at, completed_at
        """

    static func delivery(_ row: PostgresRow) throws -> WebhookDelivery {
        let (id, webhook, event, position, statusName, inFlight, attempts, next, last, responseStatus, body, duration, error, created, completed) =
            try row.decode((UUID, UUID, String, Int64?, String, Bool, Int, Date, Date?, Int?, String?, Int?, String?, Date, Date?).self)
        var status = WebhookDelivery.Status(rawValue: statusName) ?? .failed
        if status == .pending, inFlight { status = .delivering }
        return WebhookDelivery(
            id: id, webhookID: webhook, eventType: event, position: position, status: status, attempts: attempts,
            nextAttemptAt: status == .pending ? next : nil, lastAttemptAt: last, responseStatus: responseStatus, responseBody: body,
            durationMilliseconds: duration, error: error, createdAt: created, completedAt: completed
        )
    }

    /// An endpoint's deliveries, newest first: at most `limit`, older than the delivery `before`
    /// when given, of one status when given.
    public func deliveries(
        _ principal: Principal, webhook: UUID, status: WebhookDelivery.Status?, before: UUID?, limit: Int
    ) async throws -> [WebhookDelivery] {
        try principal.require(.admin)
        let tenant = principal.tenant.tenantID
        let statusFilter: PostgresQuery = switch status {
        case nil: "true"
        case .delivering: "status = 'pending' AND lease IS NOT NULL AND lease_until > now()"
        case .pending: "status = 'pending' AND NOT (lease IS NOT NULL AND lease_until > now())"
        case .succeeded: "status = 'succeeded'"
        case .failed: "status = 'failed'"
        }
        let results = try await self.database.transaction(in: principal.tenant, [
            "SELECT 1 FROM atrium.webhooks WHERE tenant_id = \(tenant) AND webhook_id = \(webhook)",
            """
            SELECT \(unescaped: Self.deliveryColumns) FROM atrium.webhook_deliveries d
            WHERE tenant_id = \(tenant) AND webhook_id = \(webhook) AND \(unescaped: statusFilter.sql)
              AND (\(before)::uuid IS NULL OR (created_at, delivery_id) < (
                  SELECT b.created_at, b.delivery_id FROM atrium.webhook_deliveries b WHERE b.tenant_id = \(tenant) AND b.delivery_id = \(before)::uuid))
            ORDER BY created_at DESC, delivery_id DESC
            LIMIT \(limit)
            """,
        ])
        guard results[0].single != nil else { throw AtriumError.notFound("webhook") }
        return try results[1].map(Self.delivery)
    }

    /// Sends a delivery again now (one more attempt; if it fails and its retries had run out it
    /// fails again). One in flight cannot be retried.
    public func retry(_ principal: Principal, webhook: UUID, delivery: UUID) async throws -> WebhookDelivery {
        try principal.require(.admin)
        let tenant = principal.tenant.tenantID
        let results = try await self.database.transaction(in: principal.tenant, [
            """
            UPDATE atrium.webhook_deliveries SET status = 'pending', next_attempt_at = now(), lease = NULL, lease_until = NULL, completed_at = NULL
            WHERE tenant_id = \(tenant) AND webhook_id = \(webhook) AND delivery_id = \(delivery)
              AND NOT (status = 'pending' AND lease IS NOT NULL AND lease_until > now())
            RETURNING \(unescaped: Self.deliveryColumns)
            """,
            "SELECT 1 FROM atrium.webhook_deliveries WHERE tenant_id = \(tenant) AND webhook_id = \(webhook) AND delivery_id = \(delivery)",
        ])
        if let row = results[0].single { return try Self.delivery(row) }
        guard results[1].single != nil else { throw AtriumError.notFound("delivery") }
        throw AtriumError(.conflict, "an attempt of this delivery is in flight; retry it when it has finished", reason: "delivery_in_flight")
    }

    /// A `webhook.test` delivery to the endpoint, sent like any other (signed, retried).
    public func sendTest(_ principal: Principal, webhook: UUID) async throws -> WebhookDelivery {
        try principal.require(.admin)
        let tenant = principal.tenant.tenantID
        let id = SecureRandom.uuid()
        var payload: [UInt8] = []
        JSONSerializer.write(.object(JSONObject([
            ("type", .string("webhook.test")),
            ("timestamp", .string(RFC3339.string(Date()))),
            ("data", .object(JSONObject([("webhookId", .string(webhook.lowercasedString))]))),
        ])), into: &payload)
        let results = try await self.database.transaction(in: principal.tenant, [
            """
            INSERT INTO atrium.webhook_deliveries (tenant_id, delivery_id, webhook_id, event_type, payload)
            SELECT \(tenant), \(id), w.webhook_id, 'webhook.test', \(String(decoding: payload, as: UTF8.self))
            FROM atrium.webhooks w WHERE w.tenant_id = \(tenant) AND w.webhook_id = \(webhook)
            RETURNING \(unescaped: Self.deliveryColumns)
            """,
        ])
        guard let row = results[0].single else { throw AtriumError.notFound("webhook") }
        return try Self.delivery(row)
    }
}
