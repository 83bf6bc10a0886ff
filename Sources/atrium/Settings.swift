import AtriumCore
import AtriumCrypto
import AtriumHTTP
import Foundation
import Logging

/// Everything configurable, resolved once: command-line flag, then environment variable, then default.
struct Settings: Sendable {
    var databaseURL: String?
    var migrationDatabaseURL: String?
    /// `ATRIUM_DATABASE_POOLER=transaction`: `DATABASE_URL` is a pooler in transaction mode.
    var transactionPooling: Bool
    /// `ATRIUM_LISTEN_DATABASE_URL`: LISTEN's own session, straight to PostgreSQL.
    var listenDatabaseURL: String?
    /// `ATRIUM_READ_DATABASE_URL`: read replicas, separated by spaces.
    var readDatabaseURLs: [String]
    var maxReplicaLag: Duration
    /// `ATRIUM_TENANT_SCOPING`: how a transaction names its tenant (auto: by the `citus` extension).
    var tenantScoping: TenantScopingSetting
    var dataDirectory: String
    var maxConnections: Int
    var acquireTimeout: Duration
    /// `ATRIUM_DB_GATHER_DELAY`, milliseconds (0: off).
    var gatherDelay: Duration
    var statementTimeout: Duration
    var logLevel: Logger.Level
    var jsonLogs: Bool
    var server: ServerConfiguration
    var migrateOnStart: Bool
    /// `ATRIUM_TOKEN_KEYS` (secrets come only from the environment or a file).
    var tokenKeys: String?
    var passwordParameters: Scrypt.Parameters
    var hashingThreads: Int
    var hashingQueue: Int
    var exportLimits: ExportLimits
    var changeFeed: ChangeFeedConfiguration
    var webhooks: WebhookConfiguration
    /// How mail is sent, and where the account flows' links point.
    var mail: MailDelivery
    var accountMail: AccountMailConfiguration

