import Foundation
import Logging
import Synchronization

extension EmbeddedPostgres {
    /// What supervision reports: whether the server runs, and how often it was restarted.
    public struct Status: Sendable, Equatable {
        public enum Phase: String, Sendable {
            case running
            /// It exited on its own; supervision is starting it again.
            case restarting
            /// It could not be started again; supervision gave up.
            case failed
        }

        public var phase: Phase
        public var restarts: Int

        public init(phase: Phase, restarts: Int) {
            self.phase = phase
            self.restarts = restarts
        }
    }

    /// How supervision restarts a server that died.
    public struct RestartPolicy: Sendable {
        /// Waits before the attempts to start it again, one per attempt.
        public var delays: [Duration]
        /// More unexpected exits than this within `window` mean something is wrong that a restart
        /// will not mend: supervision gives up.
        public var maximumCrashes: Int
        public var window: Duration

        public init(
            delays: [Duration] = [.milliseconds(200), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5)],
            maximumCrashes: Int = 5,
            window: Duration = .seconds(60)
        ) {
            self.delays = delays
            self.maximumCrashes = maximumCrashes
            self.window = window
        }
    }

    public var status: Status {
        self.supervision.withLock { $0 }
    }

    /// Watches the server until it is stopped on purpose (`stopServer`, `stop`) or the task is
    /// cancelled. When it exits on its own — killed, crashed — the exit is reaped and logged
    /// with its status, and the server is started again (PostgreSQL's crash recovery does the
    /// rest), with waits between attempts. Throws when it cannot be started again, or keeps
    /// dying: then the process that runs it should exit, for its own supervisor to act.
    public func supervise(policy: RestartPolicy = RestartPolicy()) async throws {
        var crashes: [ContinuousClock.Instant] = []
        while !Task.isCancelled {
            guard let running = self.server.withLock({ $0 }) else { return }
            // Ended by cancellation (shutting down), or stopped on purpose (the running server
            // was taken away before it was signalled): nothing to do.
            guard let status = await running.exit.wait(), !Task.isCancelled,
                  self.server.withLock({ $0?.process.pid == running.process.pid })
            else { return }
            self.server.withLock { $0 = nil }
            TemporaryClusters.shared.remove(running.process.pid)
            let now = ContinuousClock.now
            crashes = crashes.filter { now - $0 < policy.window } + [now]
            self.logger.error("embedded PostgreSQL exited unexpectedly", metadata: [
                "exit.status": "\(status)", "postgres.log": "\(self.logFile)",
            ])
            guard crashes.count <= policy.maximumCrashes else {
                self.supervision.withLock { $0.phase = .failed }
                throw EmbeddedPostgresError("embedded PostgreSQL exited \(crashes.count) times within \(policy.window); not restarting it again (see \(self.logFile))")
            }
            self.supervision.withLock { $0.phase = .restarting }
            try await self.restartAfterCrash(policy: policy)
        }
    }

    private func restartAfterCrash(policy: RestartPolicy) async throws {
        var lastError: (any Error)?
        for (attempt, delay) in policy.delays.enumerated() {
            try await Task.sleep(for: delay)
            do {
                try await self.startServer(timeout: .seconds(60))
                let restarts = self.supervision.withLock { status in
                    status.phase = .running
                    status.restarts += 1
                    return status.restarts
                }
                self.logger.notice("embedded PostgreSQL restarted", metadata: ["attempt": "\(attempt + 1)", "restarts": "\(restarts)"])
                return
            } catch {
                lastError = error
                self.logger.warning("could not restart embedded PostgreSQL", metadata: ["attempt": "\(attempt + 1)", "error": "\(error)"])
                // A server that started but died at once is gone; one still starting is stopped.
                if self.server.withLock({ $0?.exit.status == nil && $0 != nil }) { await self.stopServer() }
                self.server.withLock { $0 = nil }
            }
        }
        self.supervision.withLock { $0.phase = .failed }
        throw EmbeddedPostgresError(
            "embedded PostgreSQL could not be restarted after \(policy.delays.count) attempts: \(lastError.map { "\($0)" } ?? "unknown error")"
        )
    }
}
