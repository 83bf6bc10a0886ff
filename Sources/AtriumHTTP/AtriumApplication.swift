import AtriumCore
import Hummingbird
import Logging
import ServiceLifecycle

/// Builds the Atrium HTTP application around an open database.
///
/// The database's pool runs as one of the application's services, so on shutdown the server
/// stops taking connections and finishes in-flight requests before the pool closes.
public func buildApplication(
    server: ServerConfiguration,
    database: Database,
    services: [any Service] = [],
    logger: Logger
) -> some ApplicationProtocol {
    let router = buildRouter(database: database)
    return Application(
        router: router,
        configuration: ApplicationConfiguration(
            address: .hostname(server.host, port: server.port),
            serverName: nil
        ),
        services: [database] + services,
        logger: logger
    )
}

/// The router with every route and middleware; tests use it directly.
public func buildRouter(database: Database) -> Router<AtriumRequestContext> {
    let router = Router(context: AtriumRequestContext.self)
    router.add(middleware: RequestIDMiddleware())
    router.add(middleware: ProblemMiddleware())
    HealthRoutes(database: database).register(on: router)
    return router
}
