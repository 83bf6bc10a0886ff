import AtriumCore
import AtriumCrypto
import AtriumHTTP
import Foundation
import Logging

/// Everything configurable, resolved once: command-line flag, then environment variable, then default.
struct Settings: Sendable {
    var databaseURL: String?
    var migrationDatabaseURL: String?
    var dataDirectory: String
    var maxConnections: Int
    var acquireTimeout: Duration
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

    static func resolve(
        database: DatabaseOptions,
        host: String? = nil,
        port: Int? = nil,
        noMigrate: Bool = false,
        tls options: TLSOptions = TLSOptions(),
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> Settings {
        func value(_ flag: String?, _ variable: String) -> String? {
            if let flag, !flag.isEmpty { return flag }
            if let fromEnvironment = environment[variable], !fromEnvironment.isEmpty { return fromEnvironment }
            return nil
        }
        func integer(_ flag: Int?, _ variable: String, default fallback: Int, range: ClosedRange<Int>) throws -> Int {
            let text = flag.map(String.init) ?? environment[variable]
            guard let text, !text.isEmpty else { return fallback }
            guard let number = Int(text), range.contains(number) else {
                throw SettingsError("\(variable) must be a whole number from \(range.lowerBound) to \(range.upperBound), got \"\(text)\"")
            }
            return number
        }
        func seconds(_ variable: String, default fallback: Duration) throws -> Duration {
            guard let text = environment[variable], !text.isEmpty else { return fallback }
            guard let number = Double(text), number > 0, number <= 86_400 else {
                throw SettingsError("\(variable) must be a number of seconds, got \"\(text)\"")
            }
            return .milliseconds(Int64(number * 1000))
        }

        let levelText = value(database.logLevel, "ATRIUM_LOG_LEVEL") ?? "info"
        guard let level = Logger.Level(rawValue: levelText.lowercased()) else {
            throw SettingsError("log level must be one of trace, debug, info, notice, warning, error, critical; got \"\(levelText)\"")
        }
        let format = (value(database.logFormat, "ATRIUM_LOG_FORMAT") ?? "text").lowercased()
        guard format == "text" || format == "json" else {
            throw SettingsError("log format must be text or json, got \"\(format)\"")
        }
        let disableMigrations = noMigrate || ["1", "true", "yes"].contains(environment["ATRIUM_NO_MIGRATE"]?.lowercased() ?? "")
        var scrypt = Scrypt.Parameters.recommended
        if let text = environment["ATRIUM_PASSWORD_SCRYPT"], !text.isEmpty {
            guard let parsed = PasswordHash(phc: "$scrypt$\(text)$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")?.parameters else {
                throw SettingsError("ATRIUM_PASSWORD_SCRYPT must look like ln=17,r=8,p=1 (ln 1-24, r 1-32, p 1-16), got \"\(text)\"")
            }
            scrypt = parsed
        }
        func number(_ variable: String, default fallback: Double) throws -> Double {
            guard let text = environment[variable], !text.isEmpty else { return fallback }
            guard let number = Double(text), number >= 0, number <= 1_000_000 else {
                throw SettingsError("\(variable) must be a number from 0 to 1000000, got \"\(text)\"")
            }
            return number
        }
        func flag(_ variable: String) -> Bool {
            ["1", "true", "yes"].contains(environment[variable]?.lowercased() ?? "")
        }

        var tls: TLSSettings?
        let certificate = value(options.certificate, "ATRIUM_TLS_CERT")
        let key = value(options.key, "ATRIUM_TLS_KEY")
        let selfSigned = options.selfSigned || flag("ATRIUM_TLS_SELF_SIGNED")
        switch (certificate, key, selfSigned) {
        case (nil, nil, false): tls = nil
        case (nil, nil, true): tls = TLSSettings(.selfSigned)
        case (let certificate?, let key?, false): tls = TLSSettings(.files(certificate: certificate, key: key))
        case (_, _, true): throw SettingsError("--tls-self-signed and --tls-cert/--tls-key exclude each other")
        default: throw SettingsError("--tls-cert and --tls-key (ATRIUM_TLS_CERT, ATRIUM_TLS_KEY) go together")
        }

        let origins = (environment["ATRIUM_CORS_ORIGINS"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let credentials = flag("ATRIUM_CORS_CREDENTIALS")
        if credentials && origins.contains("*") {
            throw SettingsError("ATRIUM_CORS_ORIGINS=* cannot be combined with ATRIUM_CORS_CREDENTIALS: list the origins")
        }
        for origin in origins where origin != "*" {
            guard let url = URL(string: origin), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil,
                  url.path.isEmpty, url.query == nil else {
                throw SettingsError("ATRIUM_CORS_ORIGINS entries must be origins like https://app.example.com, got \"\(origin)\"")
            }
        }

        let metricsText = (environment["ATRIUM_METRICS"] ?? "on").lowercased()
        let metrics: ServerConfiguration.MetricsExposure
        switch metricsText {
        case "on", "": metrics = .sameServer
        case "off": metrics = .off
        default:
            guard let port = Int(metricsText), (1...65535).contains(port) else {
                throw SettingsError("ATRIUM_METRICS must be on, off or a port number, got \"\(metricsText)\"")
            }
            metrics = .port(port)
        }

        let limits = ServerConfiguration.Limits(
            maximumBodySize: try integer(nil, "ATRIUM_MAX_BODY_BYTES", default: 1 << 20, range: 1024...(1 << 30)),
            maximumHeaderSize: try integer(nil, "ATRIUM_MAX_HEADER_BYTES", default: 32 * 1024, range: 1024...(1 << 20)),
            requestTimeout: try seconds("ATRIUM_REQUEST_TIMEOUT", default: .seconds(30)),
            headerTimeout: try seconds("ATRIUM_HEADER_TIMEOUT", default: .seconds(10)),
            idleTimeout: try seconds("ATRIUM_IDLE_TIMEOUT", default: .seconds(60)),
            maximumConnections: try integer(nil, "ATRIUM_MAX_CONNECTIONS", default: 4096, range: 1...1_000_000),
            streamStallTimeout: try seconds("ATRIUM_STREAM_STALL_TIMEOUT", default: .seconds(30))
        )
        let rateLimits = RateLimitPolicy(
            tenantRate: try number("ATRIUM_RATE_LIMIT_TENANT", default: 100),
            tenantBurst: try integer(nil, "ATRIUM_RATE_LIMIT_TENANT_BURST", default: 200, range: 1...1_000_000),
            addressRate: try number("ATRIUM_RATE_LIMIT_ADDRESS", default: 10),
            addressBurst: try integer(nil, "ATRIUM_RATE_LIMIT_ADDRESS_BURST", default: 40, range: 1...1_000_000)
        )

        let threads = try integer(nil, "ATRIUM_PASSWORD_HASHING_THREADS", default: ProcessInfo.processInfo.activeProcessorCount, range: 1...256)
        return Settings(
            databaseURL: value(database.databaseURL, "DATABASE_URL"),
            migrationDatabaseURL: value(database.migrationDatabaseURL, "ATRIUM_MIGRATION_DATABASE_URL"),
            dataDirectory: value(database.dataDir, "ATRIUM_DATA_DIR") ?? ".atrium",
            maxConnections: try integer(database.dbMaxConnections, "ATRIUM_DB_MAX_CONNECTIONS", default: 8, range: 1...1000),
            acquireTimeout: try seconds("ATRIUM_DB_ACQUIRE_TIMEOUT", default: .seconds(5)),
            statementTimeout: try seconds("ATRIUM_DB_STATEMENT_TIMEOUT", default: .seconds(30)),
            logLevel: level,
            jsonLogs: format == "json",
            server: ServerConfiguration(
                host: value(host, "ATRIUM_HOST") ?? "127.0.0.1",
                port: try integer(port, "ATRIUM_PORT", default: 8080, range: 0...65535),
                proxyHops: try integer(nil, "ATRIUM_PROXY_HOPS", default: 0, range: 0...10),
                tls: tls,
                limits: limits,
                cors: CORSPolicy(allowedOrigins: origins, allowCredentials: credentials, maxAge: try integer(nil, "ATRIUM_CORS_MAX_AGE", default: 600, range: 0...86_400)),
                rateLimits: rateLimits,
                metrics: metrics,
                metricsTenants: try integer(nil, "ATRIUM_METRICS_TENANTS", default: 0, range: 0...100),
                accessLog: !["0", "false", "no", "off"].contains(environment["ATRIUM_ACCESS_LOG"]?.lowercased() ?? "")
            ),
            migrateOnStart: !disableMigrations,
            tokenKeys: environment["ATRIUM_TOKEN_KEYS"].flatMap { $0.isEmpty ? nil : $0 },
            passwordParameters: scrypt,
            hashingThreads: threads,
            hashingQueue: try integer(nil, "ATRIUM_PASSWORD_HASHING_QUEUE", default: threads * 4, range: 0...10_000),
            exportLimits: ExportLimits(
                perTenant: try integer(nil, "ATRIUM_EXPORTS_PER_TENANT", default: 1, range: 1...100),
                total: try integer(nil, "ATRIUM_EXPORTS_TOTAL", default: 4, range: 1...1000)
            )
        )
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
