import ArgumentParser
import AsyncHTTPClient
import AtriumCore
import EmbeddedPostgres
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PostgresPool

/// One collection of `scaleRecords` records: the first page against a page reached by cursor
/// 5,000 pages deep (keyset pagination should make them cost the same), and a filter with a
/// sort on indexed fields, with the indexes PostgreSQL used for it.
extension HTTPBenchmark {
    static let deepPages = 5_000

    func scaleChecks(_ endpoints: Endpoints, token: String, cluster: EmbeddedPostgres, database: String, logger: Logger) async throws {
        // What the write routes left (dead rows, new index entries, dirty pages) is cleaned up
        // first: autovacuum or a checkpoint doing it during the checks would count its CPU
        // against whichever page was running, and take CPU from the server. How often
        // autovacuum still ran is printed with the checks.
        let admin = try await Self.admin(cluster: cluster, database: database, logger: logger)
        let settling = ContinuousClock.now
        try await admin.simpleQuery("VACUUM (ANALYZE)")
        try await admin.simpleQuery("CHECKPOINT")
        print(String(format: "scale: vacuumed and checkpointed what the routes above wrote in %.1f s", (ContinuousClock.now - settling).seconds))
        let vacuumsBefore = try await Self.autovacuums(on: admin)
        let started = ContinuousClock.now
        let cursor = try await Self.cursor(after: Self.deepPages, base: endpoints.atrium, token: token)
        let walked = (ContinuousClock.now - started).seconds
        print(String(
            format: "scale: one collection of %ld records; walked %ld pages by cursor in %.1f s (%.2f ms a page)",
            self.scaleRecords, Self.deepPages, walked, walked / Double(Self.deepPages) * 1000
        ))
        // The two pages interleaved; the filter after them, on its own, so that its cost (the
        // one to watch) cannot spill into their figures.
        let target = LoadTarget(token: token, recordID: "", cursor: cursor)
        var figures: [LoadRoute: Measured] = [:]
        // What PostgreSQL itself did for each page: planning counted too, so that a statement
        // planned on every request shows as such.
        try await admin.simpleQuery("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        try await admin.simpleQuery("ALTER SYSTEM SET pg_stat_statements.track_planning = on")
        try await admin.simpleQuery("SELECT pg_reload_conf()")
        var statements: [String] = []
        for routes in [[LoadRoute.scaleFirstPage, .scaleDeepPage], [.scaleFilterSort]] {
            try await admin.simpleQuery("SELECT pg_stat_statements_reset()")
            let results = try await self.run(endpoints, routes: routes, targets: Dictionary(uniqueKeysWithValues: routes.map { ($0, [target]) }))
            for (route, measured) in results { figures[route] = measured }
            statements += try await Self.pageStatements(on: admin)
        }
        try await admin.simpleQuery("ALTER SYSTEM RESET pg_stat_statements.track_planning")
        try await admin.simpleQuery("SELECT pg_reload_conf()")
        if let first = figures[.scaleFirstPage], let deep = figures[.scaleDeepPage] {
            let rate = (deep.rate / first.rate - 1) * 100
            let cpu = (deep.serverCPU + deep.databaseCPU) / (first.serverCPU + first.databaseCPU) * 100 - 100
            print(String(
                format: "  page 5,001 vs page 1: %+.1f %% req/s, %+.1f %% CPU per request (server + PostgreSQL)   (target: within ±15 %%)",
                rate, cpu
            ))
        }
        print("  autovacuum runs on the database's tables during the scale checks: \(try await Self.autovacuums(on: admin) - vacuumsBefore)")
        print("  the pages' statements in PostgreSQL (pg_stat_statements; per call):")
        statements.forEach { print("    " + $0) }
        await admin.close()
        if let filtered = figures[.scaleFilterSort] {
            print(String(format: "  status=open, sort=-priority: p99 %.2f ms", filtered.p99 * 1000))
        }
        try await self.indexUse(base: endpoints.atrium, token: token, cluster: cluster, database: database, logger: logger)
    }

    /// The cursor of the page after `pages` pages of 20, found by following `nextCursor`.
    static func cursor(after pages: Int, base: String, token: String) async throws -> String {
        var cursor: String?
        for page in 0..<pages {
            var url = base + LoadRoute.collectionPath + "?limit=20"
            if let cursor { url += "&cursor=" + cursor }
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "Authorization", value: "Bearer " + token)
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 1 << 20)
            guard response.status == .ok, case .object(let object) = try JSONParser.parse(String(buffer: body)),
                  case .string(let next) = object["nextCursor"] else {
                throw ValidationError("page \(page + 1) of the scale collection has no next cursor (status \(response.status.code))")
            }
            cursor = next
        }
        return cursor!
    }

    /// Sends the filtered, sorted list 20 times and reports which indexes of the record
    /// tables PostgreSQL scanned for it, and whether it read either table sequentially.
    private func indexUse(base: String, token: String, cluster: EmbeddedPostgres, database: String, logger: Logger) async throws {
        let admin = try await Self.admin(cluster: cluster, database: database, logger: logger)
        let statistics = """
            SELECT 'index ' || indexrelname, idx_scan FROM pg_stat_user_indexes WHERE schemaname = 'atrium' AND relname IN ('records', 'record_values')
            UNION ALL
            SELECT 'sequential scans of ' || relname, seq_scan FROM pg_stat_user_tables WHERE schemaname = 'atrium' AND relname IN ('records', 'record_values')
            """
        func counters() async throws -> [String: Int] {
            // A backend publishes its counters at a transaction's end if a second has passed
            // since it last did, else once it has been idle for 10 s: the last requests' counts
            // (all of them, with 20 requests in well under a second) arrive only then.
            try await Task.sleep(for: .seconds(11))
            var counters: [String: Int] = [:]
            for row in try await admin.query(PostgresQuery(unsafeSQL: statistics)) {
                let (name, count) = try row.decode((String, Int).self)
                counters[name] = count
            }
            return counters
        }
        let before = try await counters()
        let requests = 20
        for _ in 0..<requests {
            var request = HTTPClientRequest(url: base + LoadRoute.collectionPath + LoadRoute.filterSort)
            request.headers.add(name: "Authorization", value: "Bearer " + token)
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            _ = try await response.body.collect(upTo: 1 << 20)
            guard response.status == .ok else { throw ValidationError("the filtered list answered \(response.status.code)") }
        }
        let after = try await counters()
        await admin.close()
        let used = after.keys.sorted().compactMap { name -> String? in
            let delta = after[name, default: 0] - before[name, default: 0]
            return delta > 0 || name.hasPrefix("sequential") ? String(format: "%@ %.1f", name, Double(delta) / Double(requests)) : nil
        }
        print("  status=open, sort=-priority, per request: " + used.joined(separator: ", "))
    }

    /// The list statements run since the last reset, one line each: how often, execution and
    /// planning time, how often planned, shared buffers hit and read, and rows, per call.
    private static func pageStatements(on admin: PostgresConnection) async throws -> [String] {
        let rows = try await admin.query("""
            SELECT calls, total_exec_time / calls, plans, total_plan_time / greatest(plans, 1),
                   shared_blks_hit::float8 / calls, shared_blks_read::float8 / calls, rows::float8 / calls,
                   CASE WHEN query LIKE '%(r.created_at, r.record_id) <%' THEN 'page 5,001'
                        WHEN query LIKE 'WITH valued%' THEN 'status=open, sort=-priority, the whole page'
                        WHEN query LIKE '%record_values s%' THEN 'status=open, sort=-priority, records with a value'
                        ELSE 'page 1' END
            FROM pg_stat_statements
            WHERE (query LIKE 'SELECT r.record_id%' OR query LIKE 'WITH valued%') AND query LIKE '%atrium.records r%' AND calls >= 100
            ORDER BY calls DESC
            """)
        return try rows.map { row in
            let (calls, execution, plans, planning, hit, read, returned, page) = try row.decode((Int, Double, Int, Double, Double, Double, Double, String).self)
            return String(
                format: "%@: %ld calls, executed in %.1f µs, planned %ld times (%.1f µs), buffers %.1f hit %.2f read, %.1f rows",
                page, calls, execution * 1000, plans, planning * 1000, hit, read, returned
            )
        }
    }

    private static func admin(cluster: EmbeddedPostgres, database: String, logger: Logger) async throws -> PostgresConnection {
        try await PostgresConnection.connect(
            configuration: PostgresConfiguration(connectionString: cluster.connectionString(database: database), statementTimeout: nil),
            logger: logger
        )
    }

    /// Autovacuum and autoanalyze runs so far on the database's tables (published with a
    /// delay of up to a second, like every statistic).
    private static func autovacuums(on admin: PostgresConnection) async throws -> Int {
        try await Task.sleep(for: .milliseconds(1500))
        let rows = try await admin.query("SELECT (coalesce(sum(autovacuum_count), 0) + coalesce(sum(autoanalyze_count), 0))::int8 FROM pg_stat_user_tables")
        return try rows.first?.decode(Int.self, column: 0) ?? 0
    }
}
