public import AtriumCore
public import AtriumMail
import AtriumCrypto
public import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import NIOCore
public import Logging
public import ServiceLifecycle

/// What the HTTP layer serves from: every service over one database, with the state they
/// share (the revoked sessions, the collection definitions) and the watcher that keeps that
/// state current across servers. The one place the service graph is wired: `atrium serve`, the
/// tests and the benchmark all build it here.
public struct AtriumServices: Sendable {
    public let database: Database
    public let auth: AuthService
    public let collections: CollectionService
    public let records: RecordService
    /// The change log's live feed for this server's event subscribers.
    public let feed: ChangeFeed
    /// One-time tickets that open an event stream (for browsers' EventSource).
    public let tickets: EventTickets
    /// Webhook endpoints and their deliveries.
    public let webhooks: WebhookService
    /// This server's share of webhook work; runs with the application.
    public let dispatcher: WebhookDispatcher
    /// This server's share of the mail outbox, when mail is sent from here; runs with the application.
    public let mailer: MailDispatcher?
    /// Sessions revoked on any server, kept by `watcher`.
    public let revocations: RevocationSet
    /// Listens for revocations and collection changes; runs with the application. Call
    /// `reload()` before serving so revocations made before the start are known.
    public let watcher: ChangeWatcher
    /// The database process, when this server runs it (the embedded PostgreSQL).
    public let databaseProcess: (any DatabaseProcessMonitor)?
    /// This server among the deployment's (heartbeats; how many servers share the rate limits).
    public let servers: ServerRegistry
    /// The HTTP connections open now, counted by the connection cap.
    public let connections = HTTPConnections()

    public init(
        database: Database, auth: AuthConfiguration, exportLimits: ExportLimits = ExportLimits(),
        changeFeed: ChangeFeedConfiguration = ChangeFeedConfiguration(),
        webhooks: WebhookConfiguration = WebhookConfiguration(),
        mail: MailDelivery? = nil,
        databaseProcess: (any DatabaseProcessMonitor)? = nil, logger: Logger
    ) throws {
        let revocations = RevocationSet(retention: auth.accessTokenLifetime)
        let cache = CollectionCache()
        self.database = database
        self.auth = AuthService(database: database, configuration: auth, revocations: revocations, logger: logger)
        self.collections = CollectionService(database: database, cache: cache, records: RecordStore(), logger: logger)
        self.records = RecordService(
            database: database, collections: self.collections,
            cursorKey: auth.keyRing.derivedKey(purpose: "atrium list cursors"), exportLimits: exportLimits, logger: logger
        )
        self.feed = ChangeFeed(
            database: database, collections: self.collections, revocations: revocations, configuration: changeFeed,
            positionKey: auth.keyRing.derivedKey(purpose: "atrium event positions"), logger: logger
        )
        self.tickets = EventTickets(database: database, revocations: revocations)
        self.revocations = revocations
        self.watcher = ChangeWatcher(database: database, revocations: revocations, collections: cache, feed: self.feed, logger: logger)
        self.webhooks = WebhookService(database: database, configuration: webhooks, logger: logger)
        let dispatcher = WebhookDispatcher(webhooks: self.webhooks, logger: logger)
        self.dispatcher = dispatcher
        self.watcher.observeChanges { dispatcher.wake() }
        self.watcher.observeWebhooks { dispatcher.endpointsChanged() }
        if let mail {
            let mailer = try MailDispatcher(
                outbox: MailOutbox(database: database, retrySchedule: mail.retrySchedule), transport: mail.transport, from: mail.from,
                pollInterval: mail.pollInterval, logger: logger
            )
            self.mailer = mailer
            self.watcher.observeMail { mailer.wake() }
        } else {
            self.mailer = nil
        }
        self.databaseProcess = databaseProcess
        self.servers = ServerRegistry(database: database, logger: logger)
    }
}

/// The router, the table of its routes and the metrics it records into.
public struct AtriumRouter {
    public let router: Router<AtriumRequestContext>
    public let routes: RouteTable
    public let metrics: AtriumMetrics?
    /// The access log's writer; runs with the application so it is flushed at shutdown.
    public let accessLog: AccessLog?
}

