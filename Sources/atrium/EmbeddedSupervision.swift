import AtriumCore
import EmbeddedPostgres
import ServiceLifecycle

/// Keeps the embedded PostgreSQL running while Atrium serves: restarts it when it dies, and
/// ends the service group (so the process exits non-zero, for its own supervisor) when it
/// cannot. Reports its state for `/readyz` and the metrics.
struct EmbeddedSupervision: Service, DatabaseProcessMonitor {
    let cluster: EmbeddedPostgres

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await self.cluster.supervise()
            }
        } catch is CancellationError {
            // Shutting down.
        }
    }

    var processState: DatabaseProcessState {
        let status = self.cluster.status
        let phase: DatabaseProcessState.Phase = switch status.phase {
        case .running: .running
        case .restarting: .restarting
        case .failed: .failed
        }
        return DatabaseProcessState(phase: phase, restarts: status.restarts)
    }
}
