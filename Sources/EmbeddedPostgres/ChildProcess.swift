import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process started with `posix_spawn`, optionally in its own session so that a Ctrl-C
/// in the terminal reaches the parent only (which then stops the child in order).
struct ChildProcess: Sendable {
    let pid: pid_t

    /// Starts `arguments[0]` (an absolute path) with stdout and stderr appended to `logPath`.
    static func spawn(_ arguments: [String], logPath: String?, newSession: Bool) throws -> ChildProcess {
        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        defer { posix_spawn_file_actions_destroy(&fileActions) }
        posix_spawn_file_actions_addopen(&fileActions, 0, "/dev/null", O_RDONLY, 0)
        let output = logPath ?? "/dev/null"
        posix_spawn_file_actions_addopen(&fileActions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o640)
        posix_spawn_file_actions_adddup2(&fileActions, 1, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if newSession {
            #if os(Linux)
            flags |= 0x80 // POSIX_SPAWN_SETSID (glibc ≥ 2.26)
            #else
            flags |= 0x0400 // POSIX_SPAWN_SETSID
            #endif
        }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGCHLD, SIGQUIT] {
            sigaddset(&defaults, signal)
        }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(truncatingIfNeeded: flags))

        var pid: pid_t = 0
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let status = posix_spawn(&pid, arguments[0], &fileActions, &attributes, argv, environ)
        guard status == 0 else {
            throw EmbeddedPostgresError("could not start \(arguments[0]): \(String(cString: strerror(status)))")
        }
        return ChildProcess(pid: pid)
    }

    /// Runs a command to completion off the Swift concurrency pool; returns its exit status.
    static func run(_ arguments: [String], logPath: String?) async throws -> Int32 {
        let child = try self.spawn(arguments, logPath: logPath, newSession: false)
        return await child.waitForExit()
    }

    /// Waits for the process to end without blocking a Swift concurrency thread (the blocking
    /// wait runs on a serial queue of its own: Dispatch's global queues share the threads
    /// Swift tasks run on).
    func waitForExit() async -> Int32 {
        await withCheckedContinuation { continuation in
            DispatchQueue(label: "atrium.child-process.\(self.pid)").async {
                continuation.resume(returning: self.blockingWait())
            }
        }
    }

    func signal(_ signal: Int32) {
        kill(self.pid, signal)
    }

    func blockingWait() -> Int32 {
        var status: Int32 = 0
        while true {
            let result = waitpid(self.pid, &status, 0)
            if result == self.pid { return Self.decode(status) }
            if result < 0 && errno != EINTR { return -1 }
        }
    }

    private static func decode(_ status: Int32) -> Int32 {
        // WIFEXITED / WEXITSTATUS are macros; decode the classic layout by hand.
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }
}
