import AtriumCore
import AtriumHTTP
import AtriumMail
import Foundation

extension Settings {
    /// `ATRIUM_SMTP_URL`, `ATRIUM_SMTP_CA_FILE`, `ATRIUM_MAIL_FROM`, `ATRIUM_MAIL_RETRY_SCHEDULE`,
    /// `ATRIUM_APP_URL` and the flows' paths. With no SMTP server, mails are written as files under
    /// `<data-dir>/mail`.
    static func mail(_ read: SettingsReader, dataDirectory: String) throws -> (delivery: MailDelivery, flows: AccountMailConfiguration) {
        let transport: MailTransport
        if let url = read.text("ATRIUM_SMTP_URL") {
            do {
                transport = .smtp(try SMTPConfiguration(url: url, caFile: read.text("ATRIUM_SMTP_CA_FILE")))
            } catch let error as SMTPConfiguration.Invalid {
                throw SettingsError("ATRIUM_SMTP_URL: \(error)")
            }
        } else {
            transport = .directory((dataDirectory as NSString).appendingPathComponent("mail"))
        }
        let fromText = read.text("ATRIUM_MAIL_FROM")
        if case .smtp = transport, fromText == nil {
            throw SettingsError("ATRIUM_MAIL_FROM is needed with ATRIUM_SMTP_URL, e.g. \"Example <no-reply@example.com>\"")
        }
        guard let from = MailAddress(parsing: fromText ?? "Atrium <no-reply@localhost>") else {
            throw SettingsError("ATRIUM_MAIL_FROM must be an address, or a name and an address: \"Example <no-reply@example.com>\", got \"\(fromText ?? "")\"")
        }
        let schedule = try read.schedule("ATRIUM_MAIL_RETRY_SCHEDULE", default: MailOutbox.defaultRetrySchedule)

        var flows = AccountMailConfiguration()
        flows.appURL = try read.parsed("ATRIUM_APP_URL", default: flows.appURL, form: "the app's address, e.g. https://app.example.com") { text in
            guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil,
                  url.query == nil, url.fragment == nil else { return nil }
            return text
        }
        for (name, path) in [
            ("ATRIUM_APP_VERIFY_EMAIL_PATH", \AccountMailConfiguration.verifyEmailPath),
            ("ATRIUM_APP_RESET_PASSWORD_PATH", \AccountMailConfiguration.resetPasswordPath),
            ("ATRIUM_APP_CONFIRM_EMAIL_PATH", \AccountMailConfiguration.changeEmailPath),
        ] {
            flows[keyPath: path] = try read.parsed(name, default: flows[keyPath: path], form: "a path starting with /, e.g. /reset-password") { text in
                text.hasPrefix("/") && !text.contains("#") && !text.contains("?") && !text.contains(" ") ? text : nil
            }
        }
        return (MailDelivery(transport: transport, from: from, retrySchedule: schedule), flows)
    }
}
