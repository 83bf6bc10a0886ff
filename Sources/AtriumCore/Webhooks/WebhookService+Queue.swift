import AtriumText
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

/// An attempt's outcome, ready to be stored with others.
public struct RecordedOutcome: Sendable {
    let json: JSONValue
}

/// The work of every tenant's webhooks, shared by the servers through PostgreSQL (the
/// SECURITY DEFINER functions of migration 012).
extension WebhookService {
    /// Whether any tenant has an enabled endpoint.
    public func anyEnabled() async throws -> Bool {
        try await self.database.unscopedTransaction(["SELECT atrium.webhooks_enabled()"])[0][0].decode(Bool.self, column: 0)
    }

    /// Turns the changes up to a settled horizon into deliveries; returns how many were made,
    /// or nil when a writer of the horizon kept running past `patience` (call again later).
    /// The horizon is taken once and waited for: writes keep coming, so a fresh horizon would
    /// always find new writers in flight.
    public func fanOut(patience: Duration = .seconds(2)) async throws -> Int? {
        let horizon = try await self.database.unscopedTransaction(["SELECT through, writers FROM atrium.change_horizon()"])[0][0]
        let (through, writers) = try horizon.decode((Int64, [String]).self)
        let deadline = ContinuousClock.now + patience
        var wait = Duration.milliseconds(1)
        while true {
            let made = try await self.database.unscopedTransaction([
                "SELECT atrium.webhook_fanout(\(through), \(writers)::text[], \(self.configuration.fanoutBatch))",
            ])[0][0].decode(Int.self, column: 0)
            if made >= 0 { return made }
            guard ContinuousClock.now < deadline else { return nil }
            try await Task.sleep(for: wait)
            wait = min(wait * 2, .milliseconds(50))
        }
    }

    /// Leases up to `limit` due deliveries for this server, which has `busyWebhooks` and
    /// `busyTenants` attempts in flight (per endpoint and per tenant).
    public func claim(limit: Int, busyWebhooks: [UUID: Int] = [:], busyTenants: [UUID: Int] = [:]) async throws -> [ClaimedDelivery] {
        let lease = Double(self.configuration.lease.components.seconds)
        let webhooks = Array(busyWebhooks)
        let tenants = Array(busyTenants)
        let rows = try await self.database.unscopedTransaction([
            """
            SELECT * FROM atrium.claim_webhook_deliveries(\(lease)::float8 * interval '1 second', \(limit),
                \(self.configuration.perEndpoint), \(self.configuration.perTenant),
                \(webhooks.map(\.key.lowercasedString))::uuid[], \(webhooks.map { String($0.value) })::int[],
                \(tenants.map(\.key.lowercasedString))::uuid[], \(tenants.map { String($0.value) })::int[])
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

    /// What to record of an attempt: success, a retry after the schedule's next wait (with
    /// ±20 % jitter, so endpoints that failed together do not come back together), or failure
    /// once the schedule has run out.
    public func record(_ delivery: ClaimedDelivery, _ outcome: DeliveryOutcome) -> RecordedOutcome {
        var status = "failed"
        var retryIn = 0.0
        switch outcome.kind {
        case .succeeded:
            status = "succeeded"
        case .gone, .undeliverable:
            break
        case .failed:
            let schedule = self.configuration.retrySchedule
            if delivery.attempt <= schedule.count {
                status = "pending"
                let wait = schedule[delivery.attempt - 1]
                retryIn = (Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18) * Double.random(in: 0.8...1.2)
            }
        }
        let milliseconds = Int(outcome.duration.components.seconds * 1000 + outcome.duration.components.attoseconds / 1_000_000_000_000_000)
        var body = outcome.responseBody.map { String(String.UnicodeScalarView($0.unicodeScalars.filter { $0 != "\0" })) }
        while let text = body, text.utf8.count > 1024 { body = String(text.dropLast()) }
        return RecordedOutcome(json: .object(JSONObject([
            ("tenant_id", .string(delivery.tenant.lowercasedString)),
            ("delivery_id", .string(delivery.id.lowercasedString)),
            ("lease", .string(delivery.lease.lowercasedString)),
            ("status", .string(status)),
            ("retry_in", .number(JSONNumber(retryIn))),
            ("gone", .bool(outcome.kind == .gone)),
            ("response_status", outcome.responseStatus.map { .number(JSONNumber(Int64($0))) } ?? .null),
            ("response_body", body.map(JSONValue.string) ?? .null),
            ("duration_ms", .number(JSONNumber(Int64(milliseconds)))),
            ("error", outcome.error.map { .string(String($0.prefix(500))) } ?? .null),
        ])))
    }

    /// Stores outcomes, in one statement for any number of them; each only by the holder of
    /// the delivery's lease (one whose lease ran out and was claimed again records nothing).
    public func complete(_ outcomes: [RecordedOutcome]) async throws {
        guard !outcomes.isEmpty else { return }
        let json = JSONSerializer.text(.array(outcomes.map(\.json)))
        _ = try await self.database.unscopedTransaction(["SELECT atrium.complete_webhook_deliveries(\(json)::jsonb)"])
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
