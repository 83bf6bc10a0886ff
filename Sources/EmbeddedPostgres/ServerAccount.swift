import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The account PostgreSQL runs as. PostgreSQL refuses to run as root, so when we are root the
/// server programs run as the `postgres` user through `setpriv` (which execs, so signals sent
/// to the child reach PostgreSQL itself).
struct ServerAccount: Sendable {
    let uid: uid_t
    let gid: gid_t
    /// Prefix that makes a command run as this account; empty when it is the current user.
    let commandPrefix: [String]

    static func current() throws -> ServerAccount {
        guard geteuid() == 0 else {
            return ServerAccount(uid: geteuid(), gid: getegid(), commandPrefix: [])
        }
        guard let entry = getpwnam("postgres") else {
            throw EmbeddedPostgresError(
                "running as root, but PostgreSQL will not run as root and there is no 'postgres' user to run it as. "
                    + "Install the postgresql package (it creates the user), run as an ordinary user, or set DATABASE_URL."
            )
        }
        let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let setpriv else {
            throw EmbeddedPostgresError("running as root needs setpriv (util-linux) to start PostgreSQL as 'postgres'")
        }
        let uid = entry.pointee.pw_uid
        let gid = entry.pointee.pw_gid
        return ServerAccount(
            uid: uid,
            gid: gid,
            commandPrefix: [setpriv, "--reuid=\(uid)", "--regid=\(gid)", "--init-groups", "--"]
        )
    }

    var isCurrentUser: Bool { self.commandPrefix.isEmpty }

    /// Creates `path` (and parents) owned by this account, mode 0700.
    func makePrivateDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        chmod(path, 0o700)
        if !self.isCurrentUser {
            guard chown(path, self.uid, self.gid) == 0 else {
                throw EmbeddedPostgresError("could not hand \(path) to the postgres user: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Whether this account can enter and write `path` (every parent must be searchable).
    func canUse(_ path: String) async -> Bool {
        guard !self.isCurrentUser else { return true }
        let test = ["/usr/bin/test", "/bin/test"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/test"
        let status = try? await ChildProcess.run(self.commandPrefix + [test, "-w", path, "-a", "-x", path], logPath: nil)
        return status == 0
    }
}
