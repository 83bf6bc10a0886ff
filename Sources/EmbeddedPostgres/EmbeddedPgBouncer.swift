import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Debian's PgBouncer in transaction mode in front of an embedded cluster, on a loopback port
/// with trust authentication: for running the service's tests and benchmarks through it (as
/// `ATRIUM_DATABASE_POOLER=transaction` deployments do). Like PostgreSQL it will not run as
/// root, so it runs as the cluster's account.
public final class EmbeddedPgBouncer: Sendable {
    public let port: Int
    public let pid: Int32
    private let directory: String

    private static let running = Mutex<[EmbeddedPgBouncer]>([])

    private init(port: Int, pid: Int32, directory: String) {
        self.port = port
        self.pid = pid
        self.directory = directory
    }

    /// Starts PgBouncer pooling transactions to `cluster`'s socket for `users`; stopped by
    /// `stop()` or at the latest when this process exits.
    public static func start(in front: EmbeddedPostgres, users: [String], poolSize: Int = 20) async throws -> EmbeddedPgBouncer {
        guard let binary = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw EmbeddedPostgresError("pgbouncer is not installed (apt-get install pgbouncer)")
        }
        let account = try ServerAccount.current()
        let directory = front.dataDirectory + "-pgbouncer-\(UUID().uuidString.prefix(8))"
        try account.makePrivateDirectory(directory)
        let port = try FreePort.find()
        let config = """
            [databases]
            * = host=\(front.socketDirectory) port=\(front.port)
            [pgbouncer]
            listen_addr = 127.0.0.1
            listen_port = \(port)
            unix_socket_dir =
            auth_type = trust
            auth_file = \(directory)/users.txt
            pool_mode = transaction
            max_client_conn = 2000
            default_pool_size = \(poolSize)
            logfile = \(directory)/pgbouncer.log
            """
        for (file, text) in [("pgbouncer.ini", config), ("users.txt", users.map { "\"\($0)\" \"\"\n" }.joined())] {
            try text.write(toFile: directory + "/" + file, atomically: false, encoding: .utf8)
            if !account.isCurrentUser { chown(directory + "/" + file, account.uid, account.gid) }
        }
        let child = try ChildProcess.spawn(account.commandPrefix + [binary, directory + "/pgbouncer.ini"], logPath: nil, newSession: true)
        let bouncer = EmbeddedPgBouncer(port: port, pid: child.pid, directory: directory)
        Self.running.withLock { running in
            if running.isEmpty { atexit { EmbeddedPgBouncer.stopAll() } }
            running.append(bouncer)
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while !FreePort.accepts(port) {
            var status: Int32 = 0
            guard waitpid(child.pid, &status, WNOHANG) == 0, ContinuousClock.now < deadline else {
                let log = (try? String(contentsOfFile: directory + "/pgbouncer.log", encoding: .utf8)) ?? ""
                bouncer.stop()
                throw EmbeddedPostgresError("pgbouncer did not start: \(log)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return bouncer
    }

    /// A libpq connection string to `database` through PgBouncer.
    public func connectionString(database: String, user: String) -> String {
        "host=127.0.0.1 port=\(self.port) dbname=\(database) user=\(user)"
    }

    /// Stops PgBouncer (at once: clients are the caller's own) and removes its directory.
    public func stop() {
        guard Self.running.withLock({ running in
            guard let index = running.firstIndex(where: { $0 === self }) else { return false }
            running.remove(at: index)
            return true
        }) else { return }
        kill(self.pid, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(self.pid, &status, 0)
        try? FileManager.default.removeItem(atPath: self.directory)
    }

    private static func stopAll() {
        for bouncer in Self.running.withLock({ $0 }) { bouncer.stop() }
    }
}
