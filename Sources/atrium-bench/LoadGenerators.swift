import ArgumentParser
import AsyncHTTPClient
import AtriumCore
import EmbeddedPostgres
import Foundation
import NIOCore
import NIOHTTP1

/// Drives load with `wrk` (keep-alive connections, latency distribution, Lua for varying
/// tokens and ids).
enum Wrk {
    static func find() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/wrk"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    static func run(_ wrk: String, route: LoadRoute, base: String, targets: [LoadTarget], connections: Int, threads: Int, seconds: Int) async throws -> LoadResult {
        let directory = NSTemporaryDirectory() + "atrium-bench-wrk-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let targetsPath = directory + "/targets.txt"
        try targets.map { "\($0.token) \($0.recordID)" }.joined(separator: "\n").appending("\n").write(toFile: targetsPath, atomically: true, encoding: .utf8)
        let scriptPath = directory + "/route.lua"
        try self.script(route).write(toFile: scriptPath, atomically: true, encoding: .utf8)
        let (status, output) = try await EmbeddedPostgres.runProgram([
            wrk, "-t", "\(threads)", "-c", "\(connections)", "-d", "\(seconds)s", "--timeout", "10s", "--latency",
            "-s", scriptPath, base, "--", targetsPath,
        ])
        guard status == 0 else { throw ValidationError("wrk failed (exit \(status)):\n\(output)") }
        return try self.parse(output)
    }

    /// A Lua script that sends `route` with a random target's token and id each time.
    static func script(_ route: LoadRoute) -> String {
        let request: String
        switch route {
        case .bare:
            request = #"return wrk.format("GET", "/")"#
        case .healthz:
            request = #"return wrk.format("GET", "/healthz")"#
        case .getRecord:
            request = #"return wrk.format("GET", "\#(LoadRoute.collectionPath)/" .. t.id, { ["Authorization"] = "Bearer " .. t.token })"#
        case .createRecord:
            request = #"return wrk.format("POST", "\#(LoadRoute.collectionPath)", { ["Authorization"] = "Bearer " .. t.token, ["Content-Type"] = "application/json" }, body)"#
        case .listFirstPage:
            request = #"return wrk.format("GET", "\#(LoadRoute.collectionPath)?limit=20", { ["Authorization"] = "Bearer " .. t.token })"#
        }
        return """
            local targets = {}
            local body = '\(LoadRoute.newRecord)'
            function init(args)
              for line in io.lines(args[1]) do
                local token, id = line:match("^(%S+) (%S+)$")
                if token then targets[#targets + 1] = { token = token, id = id } end
              end
              local address = tonumber((tostring({}):match("0x(%x+)")) or "0", 16) or 0
              math.randomseed(os.time() + address % 1000003)
            end
            function request()
              local t = targets[math.random(#targets)]
              \(request)
            end

            """
    }

    static func parse(_ output: String) throws -> LoadResult {
        var rate: Double?
        var p50: Double?
        var p99: Double?
        var failures = 0
        for line in output.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            if line.hasPrefix("Requests/sec:"), words.count >= 2 {
                rate = Double(words[1])
            } else if words.count == 2, words[0] == "50%" {
                p50 = self.duration(words[1])
            } else if words.count == 2, words[0] == "99%" {
                p99 = self.duration(words[1])
            } else if line.hasPrefix("Non-2xx or 3xx responses:"), let count = words.last.flatMap({ Int($0) }) {
                failures += count
            } else if line.hasPrefix("Socket errors:") {
                // Socket errors: connect 0, read 0, write 0, timeout 0
                failures += line.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }.reduce(0, +)
            }
        }
        guard let rate, let p50, let p99 else { throw ValidationError("could not read wrk's results from:\n\(output)") }
        return LoadResult(rate: rate, p50: p50, p99: p99, failures: failures)
    }

    /// "512.00us", "2.35ms", "1.02s", "1.50m" in seconds.
    static func duration<S: StringProtocol>(_ text: S) -> Double? {
        for (suffix, scale) in [("us", 1e-6), ("ms", 1e-3), ("s", 1.0), ("m", 60.0)] where text.hasSuffix(suffix) {
            return Double(text.dropLast(suffix.count)).map { $0 * scale }
        }
        return nil
    }
}

/// The built-in load generator for machines without `wrk`: one task per keep-alive
/// connection, each sending its next request when the last answer arrived.
enum LoadClient {
    static func waitUntilReady(_ url: String) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(2)), response.status == .ok {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ValidationError("the server did not answer \(url) within 30 s")
    }

    static func run(route: LoadRoute, base: String, targets: [LoadTarget], connections: Int, seconds: Int) async throws -> LoadResult {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: connections)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let start = ContinuousClock.now
        let end = start + .seconds(seconds)
        let outcomes = try await withThrowingTaskGroup(of: (latencies: [Double], failures: Int).self) { group in
            for task in 0..<connections {
                group.addTask {
                    var random = FastRandom(seed: UInt64(task + 1) &* 0x9E37_79B9_7F4A_7C15)
                    var latencies: [Double] = []
                    var failures = 0
                    while ContinuousClock.now < end {
                        let target = targets[Int(random.next() % UInt64(targets.count))]
                        let request = self.request(route, base: base, target: target)
                        let sent = ContinuousClock.now
                        do {
                            let response = try await client.execute(request, timeout: .seconds(10))
                            _ = try await response.body.collect(upTo: 1 << 20)
                            if !(200..<400).contains(response.status.code) { failures += 1 }
                        } catch {
                            failures += 1
                        }
                        latencies.append((ContinuousClock.now - sent).seconds)
                    }
                    return (latencies, failures)
                }
            }
            return try await group.reduce(into: (latencies: [Double](), failures: 0)) {
                $0.latencies += $1.latencies
                $0.failures += $1.failures
            }
        }
        let elapsed = (ContinuousClock.now - start).seconds
        try await client.shutdown()
        let sorted = outcomes.latencies.sorted()
        func percentile(_ p: Double) -> Double {
            sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        }
        return LoadResult(rate: Double(sorted.count) / elapsed, p50: percentile(0.50), p99: percentile(0.99), failures: outcomes.failures)
    }

    static func request(_ route: LoadRoute, base: String, target: LoadTarget) -> HTTPClientRequest {
        var request: HTTPClientRequest
        switch route {
        case .bare:
            return HTTPClientRequest(url: base + "/")
        case .healthz:
            return HTTPClientRequest(url: base + "/healthz")
        case .getRecord:
            request = HTTPClientRequest(url: base + LoadRoute.collectionPath + "/" + target.recordID)
        case .createRecord:
            request = HTTPClientRequest(url: base + LoadRoute.collectionPath)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: LoadRoute.newRecord))
        case .listFirstPage:
            request = HTTPClientRequest(url: base + LoadRoute.collectionPath + "?limit=20")
        }
        request.headers.add(name: "Authorization", value: "Bearer " + target.token)
        return request
    }
}
