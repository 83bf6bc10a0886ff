import ArgumentParser
import AsyncHTTPClient
import AtriumCore
import EmbeddedPostgres
import Foundation
import NIOCore
import NIOHTTP1

/// Programs on the PATH.
enum Executable {
    static func find(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

/// Drives load with `wrk` (keep-alive connections, latency distribution, Lua for varying
/// tokens and ids).
enum Wrk {
    static func find() -> String? { Executable.find("wrk") }

    static func run(_ wrk: String, route: LoadRoute, base: String, targets: [LoadTarget], connections: Int, threads: Int, seconds: Int) async throws -> LoadResult {
        let directory = NSTemporaryDirectory() + "atrium-bench-wrk-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let targetsPath = directory + "/targets.txt"
        try targets.map { "\($0.token) \($0.recordID.isEmpty ? "-" : $0.recordID) \($0.cursor ?? "-")" }.joined(separator: "\n").appending("\n")
            .write(toFile: targetsPath, atomically: true, encoding: .utf8)
        let scriptPath = directory + "/route.lua"
        try self.script(route, threads: threads).write(toFile: scriptPath, atomically: true, encoding: .utf8)
        let (status, output) = try await EmbeddedPostgres.runProgram([
            wrk, "-t", "\(threads)", "-c", "\(connections)", "-d", "\(seconds)s", "--timeout", "10s", "--latency",
            "-s", scriptPath, base, "--", targetsPath,
        ])
        guard status == 0 else { throw ValidationError("wrk failed (exit \(status)):\n\(output)") }
        return try self.parse(output)
    }

    /// A Lua script that sends `route` with a random target's token and id each time. PATCH
    /// goes round the records of its thread's share instead (no two threads, and no two
    /// requests in flight, change the same record) with the ETag the last answer gave.
    static func script(_ route: LoadRoute, threads: Int) -> String {
        let path = LoadRoute.collectionPath
        let request: String
        switch route {
        case .bare:
            request = #"return wrk.format("GET", "/")"#
        case .healthz:
            request = #"return wrk.format("GET", "/healthz")"#
        case .getRecord:
            request = #"return wrk.format("GET", "\#(path)/" .. t.id, { ["Authorization"] = "Bearer " .. t.token })"#
        case .updateRecord:
            request = #"""
                turn = turn % #mine + 1
                sent = sent + 1
                t = mine[turn]
                return wrk.format("PATCH", "\#(path)/" .. t.id, { ["Authorization"] = "Bearer " .. t.token,
                  ["Content-Type"] = "application/merge-patch+json", ["If-Match"] = tags[t.id] or '"1"' },
                  '{"priority":' .. (sent % 5 + 1) .. ',"title":"Changed by the benchmark, ' .. sent .. '"}')
                """#
        case .createRecord:
            request = #"return wrk.format("POST", "\#(path)", { ["Authorization"] = "Bearer " .. t.token, ["Content-Type"] = "application/json" }, body)"#
        case .listFirstPage, .scaleFirstPage:
            request = #"return wrk.format("GET", "\#(path)?limit=20", { ["Authorization"] = "Bearer " .. t.token })"#
        case .scaleDeepPage:
            request = #"return wrk.format("GET", "\#(path)?limit=20&cursor=" .. t.cursor, { ["Authorization"] = "Bearer " .. t.token })"#
        case .scaleFilterSort:
            request = #"return wrk.format("GET", "\#(path)\#(LoadRoute.filterSort)", { ["Authorization"] = "Bearer " .. t.token })"#
        }
        let response = route != .updateRecord ? "" : """
            function response(status, headers, body)
              if status == 200 then
                local id = body:match('"id":"([^"]+)"')
                if id then tags[id] = headers["ETag"] end
              end
            end
            """
        return """
            local targets = {}
            local mine = {}
            local tags = {}
            local turn = 0
            local sent = 0
            local body = '\(LoadRoute.newRecord)'
            local threads = 0
            function setup(thread)
              thread:set("index", threads)
              threads = threads + 1
            end
            function init(args)
              for line in io.lines(args[1]) do
                local token, id, cursor = line:match("^(%S+) (%S+) (%S+)$")
                if token then
                  targets[#targets + 1] = { token = token, id = id, cursor = cursor }
                  if (#targets - 1) % \(threads) == index then mine[#mine + 1] = targets[#targets] end
                end
              end
              local address = tonumber((tostring({}):match("0x(%x+)")) or "0", 16) or 0
              math.randomseed(os.time() + address % 1000003)
            end
            function request()
              local t = targets[math.random(#targets)]
              \(request)
            end
            \(response)
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
                    // PATCH: this connection's own records, round and round, with their ETags.
                    let mine = stride(from: task, to: targets.count, by: connections).map { targets[$0] }
                    var tags: [String: String] = [:]
                    var next = 0
                    while ContinuousClock.now < end {
                        var target = targets[Int(random.next() % UInt64(targets.count))]
                        if route == .updateRecord {
                            guard !mine.isEmpty else { break }
                            next += 1
                            target = mine[next % mine.count]
                        }
                        var request = self.request(route, base: base, target: target)
                        if route == .updateRecord {
                            request.headers.add(name: "If-Match", value: tags[target.recordID] ?? "\"1\"")
                            request.body = .bytes(ByteBuffer(string: "{\"priority\":\(next % 5 + 1),\"title\":\"Changed by the benchmark, \(next)\"}"))
                        }
                        let sent = ContinuousClock.now
                        do {
                            let response = try await client.execute(request, timeout: .seconds(10))
                            _ = try await response.body.collect(upTo: 1 << 20)
                            if !(200..<400).contains(response.status.code) { failures += 1 }
                            if let tag = response.headers.first(name: "ETag") { tags[target.recordID] = tag }
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
        case .updateRecord:
            request = HTTPClientRequest(url: base + LoadRoute.collectionPath + "/" + target.recordID)
            request.method = .PATCH
            request.headers.add(name: "Content-Type", value: "application/merge-patch+json")
        case .listFirstPage, .scaleFirstPage:
            request = HTTPClientRequest(url: base + LoadRoute.collectionPath + "?limit=20")
        case .scaleDeepPage:
            request = HTTPClientRequest(url: base + LoadRoute.collectionPath + "?limit=20&cursor=" + (target.cursor ?? ""))
        case .scaleFilterSort:
            request = HTTPClientRequest(url: base + LoadRoute.collectionPath + LoadRoute.filterSort)
        }
        request.headers.add(name: "Authorization", value: "Bearer " + target.token)
        return request
    }
}
