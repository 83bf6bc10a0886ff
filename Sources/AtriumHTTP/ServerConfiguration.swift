/// Where and how the HTTP server listens, and the limits it holds every request to.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// Trusted reverse proxies in front of Atrium; the client address is read from
    /// `X-Forwarded-For` accordingly. 0: use the socket's peer address.
    public var proxyHops: Int
    /// HTTPS with HTTP/2; nil serves plain HTTP/1.1.
    public var tls: TLSSettings?
    public var limits: Limits
    public var cors: CORSPolicy
    public var rateLimits: RateLimitPolicy
    public var metrics: MetricsExposure
    /// Tenants that get pool-wait series of their own in the metrics (the ones that waited
    /// most); 0 for none.
    public var metricsTenants: Int
    /// One structured log line per request.
    public var accessLog: Bool
    /// The access log's line format (the format of every other log line too).
    public var accessLogFormat: AccessLog.Format
    /// Where access log lines go: standard error, with every other log line.
    public var accessLogSink: AccessLog.Sink

    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        proxyHops: Int = 0,
        tls: TLSSettings? = nil,
        limits: Limits = Limits(),
        cors: CORSPolicy = CORSPolicy(),
        rateLimits: RateLimitPolicy = RateLimitPolicy(),
        metrics: MetricsExposure = .sameServer,
        metricsTenants: Int = 0,
        accessLog: Bool = true,
        accessLogFormat: AccessLog.Format = .text,
        accessLogSink: AccessLog.Sink = .standardError
    ) {
        self.host = host
        self.port = port
        self.proxyHops = proxyHops
        self.tls = tls
        self.limits = limits
        self.cors = cors
        self.rateLimits = rateLimits
        self.metrics = metrics
        self.metricsTenants = metricsTenants
        self.accessLog = accessLog
        self.accessLogFormat = accessLogFormat
        self.accessLogSink = accessLogSink
    }

    /// The bounds that keep one client from holding more than its share.
    public struct Limits: Sendable {
        /// Largest request body; refused with 413 from `Content-Length` before reading, or as
        /// soon as a chunked body passes it.
        public var maximumBodySize: Int
        /// Largest request head (request line and all header fields).
        public var maximumHeaderSize: Int
        /// A handler running longer than this is cancelled and answered 503.
        public var requestTimeout: Duration
        /// A client must send a complete request head this soon after connecting or after the
        /// previous response, or the connection is closed.
        public var headerTimeout: Duration
        /// A connection with no traffic at all for this long is closed.
        public var idleTimeout: Duration
        /// Connections served at once; more wait in the listen backlog.
        public var maximumConnections: Int
        /// A streamed response (an export) whose client takes longer than this to accept the
        /// next part is ended, and what it held is freed.
        public var streamStallTimeout: Duration

        public init(
            maximumBodySize: Int = 1 << 20,
            maximumHeaderSize: Int = 32 * 1024,
            requestTimeout: Duration = .seconds(30),
            headerTimeout: Duration = .seconds(10),
            idleTimeout: Duration = .seconds(60),
            maximumConnections: Int = 4096,
            streamStallTimeout: Duration = .seconds(30)
        ) {
            self.maximumBodySize = maximumBodySize
            self.maximumHeaderSize = maximumHeaderSize
            self.requestTimeout = requestTimeout
            self.headerTimeout = headerTimeout
            self.idleTimeout = idleTimeout
            self.maximumConnections = maximumConnections
            self.streamStallTimeout = streamStallTimeout
        }
    }

    /// Where `/metrics` is served.
    public enum MetricsExposure: Sendable, Equatable {
        case off
        /// On the API's own port.
        case sameServer
        /// On a port of its own (plain HTTP on the same host), away from the public API.
        case port(Int)
    }
}

/// HTTPS: PEM files, or a certificate made at start for development.
public struct TLSSettings: Sendable {
    public enum Source: Sendable {
        case files(certificate: String, key: String)
        case selfSigned
    }

    public var source: Source

    public init(_ source: Source) {
        self.source = source
    }
}

/// Which browser origins may call the API.
public struct CORSPolicy: Sendable {
    /// Exact origins (`https://app.example.com`); `["*"]` for any origin, without credentials.
    public var allowedOrigins: [String]
    /// Whether browsers may send cookies or HTTP authentication (never with `*`).
    public var allowCredentials: Bool
    /// How long browsers may cache a preflight answer.
    public var maxAge: Int

    public init(allowedOrigins: [String] = [], allowCredentials: Bool = false, maxAge: Int = 600) {
        self.allowedOrigins = allowedOrigins
        self.allowCredentials = allowCredentials
        self.maxAge = maxAge
    }
}

/// Token buckets: one per tenant for authenticated requests, one per client address otherwise.
public struct RateLimitPolicy: Sendable {
    /// Requests per second a tenant may sustain (0 turns the tenant limit off) and its burst.
    public var tenantRate: Double
    public var tenantBurst: Int
    /// The same for unauthenticated requests, per client address.
    public var addressRate: Double
    public var addressBurst: Int

    public init(tenantRate: Double = 100, tenantBurst: Int = 200, addressRate: Double = 10, addressBurst: Int = 40) {
        self.tenantRate = tenantRate
        self.tenantBurst = tenantBurst
        self.addressRate = addressRate
        self.addressBurst = addressBurst
    }
}
