/// A database process this server supervises itself (the embedded PostgreSQL), for readiness
/// checks and metrics. Absent when PostgreSQL runs elsewhere.
public protocol DatabaseProcessMonitor: Sendable {
    var processState: DatabaseProcessState { get }
}

/// How a supervised database process is doing.
public struct DatabaseProcessState: Sendable, Equatable {
    public enum Phase: String, Sendable {
        case running
        /// It exited on its own and is being started again.
        case restarting
        /// It could not be started again; the server is about to exit.
        case failed
    }

    public var phase: Phase
    /// How often it was started again since the server began.
    public var restarts: Int

    public init(phase: Phase, restarts: Int) {
        self.phase = phase
        self.restarts = restarts
    }
}
