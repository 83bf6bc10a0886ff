import AtriumCrypto
public import Foundation
import PostgresPool

/// One-time tickets for the event stream. A browser's `EventSource` cannot send an
/// Authorization header, so a client trades its credential for a ticket (valid 60 seconds,
/// usable once, stored only as a hash) and puts it in the stream's URL. Tickets live in
/// PostgreSQL, so a ticket made on one server opens a stream on any other.
public struct EventTickets: Sendable {
    static let prefix = "evt_"
    /// How long a ticket can be redeemed.
    public static let lifetime: Duration = .seconds(60)

    let database: Database
    let revocations: RevocationSet

    public init(database: Database, revocations: RevocationSet) {
        self.database = database
        self.revocations = revocations
    }

    /// A ticket standing for `principal` until it is used; the stream it opens ends at
    /// `streamUntil` (the access token's expiry) if given.
    public func issue(for principal: Principal, streamUntil: Date?) async throws -> (ticket: String, expiresAt: Date) {
        let ticket = RandomToken.make(prefix: Self.prefix)
        let expiresAt = Date().addingTimeInterval(Double(Self.lifetime.components.seconds))
        _ = try await self.database.transaction(in: principal.tenant, [
            """
            INSERT INTO atrium.event_tickets (ticket_hash, tenant_id, role, user_id, session_id, api_key_id, valid_until, stream_until)
            VALUES (\(RandomToken.digest(ticket)), \(principal.tenant.tenantID), \(principal.role.rawValue), \(principal.userID),
                    \(principal.sessionID), \(principal.apiKeyID), \(expiresAt), \(streamUntil))
            """,
        ])
        return (ticket, expiresAt)
    }

    /// The principal a ticket stands for, and when its stream must end; the ticket is used up.
    /// - Throws: `unauthenticated` for a ticket that is unknown, used, expired or whose
    ///   session has been revoked since.
    public func redeem(_ ticket: String) async throws -> (principal: Principal, streamUntil: Date?) {
        let invalid = AtriumError(.unauthenticated, "the event ticket is not valid (tickets last 60 seconds and open one stream)", reason: "invalid_ticket")
        guard ticket.hasPrefix(Self.prefix), ticket.utf8.count < 100 else { throw invalid }
        let rows = try await self.database.unscopedTransaction([
            "SELECT tenant_id, role, user_id, session_id, api_key_id, stream_until, valid FROM atrium.redeem_event_ticket(\(RandomToken.digest(ticket)))",
        ])[0]
        guard let row = rows.single else { throw invalid }
        let (tenant, roleName, user, session, key, streamUntil, valid) = try row.decode((UUID, String, UUID?, UUID?, UUID?, Date?, Bool).self)
        guard valid else { throw invalid }
        if let streamUntil, streamUntil <= Date() { throw invalid }
        let credential: Principal.Credential
        if let user, let session, !self.revocations.contains(session) {
            credential = .session(userID: user, sessionID: session)
        } else if let key {
            credential = .apiKey(keyID: key)
        } else {
            throw invalid
        }
        return (Principal(tenant: TenantContext(tenantID: tenant), role: Role(rawValue: roleName) ?? .viewer, credential: credential), streamUntil)
    }
}
