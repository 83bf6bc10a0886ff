import AtriumCore
import HTTPTypes
import Hummingbird

/// `/healthz`: the process is alive. `/readyz`: it can reach PostgreSQL and should get traffic
/// (not while the embedded PostgreSQL it supervises is being restarted).
struct HealthRoutes {
    let database: Database
    let process: (any DatabaseProcessMonitor)?

    func register(on router: RouteRecorder) {
        router.get("/healthz") { _, _ in
            Self.status("ok")
        }
        router.get("/readyz") { _, _ in
            if let state = self.process?.processState, state.phase != .running {
                throw Problem(
                    .unavailable, detail: "the embedded PostgreSQL is \(state.phase == .restarting ? "being restarted" : "down")",
                    reason: "database_\(state.phase.rawValue)", headers: [.retryAfter: "1"]
                )
            }
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
