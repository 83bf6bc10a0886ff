import EmbeddedPostgres
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Debian's PgBouncer in transaction mode in front of the test cluster, for running the service's
/// tests through it (`ATRIUM_TEST_PGBOUNCER=1`). The service role's pools connect through it;
/// LISTEN and the superuser's set-up connections go to PostgreSQL directly, as in production.
public final class PgBouncer: Sendable {
    /// Whether this test run goes through PgBouncer.
    public static let isEnabled: Bool = {
        let value = ProcessInfo.processInfo.environment["ATRIUM_TEST_PGBOUNCER"] ?? ""
        return ["1", "true", "yes", "on"].contains(value.lowercased())
    }()

    public let port: Int
    private let process: Process
    private let directory: String

    private static let running = Mutex<[PgBouncer]>([])

    private init(port: Int, process: Process, directory: String) {
        self.port = port
        self.process = process
        self.directory = directory
    }

    /// Starts PgBouncer on a free loopback port, pooling transactions to `cluster`'s socket.
    static func start(in front: EmbeddedPostgres) async throws -> PgBouncer {
        guard let binary = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw TestClusterError("ATRIUM_TEST_PGBOUNCER is set but pgbouncer is not installed (apt-get install pgbouncer)")
        }
        // As `atrium serve` does behind a pooler: these reach PostgreSQL through PgBouncer.
        setenv("PGTZ", "UTC", 1)
        setenv("PGDATESTYLE", "ISO, YMD", 1)
        var template = Array("/tmp/atrium-pgbouncer-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestClusterError("mkdtemp failed") }
        let directory = String(cString: made)
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
            default_pool_size = 20
            logfile = \(directory)/pgbouncer.log
            """
        try config.write(toFile: directory + "/pgbouncer.ini", atomically: true, encoding: .utf8)
        try "\"atrium_app\" \"\"\n\"postgres\" \"\"\n".write(toFile: directory + "/users.txt", atomically: true, encoding: .utf8)
        var arguments = [binary, directory + "/pgbouncer.ini"]
        // PgBouncer, like PostgreSQL, will not run as root.
        if geteuid() == 0, let account = getpwnam("postgres") {
            for file in ["", "/pgbouncer.ini", "/users.txt"] {
                chown(directory + file, account.pointee.pw_uid, account.pointee.pw_gid)
            }
            arguments = ["/usr/bin/setpriv", "--reuid=\(account.pointee.pw_uid)", "--regid=\(account.pointee.pw_gid)", "--init-groups", "--"] + arguments
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let bouncer = PgBouncer(port: port, process: process, directory: directory)
        Self.running.withLock { running in
            if running.isEmpty { atexit { PgBouncer.stopAll() } }
            running.append(bouncer)
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while !FreePort.accepts(port) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                let log = (try? String(contentsOfFile: directory + "/pgbouncer.log", encoding: .utf8)) ?? ""
                throw TestClusterError("pgbouncer did not start: \(log)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return bouncer
    }

    /// A libpq connection string to `database` through PgBouncer.
    public func connectionString(database: String, user: String) -> String {
        "host=127.0.0.1 port=\(self.port) dbname=\(database) user=\(user)"
    }

    private static func stopAll() {
        // At exit Foundation's Process can no longer reap (its run loop is gone): kill the
        // pid and poll it for a second instead of waiting.
        for bouncer in Self.running.withLock({ $0 }) {
            let pid = bouncer.process.processIdentifier
            kill(pid, SIGKILL)  // the signal mask it inherited from this process may block SIGTERM
            for _ in 0..<50 where kill(pid, 0) == 0 {
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid { break }
                usleep(20_000)
            }
            try? FileManager.default.removeItem(atPath: bouncer.directory)
        }
    }
}

/// Ports for servers started by tests.
public enum FreePort {
    public static func find() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestClusterError("socket() failed") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard bound else { throw TestClusterError("no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts TCP connections on the port.
    public static func accepts(_ port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

/// A test set-up step that could not be done.
public struct TestClusterError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
