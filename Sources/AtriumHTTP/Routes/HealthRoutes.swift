import AtriumCore
import HTTPTypes
import Hummingbird

/// `/healthz`: the process is alive. `/readyz`: it can reach PostgreSQL and should get traffic.
struct HealthRoutes {
    let database: Database

    func register(on router: RouteRecorder) {
        router.get("/healthz") { _, _ in
            Self.status("ok")
        }
        router.get("/readyz") { _, _ in
            guard await self.database.isReachable() else {
                throw Problem(.unavailable, detail: "PostgreSQL is not reachable", headers: [.retryAfter: "5"])
            }
            return Self.status("ready")
        }
    }

    static func status(_ status: String) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: "{\"status\":\"\(status)\"}"))
        )
    }
}