    static func resolve(
        database: DatabaseOptions,
        host: String? = nil,
        port: Int? = nil,
        noMigrate: Bool = false,
        tls options: TLSOptions = TLSOptions(),
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> Settings {
        let read = SettingsReader(environment: environment)
        let level = try read.choice("ATRIUM_LOG_LEVEL", flag: database.logLevel, default: Logger.Level.info, Logger.Level.allCases.map { ($0.rawValue, $0) })
        let jsonLogs = try read.choice("ATRIUM_LOG_FORMAT", flag: database.logFormat, default: false, [("text", false), ("json", true)])
        let scrypt = try read.parsed("ATRIUM_PASSWORD_SCRYPT", default: Scrypt.Parameters.recommended, form: "ln=17,r=8,p=1 (ln 1-24, r 1-32, p 1-16)") {
            Scrypt.Parameters(phc: $0)
        }

        let tls: TLSSettings?
        let certificate = read.text("ATRIUM_TLS_CERT", flag: options.certificate)
        let key = read.text("ATRIUM_TLS_KEY", flag: options.key)
        switch (certificate, key, try options.selfSigned || read.boolean("ATRIUM_TLS_SELF_SIGNED", default: false)) {
        case (nil, nil, false): tls = nil
        case (nil, nil, true): tls = TLSSettings(.selfSigned)
        case (let certificate?, let key?, false): tls = TLSSettings(.files(certificate: certificate, key: key))
        case (_, _, true): throw SettingsError("--tls-self-signed and --tls-cert/--tls-key exclude each other")
        default: throw SettingsError("--tls-cert and --tls-key (ATRIUM_TLS_CERT, ATRIUM_TLS_KEY) go together")
        }

        let origins = (read.text("ATRIUM_CORS_ORIGINS") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let credentials = try read.boolean("ATRIUM_CORS_CREDENTIALS", default: false)
        if credentials && origins.contains("*") {
            throw SettingsError("ATRIUM_CORS_ORIGINS=* cannot be combined with ATRIUM_CORS_CREDENTIALS: list the origins")
        }
        for origin in origins where origin != "*" {
            guard let url = URL(string: origin), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil,
                  url.path.isEmpty, url.query == nil else {
                throw SettingsError("ATRIUM_CORS_ORIGINS entries must be origins like https://app.example.com, got \"\(origin)\"")
            }
        }

        let metrics = try read.parsed("ATRIUM_METRICS", default: ServerConfiguration.MetricsExposure.sameServer, form: "on, off or a port number") { text in
            switch text.lowercased() {
            case "on": .sameServer
            case "off": .off
            default: Int(text).flatMap { (1...65535).contains($0) ? .port($0) : nil }
            }
        }

        let limits = ServerConfiguration.Limits(
            maximumBodySize: try read.integer("ATRIUM_MAX_BODY_BYTES", default: 1 << 20, range: 1024...(1 << 30)),
            maximumHeaderSize: try read.integer("ATRIUM_MAX_HEADER_BYTES", default: 32 * 1024, range: 1024...(1 << 20)),
            requestTimeout: try read.seconds("ATRIUM_REQUEST_TIMEOUT", default: .seconds(30)),
            headerTimeout: try read.seconds("ATRIUM_HEADER_TIMEOUT", default: .seconds(10)),
            idleTimeout: try read.seconds("ATRIUM_IDLE_TIMEOUT", default: .seconds(60)),
            maximumConnections: try read.integer("ATRIUM_MAX_CONNECTIONS", default: 4096, range: 1...1_000_000),
            streamStallTimeout: try read.seconds("ATRIUM_STREAM_STALL_TIMEOUT", default: .seconds(30))
        )
        let rateLimits = RateLimitPolicy(
            tenantRate: try read.number("ATRIUM_RATE_LIMIT_TENANT", default: 100),
            tenantBurst: try read.integer("ATRIUM_RATE_LIMIT_TENANT_BURST", default: 200, range: 1...1_000_000),
            addressRate: try read.number("ATRIUM_RATE_LIMIT_ADDRESS", default: 10),
            addressBurst: try read.integer("ATRIUM_RATE_LIMIT_ADDRESS_BURST", default: 40, range: 1...1_000_000)
        )

        var changeFeed = ChangeFeedConfiguration()
        changeFeed.retention = .seconds(3600 * (try read.integer("ATRIUM_CHANGE_RETENTION_HOURS", default: 168, range: 1...8760)))
        changeFeed.maximumSubscribers = try read.integer("ATRIUM_EVENTS_MAX_SUBSCRIBERS", default: 2_000, range: 1...1_000_000)
        changeFeed.maximumSubscribersPerTenant = try read.integer("ATRIUM_EVENTS_MAX_SUBSCRIBERS_PER_TENANT", default: 200, range: 1...1_000_000)
        changeFeed.bufferCapacity = try read.integer("ATRIUM_EVENTS_BUFFER", default: 1_000, range: 10...1_000_000)

        var webhooks = WebhookConfiguration()
        webhooks.allowPrivateAddresses = try read.boolean("ATRIUM_WEBHOOKS_ALLOW_PRIVATE", default: false)
        webhooks.timeout = try read.seconds("ATRIUM_WEBHOOKS_TIMEOUT", default: webhooks.timeout)
        webhooks.concurrency = try read.integer("ATRIUM_WEBHOOKS_CONCURRENCY", default: webhooks.concurrency, range: 1...10_000)
        webhooks.perTenant = min(webhooks.perTenant, webhooks.concurrency)
        webhooks.retrySchedule = try read.schedule("ATRIUM_WEBHOOKS_RETRY_SCHEDULE", default: webhooks.retrySchedule)
        webhooks.retention = changeFeed.retention

        let dataDirectory = read.text("ATRIUM_DATA_DIR", flag: database.dataDir) ?? ".atrium"
        let mail = try Self.mail(read, dataDirectory: dataDirectory)
        let databaseURL = read.text("DATABASE_URL", flag: database.databaseURL)
        let listenURL = read.text("ATRIUM_LISTEN_DATABASE_URL")
        let transactionPooling = try read.choice("ATRIUM_DATABASE_POOLER", default: false, [("none", false), ("transaction", true)])
        if transactionPooling, databaseURL == nil || listenURL == nil {
            throw SettingsError(
                "ATRIUM_DATABASE_POOLER=transaction needs DATABASE_URL (the pooler) and ATRIUM_LISTEN_DATABASE_URL "
                    + "(PostgreSQL itself, for LISTEN and migrations, which need a session of their own)"
            )
        }
        let readURLs = (read.text("ATRIUM_READ_DATABASE_URL") ?? "").split(whereSeparator: \.isWhitespace).map(String.init)
        if !readURLs.isEmpty, databaseURL == nil {
            throw SettingsError("ATRIUM_READ_DATABASE_URL needs DATABASE_URL: replicas are replicas of your own PostgreSQL, not of the embedded one")
        }
        for url in readURLs where !(url.hasPrefix("postgresql://") || url.hasPrefix("postgres://")) {
            throw SettingsError("ATRIUM_READ_DATABASE_URL must be postgresql:// URLs separated by spaces, got \"\(url)\"")
        }
        let threads = try read.integer("ATRIUM_PASSWORD_HASHING_THREADS", default: ProcessInfo.processInfo.activeProcessorCount, range: 1...256)
        return Settings(
            databaseURL: databaseURL,
            // Migrations hold a session-level advisory lock: never through a transaction pooler.
            migrationDatabaseURL: read.text("ATRIUM_MIGRATION_DATABASE_URL", flag: database.migrationDatabaseURL)
                ?? (transactionPooling ? listenURL : nil),
            transactionPooling: transactionPooling,
            listenDatabaseURL: listenURL,
            readDatabaseURLs: readURLs,
            maxReplicaLag: try read.seconds("ATRIUM_READ_MAX_LAG", default: .seconds(5)),
            tenantScoping: try read.parsed("ATRIUM_TENANT_SCOPING", default: .automatic, form: "auto, set_config or set_local") {
                TenantScopingSetting(rawValue: $0)
            },
            dataDirectory: dataDirectory,
            maxConnections: try read.integer("ATRIUM_DB_MAX_CONNECTIONS", flag: database.dbMaxConnections, default: 8, range: 1...1000),
            acquireTimeout: try read.seconds("ATRIUM_DB_ACQUIRE_TIMEOUT", default: .seconds(5)),
            gatherDelay: .milliseconds(try read.integer("ATRIUM_DB_GATHER_DELAY", default: 2, range: 0...100)),
            statementTimeout: try read.seconds("ATRIUM_DB_STATEMENT_TIMEOUT", default: .seconds(30)),
            logLevel: level,
            jsonLogs: jsonLogs,
            server: ServerConfiguration(
                host: read.text("ATRIUM_HOST", flag: host) ?? "127.0.0.1",
                port: try read.integer("ATRIUM_PORT", flag: port, default: 8080, range: 0...65535),
                proxyHops: try read.integer("ATRIUM_PROXY_HOPS", default: 0, range: 0...10),
                tls: tls,
                limits: limits,
                cors: CORSPolicy(allowedOrigins: origins, allowCredentials: credentials, maxAge: try read.integer("ATRIUM_CORS_MAX_AGE", default: 600, range: 0...86_400)),
                rateLimits: rateLimits,
                metrics: metrics,
                metricsTenants: try read.integer("ATRIUM_METRICS_TENANTS", default: 0, range: 0...100),
                accessLog: try read.boolean("ATRIUM_ACCESS_LOG", default: true),
                accessLogFormat: jsonLogs ? .json : .text
            ),
            migrateOnStart: !(try noMigrate || read.boolean("ATRIUM_NO_MIGRATE", default: false)),
            tokenKeys: read.text("ATRIUM_TOKEN_KEYS"),
            passwordParameters: scrypt,
            hashingThreads: threads,
            hashingQueue: try read.integer("ATRIUM_PASSWORD_HASHING_QUEUE", default: threads * 4, range: 0...10_000),
            exportLimits: ExportLimits(
                perTenant: try read.integer("ATRIUM_EXPORTS_PER_TENANT", default: 1, range: 1...100),
                total: try read.integer("ATRIUM_EXPORTS_TOTAL", default: 4, range: 1...1000)
            ),
            changeFeed: changeFeed,
            webhooks: webhooks,
            mail: mail.delivery,
            accountMail: mail.flows
        )
    }
}

/// Reads settings: a command-line flag wins over its environment variable, an empty variable
/// is unset, and a bad value is an error that names the variable and the form it takes.
struct SettingsReader {
    let environment: [String: String]

    /// Yes and no, for every switch: the one spelling Atrium accepts.
    static let yes: Set<String> = ["1", "true", "yes", "on"]
    static let no: Set<String> = ["0", "false", "no", "off"]

    func text(_ variable: String, flag: String? = nil) -> String? {
        if let flag, !flag.isEmpty { return flag }
        if let value = self.environment[variable], !value.isEmpty { return value }
        return nil
    }

    /// A value in the form `parse` reads (nil for anything else).
    func parsed<Value>(_ variable: String, flag: String? = nil, default fallback: Value, form: String, _ parse: (String) -> Value?) throws -> Value {
        guard let text = self.text(variable, flag: flag) else { return fallback }
        guard let value = parse(text) else { throw SettingsError("\(variable) must be \(form), got \"\(text)\"") }
        return value
    }

    /// Waits between retries: comma-separated seconds, at most 20 of them, each at most a week.
    func schedule(_ variable: String, default fallback: [Duration]) throws -> [Duration] {
        try self.parsed(variable, default: fallback, form: "comma-separated seconds, e.g. 5,300,1800 (at most 20)") { text in
            let steps = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard steps.count <= 20, steps.allSatisfy({ $0 != nil && $0! > 0 && $0! <= 604_800 }) else { return nil }
            return steps.map { Duration.milliseconds(Int64($0! * 1000)) }
        }
    }

    /// One of a few names, in any case.
    func choice<Value>(_ variable: String, flag: String? = nil, default fallback: Value, _ options: [(String, Value)]) throws -> Value {
        try self.parsed(variable, flag: flag, default: fallback, form: "one of " + options.map(\.0).joined(separator: ", ")) { text in
            options.first { $0.0 == text.lowercased() }?.1
        }
    }

    func boolean(_ variable: String, default fallback: Bool) throws -> Bool {
        try self.parsed(variable, default: fallback, form: "1, true, yes or on, or 0, false, no or off") { text in
            Self.yes.contains(text.lowercased()) ? true : Self.no.contains(text.lowercased()) ? false : nil
        }
    }

    func integer(_ variable: String, flag: Int? = nil, default fallback: Int, range: ClosedRange<Int>) throws -> Int {
        try self.parsed(variable, flag: flag.map(String.init), default: fallback, form: "a whole number from \(range.lowerBound) to \(range.upperBound)") { text in
            Int(text).flatMap { range.contains($0) ? $0 : nil }
        }
    }

    func number(_ variable: String, default fallback: Double, range: ClosedRange<Double> = 0...1_000_000) throws -> Double {
        try self.parsed(variable, default: fallback, form: "a number from \(Int(range.lowerBound)) to \(Int(range.upperBound))") { text in
            Double(text).flatMap { range.contains($0) ? $0 : nil }
        }
    }

    /// Seconds, fractions allowed, more than 0 and at most a day.
    func seconds(_ variable: String, default fallback: Duration) throws -> Duration {
        try self.parsed(variable, default: fallback, form: "a number of seconds (more than 0, at most 86400)") { text in
            Double(text).flatMap { $0 > 0 && $0 <= 86_400 ? .milliseconds(Int64($0 * 1000)) : nil }
        }
    }
}

struct SettingsError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The TLS flags of `atrium serve`.
struct TLSOptions: Sendable {
    var certificate: String?
    var key: String?
    var selfSigned = false
}
