import AtriumCore
import Hummingbird
import Logging
import ServiceLifecycle

/// What the HTTP layer serves from.
public struct AtriumServices: Sendable {
    public let database: Database
    public let auth: AuthService

    public init(database: Database, auth: AuthService) {
        self.database = database
        self.auth = auth
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
    return router
}
