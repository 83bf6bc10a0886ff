import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A private PostgreSQL cluster started from the installed server programs.
///
/// `atrium serve` uses a persistent one under `.atrium/` when no `DATABASE_URL` is given; tests
/// use a temporary one that disappears when they end. The server listens on a Unix socket
/// only, in a directory no other user can enter, with trust authentication.
public final class EmbeddedPostgres: Sendable {
    /// Where the cluster lives and how it is tuned.
    public struct Configuration: Sendable {
        /// Holds `postgres/` (data), `postgres.log`, `run/` (socket) and a lock; nil for a
        /// temporary cluster removed on `stop()`.
        public var directory: String?
        /// Server settings passed as `-c name=value`.
        public var settings: [String: String]
        /// How long to wait for the server to accept connections.
        public var startTimeout: Duration

        public init(directory: String?, settings: [String: String] = [:], startTimeout: Duration = .seconds(60)) {
            self.directory = directory
            self.settings = settings
            self.startTimeout = startTimeout
        }

        /// A cluster kept in `directory` across runs.
        public static func persistent(at directory: String) -> Configuration {
            Configuration(directory: directory)
        }

        /// A throwaway cluster tuned for speed over durability (no fsync), as tests want; with room
        /// for the connections of the many servers a parallel test run starts at once.
        public static var temporary: Configuration {
            Configuration(directory: nil, settings: [
                "fsync": "off",
                "synchronous_commit": "off",
                "full_page_writes": "off",
                "max_connections": "800",
            ])
        }
    }

    /// The superuser `initdb` created.
    public let superuser = "postgres"
    /// The port in the socket's name (`.s.PGSQL.<port>`).
    public let port: Int
    /// Directory holding the server's Unix socket.
    public let socketDirectory: String
    /// The data directory.
    public let dataDirectory: String
    /// The server log.
    public let logFile: String
    public let binaries: PostgresBinaries
    /// How the server process is started (the same each time, so restarts keep port and socket).
    let serverArguments: [String]
    let server: Mutex<RunningServer?>
    /// Supervision: the server's state and how often it was restarted.
    let supervision = Mutex(Status(phase: .running, restarts: 0))
    let root: String
    let temporary: Bool
    let lockDescriptor: Int32
    private let stopped = Mutex(false)
    let logger: Logger

    init(
        port: Int, socketDirectory: String, dataDirectory: String, logFile: String, binaries: PostgresBinaries,
        serverArguments: [String], root: String, temporary: Bool, lockDescriptor: Int32, logger: Logger
    ) {
        self.port = port
        self.socketDirectory = socketDirectory
        self.dataDirectory = dataDirectory
        self.logFile = logFile
        self.binaries = binaries
        self.serverArguments = serverArguments
        self.server = Mutex(nil)
        self.root = root
        self.temporary = temporary
        self.lockDescriptor = lockDescriptor
        self.logger = logger
    }

    /// A libpq connection string for `database` as `user` over the Unix socket.
    public func connectionString(database: String = "postgres", user: String? = nil) -> String {
        "host=\(Self.quote(self.socketDirectory)) port=\(self.port) user=\(Self.quote(user ?? self.superuser)) dbname=\(Self.quote(database))"
    }

    /// The `psql` command an administrator can paste to reach `database`.
    public func psqlCommand(database: String) -> String {
        "psql -h \(self.socketDirectory) -p \(self.port) -U \(self.superuser) \(database)"
    }

    private static func quote(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }

    /// Stops the server (fast shutdown: sessions are ended, data is flushed) and, for a
    /// temporary cluster, deletes it. Safe to call more than once.
    public func stop() async {
        let alreadyStopped = self.stopped.withLock { stopped in
            defer { stopped = true }
            return stopped
        }
        guard !alreadyStopped else { return }
        await self.stopServer()
        close(self.lockDescriptor)
        if !self.socketDirectory.hasPrefix(self.root + "/") {
            try? FileManager.default.removeItem(atPath: self.socketDirectory)
        }
        if self.temporary {
            try? FileManager.default.removeItem(atPath: self.root)
        }
    }

    /// Stops the server and starts it again on the same data, port and socket.
    public func restart() async throws {
        await self.stopServer()
        try await self.startServer(timeout: .seconds(60))
    }

    /// The server process this cluster runs now, reaped the moment it exits.
    struct RunningServer: Sendable {
        let process: ChildProcess
        let exit: ProcessExit
    }

    /// Starts the server process again after `stopServer()` and waits until it accepts
    /// connections. For restarts and failure drills; `start` does this the first time.
    public func startServer(timeout: Duration = .seconds(60)) async throws {
        let process = try ChildProcess.spawn(self.serverArguments, logPath: self.logFile, newSession: true)
        let running = RunningServer(process: process, exit: ProcessExit(pid: process.pid))
        self.server.withLock { $0 = running }
        if self.temporary {
            TemporaryClusters.shared.add(pid: process.pid, root: self.root)
        }
        try await self.waitUntilReady(running, timeout: timeout)
    }

    /// Stops the server process but keeps the cluster (data, port, socket directory), so
    /// `startServer()` can bring it back. Fast shutdown, immediate if that takes over 30
    /// seconds. Logs how the process ended.
    public func stopServer() async {
        guard let running = self.server.withLock({ server in
            defer { server = nil }
            return server
        }) else { return }
        if let status = running.exit.status {
            TemporaryClusters.shared.remove(running.process.pid)
            self.logger.warning("embedded PostgreSQL had already exited", metadata: ["exit.status": "\(status)"])
            return
        }
        running.process.signal(SIGINT)
        let status = await withTaskGroup(of: Int32?.self) { group in
            group.addTask { await running.exit.wait() }
            group.addTask {
                try? await Task.sleep(for: .seconds(30))
                return nil
            }
            let first = await group.next() ?? nil
            if first == nil { running.process.signal(SIGQUIT) }
            group.cancelAll()
            return first
        }
        let final = await running.exit.wait() ?? -1
        TemporaryClusters.shared.remove(running.process.pid)
        self.logger.info("embedded PostgreSQL stopped", metadata: ["clean": "\(status == 0)", "exit.status": "\(final)"])
    }
}

extension EmbeddedPostgres {
    /// Runs a client program (pgbench, psql, …) to completion and returns its exit status and
    /// everything it printed. The program starts with default signal handling, which matters:
    /// threads here block signals, and pgbench times `-T` runs with SIGALRM.
    public static func runProgram(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        var template = Array("/tmp/atrium-output-XXXXXX".utf8CString)
        let descriptor = mkstemp(&template)
        guard descriptor >= 0 else {
            throw EmbeddedPostgresError("could not create a temporary file: \(String(cString: strerror(errno)))")
        }
        close(descriptor)
        let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer { unlink(path) }
        let status = try await ChildProcess.run(arguments, logPath: path)
        let output = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return (status, output)
    }
}