/// Builds the Atrium HTTP application: HTTP/1.1, or with `server.tls` HTTPS with HTTP/2 by ALPN.
///
/// `services` (the database pool, the revocation watcher) and `backgroundServices` run in the
/// application's service group after the server, so on shutdown the server stops taking connections and finishes
/// in-flight requests before they stop.
public func buildApplication(
    server: ServerConfiguration,
    services: AtriumServices,
    tls: TLSSetup? = nil,
    backgroundServices: [any Service] = [],
    logger: Logger
) throws -> some ApplicationProtocol {
    let built = buildRouter(services: services, server: server, servesTLS: tls != nil)
    let limits = server.limits
    let headerTimeout = TimeAmount.nanoseconds(limits.headerTimeout.nanoseconds)
    let idleTimeout = TimeAmount.nanoseconds(limits.idleTimeout.nanoseconds)
    let http1 = HTTP1Channel.Configuration(
        additionalChannelHandlers: [ConnectionGuardHandler(headerTimeout: headerTimeout)],
        idleTimeout: idleTimeout,
        httpDecoderConfiguration: .init(
            maxHeaderFieldSize: limits.maximumHeaderSize,
            maxHeaderListSize: limits.maximumHeaderSize,
            maxHeaderFieldCount: 200
        )
    )
    let builder: HTTPServerBuilder
    if let tls {
        builder = try .http2Upgrade(
            tlsConfiguration: tls.configuration,
            configuration: HTTP2ChannelConfiguration(idleTimeout: limits.idleTimeout, gracefulCloseTimeout: .seconds(5), streamConfiguration: http1)
        )
    } else {
        builder = .http1(configuration: http1)
    }
    var background: [any Service] = [services.database, services.servers, services.watcher, services.feed, services.dispatcher] + backgroundServices
    if let mailer = services.mailer {
        background.append(mailer)
    }
    if let replicas = services.database.replicas {
        background.append(replicas)
    }
    if let accessLog = built.accessLog {
        background.append(accessLog)
    }
    if case .port(let port) = server.metrics, let metrics = built.metrics {
        background.append(MetricsServer(host: server.host, port: port, metrics: metrics, logger: logger))
    }
    return Application(
        router: built.router,
        server: builder,
        configuration: ApplicationConfiguration(
            address: .hostname(server.host, port: server.port),
            serverName: nil,
            availableConnectionsDelegate: ConnectionCap(maximum: limits.maximumConnections, connections: services.connections)
        ),
        services: background,
        logger: logger
    )
}

/// The router with every route and middleware; tests use it directly.
public func buildRouter(services: AtriumServices, server: ServerConfiguration = ServerConfiguration(), servesTLS: Bool = false) -> AtriumRouter {
    // HEAD is answered wherever GET is, without a body.
    let router = Router(context: AtriumRequestContext.self, options: .autoGenerateHeadEndpoints)
    let accessLog = server.accessLog ? AccessLog(format: server.accessLogFormat, sink: server.accessLogSink) : nil
    let metrics = server.metrics == .off ? nil : AtriumMetrics(services: services, tenantSeries: server.metricsTenants, accessLog: accessLog)
    let table = RouteTableReference()
    let registry = services.servers
    let limiter = RateLimiter(policy: server.rateLimits, servers: { registry.liveServers }, metrics: metrics)
    router.add(middleware: MiddlewareChain(
        requestID: RequestIDMiddleware(),
        clientAddress: ClientAddressMiddleware(hops: server.proxyHops),
        observability: ObservabilityMiddleware(metrics: metrics, accessLog: accessLog),
        strictTransportSecurity: servesTLS ? StrictTransportSecurityMiddleware() : nil,
        cors: CORSPolicyMiddleware(policy: server.cors),
        problems: ProblemMiddleware(routes: table),
        limits: LimitsMiddleware(limits: server.limits),
        authentication: AuthenticationMiddleware(auth: services.auth, limiter: limiter),
        rateLimit: RateLimitMiddleware(limiter: limiter),
        consistency: ConsistencyMiddleware(database: services.database)
    ))
    let recorder = RouteRecorder(router: router)
    HealthRoutes(database: services.database, process: services.databaseProcess).register(on: recorder)
    OpenAPIRoutes().register(on: recorder)
    if server.metrics == .sameServer, let metrics {
        MetricsRoutes(metrics: metrics).register(on: recorder)
    }
    AuthRoutes(auth: services.auth).register(on: recorder)
    AccountRoutes(auth: services.auth).register(on: recorder)
    MemberRoutes(auth: services.auth).register(on: recorder)
    CollectionRoutes(collections: services.collections).register(on: recorder)
    RecordRoutes(records: services.records).register(on: recorder)
    ExportRoutes(records: services.records, stallTimeout: server.limits.streamStallTimeout).register(on: recorder)
    EventRoutes(feed: services.feed, tickets: services.tickets, auth: services.auth, stallTimeout: server.limits.streamStallTimeout).register(on: recorder)
    WebhookRoutes(webhooks: services.webhooks, dispatcher: services.dispatcher).register(on: recorder)
    table.table = recorder.table
    return AtriumRouter(router: router, routes: recorder.table, metrics: metrics, accessLog: accessLog)
}

/// How this server sends the outbox's mail.
public struct MailDelivery: Sendable {
    public var transport: MailTransport
    public var from: MailAddress
    public var retrySchedule: [Duration]
    /// How often to look for retries that fell due (new mail is announced by NOTIFY).
    public var pollInterval: Duration

    public init(transport: MailTransport, from: MailAddress, retrySchedule: [Duration] = MailOutbox.defaultRetrySchedule, pollInterval: Duration = .seconds(5)) {
        self.transport = transport
        self.from = from
        self.retrySchedule = retrySchedule
        self.pollInterval = pollInterval
    }
}
