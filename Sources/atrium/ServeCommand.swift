import ArgumentParser
import AtriumCore
import AtriumHTTP
import AtriumMail
import Hummingbird
import Logging
import ServiceLifecycle

/// `atrium serve`: migrates (unless told not to) and serves HTTP until SIGINT/SIGTERM.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HTTP service (the default command)."
    )

    @OptionGroup var database: DatabaseOptions

    @Option(help: "Address to listen on (env ATRIUM_HOST; default 127.0.0.1).")
    var host: String?

    @Option(help: "Port to listen on (env ATRIUM_PORT; default 8080).")
    var port: Int?

    @Flag(help: "Do not apply pending migrations at start (env ATRIUM_NO_MIGRATE=1).")
    var noMigrate = false

    @Option(help: "PEM certificate chain: serve HTTPS with HTTP/2 (env ATRIUM_TLS_CERT; needs --tls-key). SIGHUP re-reads it.")
    var tlsCert: String?

    @Option(help: "PEM private key of --tls-cert (env ATRIUM_TLS_KEY).")
    var tlsKey: String?

    @Flag(help: "Serve HTTPS with a certificate for localhost made at start, for development (env ATRIUM_TLS_SELF_SIGNED=1).")
    var tlsSelfSigned = false

    func run() async throws {
        let settings = try Settings.resolve(
            database: self.database, host: self.host, port: self.port, noMigrate: self.noMigrate,
            tls: TLSOptions(certificate: self.tlsCert, key: self.tlsKey, selfSigned: self.tlsSelfSigned)
        )
        let logger = LogSetup.bootstrap(settings)
        let endpoint = try await DatabaseEndpoint.open(settings, logger: logger)
        do {
            if settings.migrateOnStart {
                try await endpoint.migrate(logger: logger)
            }
            let database = Database(configuration: endpoint.configuration, logger: logger)
            if endpoint.configuration.requireUnprivilegedRole {
                try await database.verifyServiceRole()
            }
            let scoping = try await database.chooseTenantScoping(settings.tenantScoping)
            logger.info(
                "tenant scoping: \(scoping)",
                metadata: ["how": "\(scoping == .setLocal ? "BEGIN; SET LOCAL atrium.tenant_id = …; …; COMMIT (Citus)" : "set_config('atrium.tenant_id', $1, true) (PostgreSQL)")"]
            )
            if settings.transactionPooling {
                // Through a pooler the per-connection timeouts cannot be sent; say when nothing
                // else bounds a statement or an abandoned transaction.
                for setting in ["statement_timeout", "idle_in_transaction_session_timeout"] where try await database.serverSetting(setting) == "0" {
                    logger.warning(
                        "\(setting) is unbounded through the pooler: set it on the role (ALTER ROLE … SET \(setting) = …) or in PgBouncer (query_timeout, idle_transaction_timeout)"
                    )
                }
                if try await database.serverSetting("max_parallel_workers_per_gather") != "0" {
                    logger.warning(
                        "parallel query is on through the pooler: one request can take several cores; turn it off for the role (ALTER ROLE … SET max_parallel_workers_per_gather = 0)"
                    )
                }
            }
            let configuration = AuthConfiguration(
                keyRing: try TokenKeys.load(settings, logger: logger),
                passwordParameters: settings.passwordParameters,
                hashingPermits: settings.hashingThreads,
                hashingQueue: settings.hashingQueue,
                mail: settings.accountMail
            )
            let supervision = endpoint.embedded.map(EmbeddedSupervision.init)
            let services = try AtriumServices(
                database: database, auth: configuration, exportLimits: settings.exportLimits, changeFeed: settings.changeFeed, webhooks: settings.webhooks,
                mail: settings.mail, databaseProcess: supervision, logger: logger
            )
            // Known revocations must be in memory before the first request is served.
            try await services.watcher.reload()
            // Counted among the live servers (and told how many share the rate limits) before the first request.
            await services.servers.beat()
            var background: [any Service] = []
            if let supervision { background.append(supervision) }
            var tls: TLSSetup?
            if let settings = settings.server.tls {
                let setup = try TLSSetup(settings)
                tls = setup
                if case .selfSigned = settings.source {
                    logger.notice("self-signed certificate for localhost (development only)", metadata: ["sha256": "\(setup.fingerprint)"])
                } else {
                    background.append(CertificateReloader(store: setup.store, logger: logger))
                }
            }
            let app = try buildApplication(
                server: settings.server,
                services: services,
                tls: tls,
                backgroundServices: background,
                logger: logger
            )
            if settings.webhooks.allowPrivateAddresses {
                logger.warning("webhooks may be sent to http:// and to private, loopback and link-local addresses (ATRIUM_WEBHOOKS_ALLOW_PRIVATE): development only")
            }
            switch settings.mail.transport {
            case .smtp(let smtp):
                logger.info("mail goes to an SMTP server", metadata: ["smtp": "\(smtp.redacted)", "from": "\(settings.mail.from.address)"])
                if settings.accountMail.appURL == AccountMailConfiguration().appURL {
                    logger.warning("ATRIUM_APP_URL is not set: the links in mails point at \(settings.accountMail.appURL)")
                }
            case .directory(let path):
                logger.notice("no SMTP server configured (ATRIUM_SMTP_URL): mails are written as .eml files", metadata: ["directory": "\(path)"])
            }
            let scheme = tls == nil ? "http" : "https"
            logger.info("serving", metadata: ["url": "\(scheme)://\(settings.server.host):\(settings.server.port)"])
            try await app.runService()
        } catch {
            await endpoint.close()
            throw error
        }
        await endpoint.close()
    }
}
