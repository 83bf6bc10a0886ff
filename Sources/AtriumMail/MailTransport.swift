import AtriumCore
import Foundation
import Logging

/// Where rendered mails go: an SMTP server, or files for development.
public enum MailTransport: Sendable {
    case smtp(SMTPConfiguration)
    /// Each mail as an `.eml` file in this directory (the embedded default, with no SMTP server).
    case directory(String)

    public var description: String {
        switch self {
        case .smtp(let configuration): configuration.redacted
        case .directory(let path): path
        }
    }
}

/// Sends a batch of mails by one transport; one outcome per mail.
struct MailSender: Sendable {
    let transport: MailTransport
    let client: SMTPClient?
    let from: MailAddress
    let logger: Logger

    /// How long one batch may take over SMTP: well inside the lease of its mails.
    let deadline: Duration

    init(transport: MailTransport, from: MailAddress, deadline: Duration, logger: Logger) throws {
        self.transport = transport
        if case .smtp(let configuration) = transport {
            self.client = try SMTPClient(configuration: configuration)
        } else {
            self.client = nil
        }
        self.from = from
        self.deadline = deadline
        self.logger = logger
    }

    func send(_ mails: [ClaimedMail]) async -> [MailOutcome] {
        let messages = mails.map { MIMEMessage(mail: $0.mail, from: self.from) }
        switch self.transport {
        case .smtp:
            let envelopes = messages.map { SMTPClient.Envelope(from: self.from.address, to: $0.mail.recipient, message: $0.rendered()) }
            let results = await self.client!.send(envelopes, deadline: self.deadline)
            return zip(mails, results).map { claimed, result in
                switch result {
                case .success:
                    self.logger.info("mail sent", metadata: ["mail": "\(claimed.mail.id)", "kind": "\(claimed.mail.kind.rawValue)"])
                    return MailOutcome(mailID: claimed.mail.id, lease: claimed.lease, kind: .sent)
                case .failure(let failure):
                    self.logger.warning("mail not sent", metadata: [
                        "mail": "\(claimed.mail.id)", "attempt": "\(claimed.attempts + 1)", "error": "\(failure)",
                    ])
                    return MailOutcome(mailID: claimed.mail.id, lease: claimed.lease, kind: failure.permanent ? .permanent : .transient, error: failure.description)
                }
            }
        case .directory(let path):
            return zip(mails, messages).map { claimed, message in
                do {
                    let file = try Self.write(message, into: path)
                    self.logger.notice("mail written to a file (no SMTP server is configured)", metadata: [
                        "file": "\(file)", "to": "\(claimed.mail.recipient)", "kind": "\(claimed.mail.kind.rawValue)",
                    ])
                    return MailOutcome(mailID: claimed.mail.id, lease: claimed.lease, kind: .sent)
                } catch {
                    return MailOutcome(mailID: claimed.mail.id, lease: claimed.lease, kind: .transient, error: "\(error)")
                }
            }
        }
    }

    /// Writes `<created>-<mail id>.eml`, readable by its owner only, whole or not at all.
    static func write(_ message: MIMEMessage, into directory: String) throws -> String {
        let manager = FileManager.default
        try manager.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let stamp = Int(message.date.timeIntervalSince1970 * 1000)
        let name = "\(stamp)-\(message.mail.id.uuidString.lowercased()).eml"
        let path = (directory as NSString).appendingPathComponent(name)
        let partial = path + ".partial"
        guard manager.createFile(atPath: partial, contents: Data(message.rendered().utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown)
        }
        if manager.fileExists(atPath: path) { try manager.removeItem(atPath: path) }
        try manager.moveItem(atPath: partial, toPath: path)
        return path
    }
}
