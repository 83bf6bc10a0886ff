import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// `GET /metrics`: the Prometheus text exposition.
struct MetricsRoutes {
    let metrics: AtriumMetrics

    func register(on router: some RouterMethods<AtriumRequestContext>) {
        router.get("/metrics") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: self.metrics.exposition()))
            )
        }
    }
}

/// `/metrics` on a port of its own, for scrapers on a private network.
struct MetricsServer: Service {
    let host: String
    let port: Int
    let metrics: AtriumMetrics
    let logger: Logger

    func run() async throws {
        let router = Router(context: AtriumRequestContext.self)
        MetricsRoutes(metrics: self.metrics).register(on: router)
        let app = Application(router: router, configuration: .init(address: .hostname(self.host, port: self.port), serverName: nil), logger: self.logger)
        try await app.runService()
    }
}

/// `Strict-Transport-Security` on every response served over TLS.
struct StrictTransportSecurityMiddleware: RouterMiddleware {
    typealias Context = AtriumRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[HTTPField.Name("Strict-Transport-Security")!] = "max-age=31536000"
        return response
    }
}
