import AtriumCrypto
import Foundation

/// Where the mails of the account flows send people, and how long their tokens live.
///
/// Links point at the app (`appURL` + a path per flow) and carry the token in the fragment
/// (`#token=…`), which browsers never send to a server, so it reaches no access log; the app
/// redeems it with a `POST`, so a mail scanner that follows the link redeems nothing.
public struct AccountMailConfiguration: Sendable {
    /// The app's address, e.g. `https://app.example.com`.
    public var appURL: String
    public var verifyEmailPath: String
    public var resetPasswordPath: String
    public var changeEmailPath: String
    public var verificationLifetime: Duration
    public var resetLifetime: Duration
    public var emailChangeLifetime: Duration
    /// At most one mail of a flow per user this often, and so many an hour.
    public var spacing: Duration
    public var perHour: Int

    public init(
        appURL: String = "http://localhost:3000",
        verifyEmailPath: String = "/verify-email",
        resetPasswordPath: String = "/reset-password",
        changeEmailPath: String = "/confirm-email",
        verificationLifetime: Duration = .seconds(24 * 3600),
        resetLifetime: Duration = .seconds(30 * 60),
        emailChangeLifetime: Duration = .seconds(24 * 3600),
        spacing: Duration = .seconds(60),
        perHour: Int = 5
    ) {
        self.appURL = appURL
        self.verifyEmailPath = verifyEmailPath
        self.resetPasswordPath = resetPasswordPath
        self.changeEmailPath = changeEmailPath
        self.verificationLifetime = verificationLifetime
        self.resetLifetime = resetLifetime
        self.emailChangeLifetime = emailChangeLifetime
        self.spacing = spacing
        self.perHour = perHour
    }

    func link(_ path: String, token: String) -> String {
        var base = self.appURL
        while base.hasSuffix("/") { base.removeLast() }
        return base + (path.hasPrefix("/") ? path : "/" + path) + "#token=" + token
    }
}

/// A flow's secret: the token for links and a short code for typing, and what is stored of them.
struct FlowSecret {
    let token: String
    let code: String
    var tokenHash: String { RandomToken.digest(self.token) }
    var codeHash: String { Self.codeHash(tokenHash: self.tokenHash, code: self.code) }

    /// Characters that cannot be mistaken for each other (no 0, O, 1, I): 32, 5 bits each.
    static let alphabet = Array("ABCDEFGHJKMNPQRSTUVWXYZ23456789".utf8) + [UInt8(ascii: "L")]

    static func make(prefix: String) -> FlowSecret {
        let code = String(decoding: SecureRandom.bytes(8).map { Self.alphabet[Int($0 & 31)] }, as: UTF8.self)
        return FlowSecret(token: RandomToken.make(prefix: prefix), code: code)
    }

    static func codeHash(tokenHash: String, code: String) -> String {
        Hex.encode(SHA256.hash(tokenHash + ":" + code))
    }

    /// A code as typed (`abcd-efgh`, `ABCD EFGH`) in its stored form, or nil if it cannot be one.
    static func normalized(code: String) -> String? {
        let kept = code.uppercased().filter { $0 != "-" && $0 != " " }
        guard kept.count == 8, kept.utf8.allSatisfy(Self.alphabet.contains) else { return nil }
        return kept
    }

    /// `ABCD-EFGH`, as the mail shows it.
    var displayCode: String { String(self.code.prefix(4)) + "-" + String(self.code.suffix(4)) }
}

/// The built-in mails of the account flows, in plain text and HTML.
enum AccountMailTemplates {
    struct Rendered {
        let subject: String
        let text: String
        let html: String
    }

    static func verification(tenant: String?, email: String, link: String, code: String, valid: Duration) -> Rendered {
        let product = tenant ?? "your account"
        return self.render(
            subject: "Confirm your email address" + (tenant.map { " for \($0)" } ?? ""),
            paragraphs: ["Please confirm that \(email) is your address for \(product)."],
            action: ("Confirm my email", link), code: code,
            closing: "The link and code work for \(self.describe(valid)). If you did not sign up, ignore this mail."
        )
    }

    static func passwordReset(tenant: String?, link: String, code: String, valid: Duration) -> Rendered {
        self.render(
            subject: "Reset your password" + (tenant.map { " for \($0)" } ?? ""),
            paragraphs: ["Someone, hopefully you, asked to reset the password of your account" + (tenant.map { " at \($0)" } ?? "") + "."],
            action: ("Choose a new password", link), code: code,
            closing: "The link and code work for \(self.describe(valid)), once. If you did not ask for this, ignore this mail: your password stays as it is."
        )
    }

    static func emailChange(tenant: String?, newEmail: String, link: String, code: String, valid: Duration) -> Rendered {
        self.render(
            subject: "Confirm your new email address",
            paragraphs: ["Please confirm that \(newEmail) should become the address of your account" + (tenant.map { " at \($0)" } ?? "") + "."],
            action: ("Confirm my new address", link), code: code,
            closing: "The link and code work for \(self.describe(valid)). Until you confirm, nothing changes."
        )
    }

    static func emailChangeNotice(tenant: String?, newEmail: String) -> Rendered {
        self.render(
            subject: "Your email address is being changed",
            paragraphs: [
                "Someone signed in to your account" + (tenant.map { " at \($0)" } ?? "") + " asked to change its address to \(newEmail).",
                "It changes only when the new address is confirmed. If this was not you, change your password now.",
            ],
            action: nil, code: nil, closing: "This mail was sent to your current address so you know."
        )
    }

    private static func render(subject: String, paragraphs: [String], action: (label: String, link: String)?, code: String?, closing: String) -> Rendered {
        var text = "Hello,\n\n" + paragraphs.joined(separator: "\n\n") + "\n\n"
        var html = "<!doctype html>\n<html><body style=\"font-family: sans-serif; line-height: 1.5\">\n<p>Hello,</p>\n"
        html += paragraphs.map { "<p>\(self.escape($0))</p>\n" }.joined()
        if let action {
            text += "\(action.label):\n\(action.link)\n\n"
            html += "<p><a href=\"\(self.escape(action.link))\">\(self.escape(action.label))</a></p>\n"
        }
        if let code {
            text += "Or enter this code in the app: \(code)\n\n"
            html += "<p>Or enter this code in the app: <strong style=\"font-family: monospace; font-size: 1.3em\">\(self.escape(code))</strong></p>\n"
        }
        text += closing + "\n"
        html += "<p>\(self.escape(closing))</p>\n</body></html>\n"
        return Rendered(subject: subject, text: text, html: html)
    }

    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    static func describe(_ duration: Duration) -> String {
        let minutes = Int(duration.seconds / 60)
        if minutes % 60 != 0 || minutes < 60 { return minutes == 1 ? "1 minute" : "\(minutes) minutes" }
        let hours = minutes / 60
        return hours == 1 ? "1 hour" : "\(hours) hours"
    }
}
