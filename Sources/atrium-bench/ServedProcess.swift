import ArgumentParser
import EmbeddedPostgres
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// The shipped server, `atrium serve`, run as a child process the way users run it: default
/// settings except what the benchmark names, its log on standard error (to a file).
final class ServedProcess {
    let process: Process
    let port: Int
    let log: URL

    init(executable: String, environment: [String: String], port: Int) throws {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw ValidationError("\(executable) is not there: build the service first (swift build -c release), or name it with --server")
        }
        self.port = port
        self.log = URL(fileURLWithPath: NSTemporaryDirectory() + "atrium-bench-serve-\(getpid()).log")
        guard FileManager.default.createFile(atPath: self.log.path, contents: nil) else {
            throw ValidationError("cannot create the server's log \(self.log.path)")
        }
        let output = try FileHandle(forWritingTo: self.log)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["serve"]
        var variables = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("ATRIUM_") && $0.key != "DATABASE_URL" }
        variables.merge(environment) { $1 }
        variables["ATRIUM_PORT"] = "\(port)"
        process.environment = variables
        process.standardOutput = output
        process.standardError = output
        try process.run()
        self.process = process
    }

    /// The executable next to this benchmark's (the same build).
    static var siblingExecutable: String {
        let own = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        return own.deletingLastPathComponent().appendingPathComponent("atrium").path
    }

    var pid: Int32 { self.process.processIdentifier }

    func stop() {
        guard self.process.isRunning else { return }
        self.process.interrupt()
        self.process.waitUntilExit()
    }

    /// The last lines of the server's log, for failures.
    var logTail: String {
        let text = (try? String(contentsOf: self.log, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(20).joined(separator: "\n")
    }
}

/// CPU time and memory of processes, from /proc.
enum ProcessUsage {
    private static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// User + system CPU seconds of `pid` (0 when it is gone); with `reapedChildren`, also those
    /// of the children it has waited for.
    static func cpuSeconds(_ pid: Int32, reapedChildren: Bool = false) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        // Fields after the command name: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 14, let user = Double(fields[11]), let system = Double(fields[12]),
              let childUser = Double(fields[13]), let childSystem = Double(fields[14]) else { return 0 }
        return (user + system + (reapedChildren ? childUser + childSystem : 0)) / self.ticksPerSecond
    }

    /// The parent process id of `pid`.
    static func parent(_ pid: Int32) -> Int32? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? Int32(fields[1]) : nil
    }

    /// CPU seconds of a PostgreSQL cluster: the postmaster and every process it started, those
    /// still running and those that have exited (autovacuum workers, closed connections' backends:
    /// the postmaster has reaped them, so their time is in its children's), so the total never
    /// goes down when a process exits between two readings.
    static func clusterCPUSeconds(dataDirectory: String) -> Double {
        guard let text = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8),
              let first = text.split(separator: "\n").first, let postmaster = Int32(first) else { return 0 }
        var total = self.cpuSeconds(postmaster, reapedChildren: true)
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = Int32(entry), pid != postmaster, self.parent(pid) == postmaster else { continue }
            total += self.cpuSeconds(pid)
        }
        return total
    }

    /// Resident memory of `pid` in MiB.
    static func residentMiB(_ pid: Int32) -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
        let kilobytes = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
        return kilobytes / 1024
    }
}

/// The reference every ratio is against: a bare Hummingbird application with one constant
/// route, no middleware, in this process (idle while the service is measured).
enum BareHummingbird {
    static func application(port: Int) -> some ApplicationProtocol {
        let router = Router()
        router.get("/") { _, _ in "ok" }
        var logger = Logger(label: "bare")
        logger.logLevel = .warning
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
    }
}

/// Splits the machine's CPUs between PostgreSQL and everything else with `taskset`, to measure
/// as if the database had a server of its own. Backends started later inherit the
/// postmaster's CPU; wrk inherits this process's.
enum CPUSplit {
    static var count: Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
    static var databaseCPU: Int { count - 1 }

    static func apply(server: Int32, dataDirectory: String) async throws {
        guard count >= 2 else { throw ValidationError("--split-cores needs at least two CPUs") }
        guard let taskset = Executable.find("taskset") else { throw ValidationError("--split-cores needs taskset (util-linux)") }
        guard let text = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8),
              let first = text.split(separator: "\n").first, let postmaster = Int32(first) else {
            throw ValidationError("no postmaster.pid in \(dataDirectory)")
        }
        let others = "0-\(databaseCPU - 1)"
        var database = [postmaster]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            if let pid = Int32(entry), ProcessUsage.parent(pid) == postmaster { database.append(pid) }
        }
        for pid in database {
            _ = try await EmbeddedPostgres.runProgram([taskset, "-a", "-pc", "\(databaseCPU)", "\(pid)"])
        }
        for pid in [server, getpid()] {
            let (status, output) = try await EmbeddedPostgres.runProgram([taskset, "-a", "-pc", others, "\(pid)"])
            guard status == 0 else { throw ValidationError("taskset failed: \(output)") }
        }
    }
}
