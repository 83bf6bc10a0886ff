import ArgumentParser
import AtriumCore
import AtriumHTTP
import Hummingbird
import Logging
import PostgresPool

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

    func run() async throws {
        let settings = try Settings.resolve(database: self.database, host: self.host, port: self.port, noMigrate: self.noMigrate)
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
            let configuration = AuthConfiguration(
                keyRing: try TokenKeys.load(settings, logger: logger),
                passwordParameters: settings.passwordParameters,
                hashingPermits: settings.hashingThreads,
                hashingQueue: settings.hashingQueue
            )
            let revocations = RevocationSet(retention: configuration.accessTokenLifetime)
            let cache = CollectionCache()
            let services = AtriumServices.make(database: database, auth: configuration, revocations: revocations, cache: cache, logger: logger)
            let watcher = ChangeWatcher(
                database: database,
                revocations: revocations,
                collections: cache,
                listenerConfiguration: PostgresConfiguration(connectionString: endpoint.configuration.url),
                logger: logger
            )
            // Known revocations must be in memory before the first request is served.
            try await watcher.reload()
            let app = buildApplication(
                server: settings.server,
                services: services,
                backgroundServices: [watcher],
                logger: logger
            )
            logger.info("serving", metadata: ["url": "http://\(settings.server.host):\(settings.server.port)"])
            try await app.runService()
        } catch {
            await endpoint.close()
            throw error
        }
        await endpoint.close()
    }
}
