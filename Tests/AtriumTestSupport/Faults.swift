import EmbeddedPostgres
import Foundation
import PostgresPool
#if canImport(Glibc)
import Glibc
#endif

/// Fault drills on a cluster of a test's own (never the shared one).
extension EmbeddedPostgres {
    /// The postmaster's process id, from `postmaster.pid`.
    public var postmasterPID: pid_t? {
        guard let contents = try? String(contentsOfFile: self.dataDirectory + "/postmaster.pid", encoding: .utf8),
              let first = contents.split(separator: "\n").first
        else { return nil }
        return pid_t(first)
    }

    /// Stops every PostgreSQL process of the cluster (SIGSTOP): the kernel still accepts
    /// connections for it, but nothing answers. Backends put themselves in sessions of their
    /// own, so they are found as the postmaster's children, not by process group.
    public func freeze() {
        guard let postmaster = self.postmasterPID else { return }
        kill(postmaster, SIGSTOP)
        for child in Self.children(of: postmaster) { kill(child, SIGSTOP) }
    }

    public func thaw() {
        guard let postmaster = self.postmasterPID else { return }
        for child in Self.children(of: postmaster) { kill(child, SIGCONT) }
        kill(postmaster, SIGCONT)
    }

    /// Processes whose parent is `parent`, from /proc.
    static func children(of parent: pid_t) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry in
            guard let pid = pid_t(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")")
            else { return nil }
            // "pid (comm) state ppid …": the command may hold spaces and parentheses.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && pid_t(fields[1]) == parent ? pid : nil
        }
    }
}

/// The time an operation took; with `deadline`, the operation's task is cancelled then.
public struct DeadlineError: Error {}

/// Runs `body`, cancelling it at `deadline`; returns its result or throws what it threw.
public func withDeadline<T: Sendable>(_ deadline: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try? await Task.sleep(for: deadline)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw DeadlineError() }
        return value
    }
}

extension ConnectionPool {
    /// Opens `count` connections: as many callers each hold one until all of them are out.
    /// (Queries alone might share connections: a busy connection takes several in one round.)
    public func openConnections(_ count: Int) async throws {
        let allOut = Locked(false)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<count {
                group.addTask {
                    try await self.withConnection { _ in
                        let deadline = ContinuousClock.now + .seconds(30)
                        // The first to see them all out tells the rest: once one lets go, the
                        // others would never see the full count again.
                        while !allOut.value, ContinuousClock.now < deadline {
                            if self.statistics.inUse >= count { allOut.withLock { $0 = true } }
                            try await Task.sleep(for: .milliseconds(5))
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}
