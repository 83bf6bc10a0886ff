import AtriumCore
import AtriumCrypto
import Hummingbird
import Logging
import ServiceLifecycle

/// What the HTTP layer serves from.
public struct AtriumServices: Sendable {
    public let database: Database
    public let auth: AuthService
    public let collections: CollectionService
    public let records: RecordService

    public init(database: Database, auth: AuthService, collections: CollectionService, records: RecordService) {
        self.database = database
        self.auth = auth
        self.collections = collections
        self.records = records
    }

    /// Every service over one database, with the caches they share.
    public static func make(database: Database, auth: AuthConfiguration, revocations: RevocationSet, cache: CollectionCache, logger: Logger) -> AtriumServices {
        let authService = AuthService(database: database, configuration: auth, revocations: revocations, logger: logger)
        let collections = CollectionService(database: database, cache: cache, logger: logger)
        let records = RecordService(
            database: database, collections: collections,
            cursorKey: auth.keyRing.derivedKey(purpose: "atrium list cursors"), logger: logger
        )
        return AtriumServices(database: database, auth: authService, collections: collections, records: records)
    }
}

/// Builds the Atrium HTTP application.
///
/// `services` (the database pool, the revocation watcher, …) run in the application's service
/// group after the server, so on shutdown the server stops taking connections and finishes
/// in-flight requests before they stop.
public func buildApplication(
    server: ServerConfiguration,
    services: AtriumServices,
    backgroundServices: [any Service] = [],
    logger: Logger
) -> some ApplicationProtocol {
    Application(
        router: buildRouter(services: services, server: server),
        configuration: ApplicationConfiguration(
            address: .hostname(server.host, port: server.port),
            serverName: nil
        ),
        services: [services.database] + backgroundServices,
        logger: logger
    )
}

/// The router with every route and middleware; tests use it directly.
public func buildRouter(services: AtriumServices, server: ServerConfiguration = ServerConfiguration()) -> Router<AtriumRequestContext> {
    let router = Router(context: AtriumRequestContext.self)
    router.add(middleware: RequestIDMiddleware())
    router.add(middleware: ProblemMiddleware())
    router.add(middleware: ClientAddressMiddleware(hops: server.proxyHops))
    router.add(middleware: AuthenticationMiddleware(auth: services.auth))
    HealthRoutes(database: services.database).register(on: router)
    AuthRoutes(auth: services.auth).register(on: router)
    AccountRoutes(auth: services.auth).register(on: router)
    MemberRoutes(auth: services.auth).register(on: router)
    CollectionRoutes(collections: services.collections).register(on: router)
    RecordRoutes(records: services.records).register(on: router)
    return router
}
