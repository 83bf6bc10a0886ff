public import Foundation
import PostgresPool

/// A delivery this server has leased and must send, then report with `complete`.
public struct ClaimedDelivery: Sendable {
    public let tenant: UUID
    public let id: UUID
    public let webhookID: UUID
    public let url: String
    /// The current secret, then the previous one while a rotation overlaps.
    public let secrets: [String]
    /// This attempt's number, from 1.
    public let attempt: Int
    public let eventType: String
    /// The body of a test delivery.
    public let payload: String?
    /// The change delivered; nil for a test, or when retention removed it meanwhile.
    public let change: Change?
    let lease: UUID

    public var messageID: String { WebhookDelivery.messageID(self.id) }
}

/// How an attempt ended.
public struct DeliveryOutcome: Sendable {
    public enum Kind: Sendable {
        /// A 2xx answer.
        case succeeded
        /// Anything else: retried while the schedule lasts.
        case failed
        /// 410 Gone: the endpoint is disabled and the delivery fails.
        case gone
        /// Cannot be sent at all (its change is past retention): fails at once.
        case undeliverable
    }

    public var kind: Kind
    public var responseStatus: Int?
    public var responseBody: String?
    public var duration: Duration
    public var error: String?

    public init(kind: Kind, responseStatus: Int? = nil, responseBody: String? = nil, duration: Duration, error: String? = nil) {
        self.kind = kind
        self.responseStatus = responseStatus
        self.responseBody = responseBody
        self.duration = duration
        self.error = error
    }
}

/// The work of every tenant's webhooks, shared by the servers through PostgreSQL (the
/// SECURITY DEFINER functions of migration 012).
extension WebhookService {
    /// Whether any tenant has an enabled endpoint.
    public func anyEnabled() async throws -> Bool {
        try await self.database.unscopedTransaction(["SELECT atrium.webhooks_enabled()"])[0][0].decode(Bool.self, column: 0)
    }

    /// Turns the changes up to a settled horizon into deliveries; returns how many were made,
    /// or nil when a writer of the horizon was still running (call again shortly).
    public func fanOut() async throws -> Int? {
        let horizon = try await self.database.unscopedTransaction(["SELECT through, writers FROM atrium.change_horizon()"])[0][0]
        let (through, writers) = try horizon.decode((Int64, [String]).self)
        let made = try await self.database.unscopedTransaction([
            "SELECT atrium.webhook_fanout(\(through), \(writers)::text[], \(self.configuration.fanoutBatch))",
        ])[0][0].decode(Int.self, column: 0)
        return made < 0 ? nil : made
    }

    /// Leases up to `limit` due deliveries for this server.
    public func claim(limit: Int) async throws -> [ClaimedDelivery] {
        let lease = Double(self.configuration.lease.components.seconds)
        let rows = try await self.database.unscopedTransaction([
            """
            SELECT * FROM atrium.claim_webhook_deliveries(\(lease)::float8 * interval '1 second', \(limit),
                \(self.configuration.perEndpoint), \(self.configuration.perTenant))
            """,
        ])[0]
        return try rows.map { row in
            let (tenant, id, webhook, url, secret, previous, attempt, event, payload, lease, _) =
                try row.decode((UUID, UUID, UUID, String, String, String?, Int, String, String?, UUID, Int64?).self)
            let change = try row.decode(Int64?.self, column: 11) == nil ? nil : try Change(row: row, from: 11)
            return ClaimedDelivery(
                tenant: tenant, id: id, webhookID: webhook, url: url, secrets: [secret] + (previous.map { [$0] } ?? []),
                attempt: attempt, eventType: event, payload: payload, change: change, lease: lease
            )
        }
    }

    /// Records how an attempt ended: success, a retry after the schedule's next wait (with
    /// ±20 % jitter, so endpoints that failed together do not come back together), or failure
    /// once the schedule has run out. Only the holder of the lease can record it.
    public func complete(_ delivery: ClaimedDelivery, _ outcome: DeliveryOutcome) async throws {
        let status: String
        var retryIn: Double = 0
        switch outcome.kind {
        case .succeeded:
            status = "succeeded"
        case .gone, .undeliverable:
            status = "failed"
        case .failed:
            let schedule = self.configuration.retrySchedule
            if delivery.attempt <= schedule.count {
                status = "pending"
                let wait = schedule[delivery.attempt - 1]
                retryIn = (Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18) * Double.random(in: 0.8...1.2)
            } else {
                status = "failed"
            }
        }
        let milliseconds = Int(outcome.duration.components.seconds * 1000 + outcome.duration.components.attoseconds / 1_000_000_000_000_000)
        var body = outcome.responseBody.map { String($0.unicodeScalars.filter { $0 != "\0" }.map(Character.init)) }
        while let text = body, text.utf8.count > 1024 { body = String(text.dropLast()) }
        var statements: [PostgresQuery] = [
            """
            UPDATE atrium.webhook_deliveries SET status = \(status), lease = NULL,
                next_attempt_at = CASE WHEN \(status) = 'pending' THEN now() + \(retryIn)::float8 * interval '1 second' ELSE next_attempt_at END,
                completed_at = CASE WHEN \(status) = 'pending' THEN NULL ELSE now() END,
                response_status = \(outcome.responseStatus), response_body = \(body), duration_ms = \(milliseconds), error = \(outcome.error.map { String($0.prefix(500)) })
            WHERE tenant_id = \(delivery.tenant) AND delivery_id = \(delivery.id) AND lease = \(delivery.lease)
            """,
        ]
        if outcome.kind == .gone {
            statements.append("""
                UPDATE atrium.webhooks SET enabled = false, disabled_reason = 'the endpoint answered 410 Gone', updated_at = now()
                WHERE tenant_id = \(delivery.tenant) AND webhook_id = \(delivery.webhookID)
                """)
            statements.append(Self.announce)
        }
        _ = try await self.database.transaction(in: TenantContext(tenantID: delivery.tenant), statements)
    }

    /// Deletes finished deliveries older than the retention, in batches.
    public func prune() async throws -> Int {
        var removed = 0
        for _ in 0..<20 {
            let batch = try await self.database.unscopedTransaction([
                "SELECT atrium.prune_webhook_deliveries(\(self.configuration.retention.components.seconds)::float8 * interval '1 second', 10000)",
            ])[0][0].decode(Int.self, column: 0)
            removed += batch
            if batch < 10000 { break }
        }
        return removed
    }
}
