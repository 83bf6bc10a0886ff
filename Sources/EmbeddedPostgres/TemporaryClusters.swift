import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Temporary clusters this process started, so they are shut down even when the process exits
/// without stopping them (a test runner calling `exit`), and ones whose owner died are cleaned up.
final class TemporaryClusters: Sendable {
    static let shared = TemporaryClusters()

    private let clusters = Mutex<[pid_t: String]>([:])

    private init() {
        atexit {
            TemporaryClusters.shared.shutDownAll()
        }
    }

    func add(pid: pid_t, root: String) {
        self.clusters.withLock { $0[pid] = root }
    }

    func remove(_ pid: pid_t) {
        _ = self.clusters.withLock { $0.removeValue(forKey: pid) }
    }

    /// Immediate shutdown of every cluster still running; called at process exit.
    private func shutDownAll() {
        let remaining = self.clusters.withLock { clusters in
            defer { clusters.removeAll() }
            return clusters
        }
        for (pid, root) in remaining {
            kill(pid, SIGQUIT)
            var status: Int32 = 0
            for _ in 0..<100 {
                if waitpid(pid, &status, WNOHANG) != 0 { break }
                usleep(20_000)
            }
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    /// Removes temporary clusters left behind by processes that no longer exist.
    func removeAbandoned() {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/tmp") else { return }
        for entry in entries where entry.hasPrefix("atrium-pg-") {
            let root = "/tmp/" + entry
            guard let owner = try? String(contentsOfFile: root + "/owner.pid", encoding: .utf8),
                  let ownerPID = pid_t(owner.trimmingCharacters(in: .whitespacesAndNewlines)),
                  kill(ownerPID, 0) != 0, errno == ESRCH
            else { continue }
            if let postmaster = try? String(contentsOfFile: root + "/postgres/postmaster.pid", encoding: .utf8),
               let line = postmaster.split(separator: "\n").first, let pid = pid_t(line), pid > 0 {
                kill(pid, SIGQUIT)
                usleep(200_000)
            }
            try? FileManager.default.removeItem(atPath: root)
        }
    }
}
