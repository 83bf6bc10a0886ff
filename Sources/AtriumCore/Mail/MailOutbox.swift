import AtriumText
import Foundation
import Logging
public import PostgresPool

/// The outbox (migration 013): mails are written by the transaction that causes them and sent by
/// any server that leases them.
public struct MailOutbox: Sendable {
    public static let channel = "atrium_mail"

    let database: Database
    /// Waits before the attempts after the first; after the last the mail is given up.
    public var retrySchedule: [Duration]
    /// How long a claim holds a mail: longer than any one attempt may take.
    public var lease: Duration

    public init(database: Database, retrySchedule: [Duration] = MailOutbox.defaultRetrySchedule, lease: Duration = .seconds(180)) {
        self.database = database
        self.retrySchedule = retrySchedule
        self.lease = lease
    }

    /// 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h: about 16 hours in all.
    public static let defaultRetrySchedule: [Duration] = [30, 120, 600, 1800, 3600, 7200, 14_400, 28_800].map { .seconds($0) }

    /// The statement that writes `mail` into the outbox, to run in the causing transaction.
    public static func enqueue(_ mail: OutgoingMail) -> PostgresQuery {
        """
        SELECT atrium.mail_enqueue(\(mail.id), \(mail.tenant), \(mail.kind.rawValue), \(mail.recipient), \(mail.subject), \(mail.text), \(mail.html))
        """
    }

    /// Leases up to `limit` due mails.
    public func claim(limit: Int) async throws -> [ClaimedMail] {
        let seconds = Int(self.lease.seconds.rounded(.up))
        let rows = try await self.database.unscopedTransaction([
            "SELECT mail_id, lease, kind, recipient, subject, text_body, html_body, attempts, created_at FROM atrium.mail_claim(make_interval(secs => \(seconds)), \(limit))",
        ])[0]
        return try rows.compactMap { row in
            let (id, lease, kind, recipient, subject) = try row.decode((UUID, UUID, String, String, String).self)
            let text = try row.decode(String?.self, column: 5) ?? ""
            let html = try row.decode(String?.self, column: 6) ?? ""
            let attempts = try row.decode(Int.self, column: 7)
            let createdAt = try row.decode(Date.self, column: 8)
            guard let kind = OutgoingMail.Kind(rawValue: kind) else { return nil }
            return ClaimedMail(
                mail: OutgoingMail(id: id, tenant: nil, kind: kind, recipient: recipient, subject: subject, text: text, html: html),
                lease: lease, attempts: attempts, createdAt: createdAt
            )
        }
    }

    /// Records attempts; a transient failure is retried on the schedule until it runs out.
    public func complete(_ outcomes: [(outcome: MailOutcome, attemptsBefore: Int)]) async throws {
        guard !outcomes.isEmpty else { return }
        let entries: [JSONValue] = outcomes.map { outcome, before in
            var retryIn = JSONValue.null
            if outcome.kind == .transient, before < self.retrySchedule.count {
                retryIn = .number(JSONNumber(self.retrySchedule[before].seconds * Double.random(in: 0.8...1.2)))
            }
            let error = outcome.error.map { String(String.UnicodeScalarView($0.unicodeScalars.filter { $0 != "\0" }).prefix(1000)) }
            return .object(JSONObject([
                ("mail_id", .string(outcome.mailID.lowercasedString)),
                ("lease", .string(outcome.lease.lowercasedString)),
                ("sent", .bool(outcome.kind == .sent)),
                ("retry_in", retryIn),
                ("error", error.map(JSONValue.string) ?? .null),
            ]))
        }
        let json = JSONSerializer.text(.array(entries))
        _ = try await self.database.unscopedTransaction(["SELECT atrium.mail_complete(\(json)::jsonb)"])
    }

    /// Deletes finished mails older than `age`, a batch at a time; returns how many went.
    public func prune(olderThan age: Duration = .seconds(30 * 24 * 3600), batch: Int = 1000) async throws -> Int {
        let seconds = Int(age.seconds)
        let rows = try await self.database.unscopedTransaction(["SELECT atrium.mail_prune(make_interval(secs => \(seconds)), \(batch))"])[0]
        return try rows[0].decode(Int.self, column: 0)
    }
}
