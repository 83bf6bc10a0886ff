import AtriumCrypto
import AtriumText
public import Foundation
package import Logging
import PostgresPool

/// Webhook endpoints of a tenant and their deliveries (admin or above). The sending is done
/// by the HTTP layer's dispatcher, through `WebhookQueue`.
public final class WebhookService: Sendable {
    let database: Database
    public let configuration: WebhookConfiguration
    public let addresses: WebhookAddresses
    let logger: Logger

    package init(database: Database, configuration: WebhookConfiguration, logger: Logger) {
        self.database = database
        self.configuration = configuration
        self.addresses = WebhookAddresses(allowPrivate: configuration.allowPrivateAddresses)
        self.logger = logger
    }

    /// Channel on which servers learn that endpoints were added, changed or removed (sent only
    /// on commit), so a server with nothing to deliver does not ask the database.
    public static let channel = "atrium_webhooks"
    static let announce: PostgresQuery = "SELECT pg_notify('atrium_webhooks', '')"

    static let columns = """
        webhook_id, url, description, events, collections, enabled, ordered, disabled_reason,
        CASE WHEN previous_secret_until > now() THEN previous_secret_until END, created_at, updated_at
        """

    static func webhook(_ row: PostgresRow) throws -> Webhook {
        let (id, url, description, events, collections, enabled, ordered, reason, previousUntil, created, updated) =
            try row.decode((UUID, String, String, [String], [String]?, Bool, Bool, String?, Date?, Date, Date).self)
        return Webhook(
            id: id, url: url, description: description, events: events, collections: collections, enabled: enabled, ordered: ordered,
            disabledReason: reason, previousSecretUntil: previousUntil, createdAt: created, updatedAt: updated
        )
    }

    /// The settings of a create or update body, checked; `nil` for what the body leaves out.
    struct Settings {
        var url: String?
        var description: String?
        var events: [String]?
        var collections: [String]??
        var enabled: Bool?
        var ordered: Bool?
    }

    func settings(_ body: JSONValue, creating: Bool) async throws -> Settings {
        guard case .object(let object) = body else {
            throw AtriumError.invalid([.init(field: "", reason: "must be a JSON object")])
        }
        var settings = Settings()
        var failures: [AtriumError.FieldFailure] = []
        for (key, value) in object.entries {
            switch (key, value) {
            case ("url", .string(let url)):
                let (target, problem) = self.addresses.target(url)
                if let problem {
                    failures.append(.init(field: "/url", reason: problem))
                } else if let target {
                    do {
                        _ = try await self.addresses.resolve(target.host)
                        settings.url = url
                    } catch let refusal as WebhookAddresses.Refusal {
                        failures.append(.init(field: "/url", reason: refusal.reason))
                    }
                }
            case ("url", _): failures.append(.init(field: "/url", reason: "must be a string"))
            case ("description", .string(let text)) where text.count <= 500: settings.description = text
            case ("description", _): failures.append(.init(field: "/description", reason: "must be a string of at most 500 characters"))
            case ("events", .array(let items)):
                let names = items.compactMap(\.stringValue)
                if names.count == items.count, !names.isEmpty, names.allSatisfy(Webhook.eventTypes.contains) {
                    settings.events = Webhook.eventTypes.filter(names.contains)
                } else {
                    failures.append(.init(field: "/events", reason: "must be a non-empty list of \(Webhook.eventTypes.joined(separator: ", "))"))
                }
            case ("events", _): failures.append(.init(field: "/events", reason: "must be a list of event types"))
            case ("collections", .null): settings.collections = .some(nil)
            case ("collections", .array(let items)):
                let names = items.compactMap(\.stringValue)
                if names.count == items.count, !names.isEmpty, names.count <= 100, names.allSatisfy(CollectionDefinition.isValidName) {
                    settings.collections = .some(Array(Set(names)).sorted())
                } else {
                    failures.append(.init(field: "/collections", reason: "must be null (every collection) or a list of 1 to 100 collection names"))
                }
            case ("collections", _): failures.append(.init(field: "/collections", reason: "must be null or a list of collection names"))
            case ("enabled", .bool(let flag)): settings.enabled = flag
            case ("enabled", _): failures.append(.init(field: "/enabled", reason: "must be true or false"))
            case ("ordered", .bool(let flag)): settings.ordered = flag
            case ("ordered", _): failures.append(.init(field: "/ordered", reason: "must be true or false"))
            default: failures.append(.init(field: "/\(key)", reason: "is not a known field"))
            }
        }
        if creating, object["url"] == nil { failures.append(.init(field: "/url", reason: "is required")) }
        guard failures.isEmpty else { throw AtriumError.invalid(failures) }
        return settings
    }

    /// The position fan-out starts after for an endpoint created or enabled now.
    static let currentPosition = "coalesce(pg_sequence_last_value('atrium.record_changes_position_seq'), 0)"

