import Foundation

/// Where mail goes: an SMTP server from `ATRIUM_SMTP_URL`.
///
/// - `smtps://user:pass@host:465`: TLS from the first byte (implicit TLS).
/// - `smtp://user:pass@host:587`: STARTTLS, required; a server that does not offer it is refused.
/// - `smtp://host:25?tls=none`: no TLS at all (a relay on the same host or a test sink);
///   refused with credentials unless the host is loopback, so a password never crosses a
///   network in the clear.
///
/// Certificates are verified against the system's roots, or the PEM bundle of `caFile`
/// (`ATRIUM_SMTP_CA_FILE`), and the host name.
public struct SMTPConfiguration: Sendable, Equatable {
    public enum Security: String, Sendable {
        case implicitTLS = "tls"
        case startTLS = "starttls"
        case none
    }

    public var host: String
    public var port: Int
    public var security: Security
    public var username: String?
    public var password: String?
    /// PEM file of the certificate authorities to trust instead of the system's.
    public var caFile: String?
    /// The name this client gives in EHLO.
    public var heloName: String
    /// Bound on connecting, and on each reply of the server.
    public var timeout: Duration

    public init(
        host: String, port: Int, security: Security, username: String? = nil, password: String? = nil,
        caFile: String? = nil, heloName: String = "localhost", timeout: Duration = .seconds(30)
    ) {
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.caFile = caFile
        self.heloName = heloName
        self.timeout = timeout
    }

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// Parses `smtp[s]://[user[:password]@]host[:port][?tls=none]`.
    public init(url text: String, caFile: String? = nil) throws {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              let host = components.host, !host.isEmpty
        else {
            throw Invalid(description: "not a URL of the form smtp[s]://user:password@host:port")
        }
        var security: Security
        switch scheme {
        case "smtps": security = .implicitTLS
        case "smtp": security = .startTLS
        default: throw Invalid(description: "the scheme must be smtp (STARTTLS) or smtps (implicit TLS), not \(scheme)")
        }
        for item in components.queryItems ?? [] {
            switch (item.name, item.value) {
            case ("tls", "none") where scheme == "smtp": security = .none
            case ("tls", "starttls") where scheme == "smtp": security = .startTLS
            default: throw Invalid(description: "unknown option \(item.name)=\(item.value ?? "") (smtp:// takes tls=none)")
            }
        }
        let username = components.user.map { $0.removingPercentEncoding ?? $0 }
        let password = components.password.map { $0.removingPercentEncoding ?? $0 }
        let isLoopback = host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "[::1]"
        if security == .none, username != nil, !isLoopback {
            throw Invalid(description: "credentials would cross the network in the clear: use smtps:// or smtp:// with STARTTLS")
        }
        self.init(
            host: host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")),
            port: components.port ?? (security == .implicitTLS ? 465 : 587),
            security: security, username: username, password: password, caFile: caFile
        )
    }

    /// For the log: the URL without the password.
    public var redacted: String {
        let scheme = self.security == .implicitTLS ? "smtps" : "smtp"
        let user = self.username.map { "\($0):***@" } ?? ""
        return "\(scheme)://\(user)\(self.host):\(self.port)" + (self.security == .none ? "?tls=none" : "")
    }
}
