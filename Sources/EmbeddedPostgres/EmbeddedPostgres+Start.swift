import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension EmbeddedPostgres {
    /// Initialises the cluster if needed, starts the server and waits until it accepts connections.
    public static func start(_ configuration: Configuration, logger: Logger) async throws -> EmbeddedPostgres {
        let binaries = try PostgresBinaries.locate()
        let account = try ServerAccount.current()
        let temporary = configuration.directory == nil
        let root: String
        if let directory = configuration.directory {
            root = URL(fileURLWithPath: directory).standardizedFileURL.path
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        } else {
            TemporaryClusters.shared.removeAbandoned()
            root = try Self.makeTemporaryDirectory()
        }

        let lockDescriptor = try await Self.lock(root + "/postgres.lock")
        do {
            let dataDirectory = try await Self.dataDirectory(root: root, account: account, logger: logger)
            let logFile = root + "/postgres.log"
            if !FileManager.default.fileExists(atPath: dataDirectory + "/PG_VERSION") {
                try await Self.initialize(dataDirectory, binaries: binaries, account: account, logFile: logFile, logger: logger)
            }
            await Self.stopOrphanedServer(dataDirectory: dataDirectory, logger: logger)
            let socketDirectory = try await Self.socketDirectory(root: root, account: account)
            let port = try Self.port(remembered: root + "/postgres.port")
            var arguments: [String] = account.commandPrefix + [
                binaries.postgres, "-D", dataDirectory, "-p", "\(port)", "-k", socketDirectory,
                "-c", "listen_addresses=", "-c", "unix_socket_permissions=0700",
            ]
            for (name, value) in configuration.settings.sorted(by: { $0.key < $1.key }) {
                arguments += ["-c", "\(name)=\(value)"]
            }
            let cluster = EmbeddedPostgres(
                port: port, socketDirectory: socketDirectory, dataDirectory: dataDirectory, logFile: logFile,
                binaries: binaries, serverArguments: arguments, root: root, temporary: temporary,
                lockDescriptor: lockDescriptor, logger: logger
            )
            do {
                try await cluster.startServer(timeout: configuration.startTimeout)
            } catch {
                await cluster.stop()
                throw error
            }
            logger.info("embedded PostgreSQL started", metadata: [
                "postgres.data": "\(dataDirectory)", "postgres.socket": "\(socketDirectory)", "postgres.port": "\(port)",
            ])
            return cluster
        } catch {
            close(lockDescriptor)
            if temporary { try? FileManager.default.removeItem(atPath: root) }
            throw error
        }
    }

    private static func makeTemporaryDirectory() throws -> String {
        var template = Array("/tmp/atrium-pg-XXXXXX".utf8CString)
        guard let path = mkdtemp(&template) else {
            throw EmbeddedPostgresError("could not create a temporary directory: \(String(cString: strerror(errno)))")
        }
        let root = String(cString: path)
        // Other users' (and the postgres user's) programs must be able to reach the cluster inside.
        chmod(root, 0o755)
        try "\(getpid())".write(toFile: root + "/owner.pid", atomically: true, encoding: .utf8)
        return root
    }

    /// Holds an exclusive lock on the cluster for as long as this process uses it, so a second
    /// process cannot start a server on the same data at the same time.
    private static func lock(_ path: String) async throws -> Int32 {
        let descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw EmbeddedPostgresError("could not open \(path): \(String(cString: strerror(errno)))")
        }
        // A child being spawned by another thread of this process holds a copy of the
        // descriptor until it execs (and closes it), so a lock just released may still look
        // taken for a moment: try for a second before calling it in use.
        var locked = flock(descriptor, LOCK_EX | LOCK_NB) == 0
        for _ in 0..<20 where !locked {
            do {
                try await Task.sleep(for: .milliseconds(50))
            } catch {
                close(descriptor)
                throw error
            }
            locked = flock(descriptor, LOCK_EX | LOCK_NB) == 0
        }
        guard locked else {
            close(descriptor)
            throw EmbeddedPostgresError(
                "another process is using the embedded database in \((path as NSString).deletingLastPathComponent); stop it first"
            )
        }
        return descriptor
    }

    /// `root/postgres`, unless the postgres user cannot reach it (a checkout under /root, say):
    /// then the data lives under /var/lib/atrium and `root/postgres` links to it.
    private static func dataDirectory(root: String, account: ServerAccount, logger: Logger) async throws -> String {
        let preferred = root + "/postgres"
        if let destination = try? FileManager.default.destinationOfSymbolicLink(atPath: preferred) {
            return destination
        }
        if FileManager.default.fileExists(atPath: preferred + "/PG_VERSION") {
            return preferred
        }
        try account.makePrivateDirectory(preferred)
        if await account.canUse(preferred) { return preferred }
        // Only an empty directory is removed; never anything that holds data.
        rmdir(preferred)
        let digest = root.utf8.reduce(UInt64(14_695_981_039_346_656_037)) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 }
        let fallback = "/var/lib/atrium/clusters/" + String(digest, radix: 16)
        try FileManager.default.createDirectory(atPath: "/var/lib/atrium/clusters", withIntermediateDirectories: true)
        chmod("/var/lib/atrium", 0o755)
        chmod("/var/lib/atrium/clusters", 0o755)
        try account.makePrivateDirectory(fallback)
        try FileManager.default.createSymbolicLink(atPath: preferred, withDestinationPath: fallback)
        logger.notice("the postgres user cannot reach the project directory; keeping embedded data elsewhere", metadata: [
            "postgres.data": "\(fallback)", "postgres.link": "\(preferred)",
        ])
        return fallback
    }

    private static func initialize(
        _ dataDirectory: String, binaries: PostgresBinaries, account: ServerAccount, logFile: String, logger: Logger
    ) async throws {
        logger.info("initialising embedded PostgreSQL cluster", metadata: ["postgres.data": "\(dataDirectory)"])
        let status = try await ChildProcess.run(
            account.commandPrefix + [
                binaries.initdb, "-D", dataDirectory, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                "--no-locale", "--no-sync",
            ],
            logPath: logFile
        )
        guard status == 0 else {
            throw EmbeddedPostgresError("initdb failed (exit \(status)); see \(logFile)")
        }
    }

    /// A server left running by a process that died (we hold the lock, so it is not in use).
    private static func stopOrphanedServer(dataDirectory: String, logger: Logger) async {
        guard let contents = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8),
              let firstLine = contents.split(separator: "\n").first, let pid = pid_t(firstLine), pid > 0,
              kill(pid, 0) == 0
        else { return }
        logger.notice("stopping an orphaned embedded PostgreSQL server", metadata: ["pid": "\(pid)"])
        kill(pid, SIGINT)
        for _ in 0..<300 where kill(pid, 0) == 0 {
            try? await Task.sleep(for: .milliseconds(100))
        }
        if kill(pid, 0) == 0 { kill(pid, SIGQUIT) }
        for _ in 0..<50 where kill(pid, 0) == 0 {
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    /// `root/run`, unless the path is too long for a socket (about 100 bytes) or the server's
    /// account cannot reach it: then a private directory under /tmp.
    private static func socketDirectory(root: String, account: ServerAccount) async throws -> String {
        let preferred = root + "/run"
        if preferred.utf8.count + "/.s.PGSQL.65535.lock".utf8.count <= 100 {
            try account.makePrivateDirectory(preferred)
            if await account.canUse(preferred) { return preferred }
        }
        var template = Array("/tmp/atrium-sock-XXXXXX".utf8CString)
        guard let path = mkdtemp(&template) else {
            throw EmbeddedPostgresError("could not create a socket directory: \(String(cString: strerror(errno)))")
        }
        let directory = String(cString: path)
        try account.makePrivateDirectory(directory)
        return directory
    }

    /// The port this cluster used last time if it is still free (so an administrator's psql
    /// command keeps working across restarts), else a fresh one, remembered for next time.
    private static func port(remembered path: String) throws -> Int {
        if let text = try? String(contentsOfFile: path, encoding: .utf8),
           let previous = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)),
           (1024...65535).contains(previous), Self.isFree(previous) {
            return previous
        }
        let port = try FreePort.find()
        try? "\(port)\n".write(toFile: path, atomically: true, encoding: .utf8)
        return port
    }

    private static func isFree(_ port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    /// Polls `postmaster.pid` until the server reports itself ready, as `pg_ctl -w` does.
    func waitUntilReady(_ server: RunningServer, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = server.exit.status {
                throw EmbeddedPostgresError("PostgreSQL exited during start-up (status \(status)); see \(self.logFile)")
            }
            if let contents = try? String(contentsOfFile: self.dataDirectory + "/postmaster.pid", encoding: .utf8) {
                let lines = contents.split(separator: "\n", omittingEmptySubsequences: false)
                if lines.count >= 8, lines[0] == "\(server.process.pid)", lines[7].trimmingCharacters(in: .whitespaces) == "ready" {
                    return
                }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw EmbeddedPostgresError("PostgreSQL did not become ready within \(timeout); see \(self.logFile)")
    }
}