    /// Creates an endpoint; its secret is returned this once.
    public func create(_ principal: Principal, body: JSONValue, origin: RequestOrigin) async throws -> (webhook: Webhook, secret: String) {
        try principal.require(.admin)
        let settings = try await self.settings(body, creating: true)
        let id = SecureRandom.uuid()
        let secret = WebhookSignature.makeSecret()
        let tenant = principal.tenant.tenantID
        let results = try await self.database.transaction(in: principal.tenant, [
            // One creation at a time per tenant, so the cap holds.
            "SELECT pg_advisory_xact_lock(hashtextextended('atrium.webhooks:' || \(tenant.lowercasedString), 0))",
            """
            INSERT INTO atrium.webhooks (tenant_id, webhook_id, url, description, events, collections, enabled, ordered, secret, after_position)
            SELECT \(tenant), \(id), \(settings.url ?? ""), \(settings.description ?? ""), \(settings.events ?? Webhook.eventTypes)::text[],
                   \(settings.collections ?? nil)::text[], \(settings.enabled ?? true), \(settings.ordered ?? false), \(secret), \(unescaped: Self.currentPosition)
            WHERE (SELECT count(*) FROM atrium.webhooks WHERE tenant_id = \(tenant)) < \(self.configuration.maximumEndpoints)
            RETURNING \(unescaped: Self.columns)
            """,
            AuthEvent.insert("webhook_created", tenant: tenant, user: principal.userID, apiKey: principal.apiKeyID, subject: id, origin: origin,
                             detail: ["url": settings.url ?? ""]),
            Self.announce,
        ])
        guard let row = results[1].single else {
            throw AtriumError(.conflict, "a tenant can have at most \(self.configuration.maximumEndpoints) webhooks", reason: "webhook_limit")
        }
        return (try Self.webhook(row), secret)
    }

    /// The tenant's endpoints, oldest first.
    public func list(_ principal: Principal) async throws -> [Webhook] {
        try principal.require(.admin)
        let rows = try await self.database.query(in: principal.tenant, """
            SELECT \(unescaped: Self.columns) FROM atrium.webhooks WHERE tenant_id = \(principal.tenant.tenantID) ORDER BY created_at, webhook_id
            """)
        return try rows.map(Self.webhook)
    }

    public func get(_ principal: Principal, id: UUID) async throws -> Webhook {
        try principal.require(.admin)
        let rows = try await self.database.query(in: principal.tenant, """
            SELECT \(unescaped: Self.columns) FROM atrium.webhooks WHERE tenant_id = \(principal.tenant.tenantID) AND webhook_id = \(id)
            """)
        guard let row = rows.single else { throw AtriumError.notFound("webhook") }
        return try Self.webhook(row)
    }

    /// Changes what the body names. Enabling a disabled endpoint starts from the changes made
    /// from then on (those made while it was off are not sent).
    public func update(_ principal: Principal, id: UUID, body: JSONValue, origin: RequestOrigin) async throws -> Webhook {
        try principal.require(.admin)
        let settings = try await self.settings(body, creating: false)
        let tenant = principal.tenant.tenantID
        let results = try await self.database.transaction(in: principal.tenant, [
            """
            UPDATE atrium.webhooks w SET
                url = coalesce(\(settings.url), w.url),
                description = coalesce(\(settings.description), w.description),
                events = coalesce(\(settings.events)::text[], w.events),
                collections = CASE WHEN \(settings.collections != nil) THEN \(settings.collections ?? nil)::text[] ELSE w.collections END,
                ordered = coalesce(\(settings.ordered), w.ordered),
                after_position = CASE WHEN \(settings.enabled == true) AND NOT w.enabled THEN \(unescaped: Self.currentPosition) ELSE w.after_position END,
                disabled_reason = CASE WHEN \(settings.enabled != nil) THEN NULL ELSE w.disabled_reason END,
                enabled = coalesce(\(settings.enabled), w.enabled),
                updated_at = now()
            WHERE w.tenant_id = \(tenant) AND w.webhook_id = \(id)
            RETURNING \(unescaped: Self.columns)
            """,
            AuthEvent.insert("webhook_updated", tenant: tenant, user: principal.userID, apiKey: principal.apiKeyID, subject: id, origin: origin),
            Self.announce,
        ])
        guard let row = results[0].single else { throw AtriumError.notFound("webhook") }
        return try Self.webhook(row)
    }

    /// Deletes an endpoint with its deliveries; nothing more is sent to it.
    public func delete(_ principal: Principal, id: UUID, origin: RequestOrigin) async throws {
        try principal.require(.admin)
        let tenant = principal.tenant.tenantID
        let results = try await self.database.transaction(in: principal.tenant, [
            "DELETE FROM atrium.webhooks WHERE tenant_id = \(tenant) AND webhook_id = \(id)",
            AuthEvent.insert("webhook_deleted", tenant: tenant, user: principal.userID, apiKey: principal.apiKeyID, subject: id, origin: origin),
            Self.announce,
        ])
        guard results[0].affectedRows == 1 else { throw AtriumError.notFound("webhook") }
    }

    /// A new secret, returned this once. The old one keeps signing too (every delivery carries
    /// both signatures) for `overlap`, so receivers can switch without losing a delivery.
    public func rotateSecret(_ principal: Principal, id: UUID, overlap: Duration?, origin: RequestOrigin) async throws -> (webhook: Webhook, secret: String) {
        try principal.require(.admin)
        let overlap = overlap ?? self.configuration.defaultOverlap
        guard overlap >= .zero, overlap <= self.configuration.maximumOverlap else {
            throw AtriumError.invalid([.init(field: "/overlapSeconds", reason: "must be 0 to \(self.configuration.maximumOverlap.components.seconds)")])
        }
        let secret = WebhookSignature.makeSecret()
        let tenant = principal.tenant.tenantID
        let results = try await self.database.transaction(in: principal.tenant, [
            """
            UPDATE atrium.webhooks w SET previous_secret = w.secret, secret = \(secret),
                previous_secret_until = now() + \(Double(overlap.components.seconds))::float8 * interval '1 second', updated_at = now()
            WHERE w.tenant_id = \(tenant) AND w.webhook_id = \(id)
            RETURNING \(unescaped: Self.columns)
            """,
            AuthEvent.insert("webhook_secret_rotated", tenant: tenant, user: principal.userID, apiKey: principal.apiKeyID, subject: id, origin: origin,
                             detail: ["overlapSeconds": "\(overlap.components.seconds)"]),
        ])
        guard let row = results[0].single else { throw AtriumError.notFound("webhook") }
        return (try Self.webhook(row), secret)
    }
}
