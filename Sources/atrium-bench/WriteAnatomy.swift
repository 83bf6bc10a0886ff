import ArgumentParser
import AsyncHTTPClient
import AtriumCore
import AtriumText
import EmbeddedPostgres
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PostgresPool

/// What each statement of a write costs PostgreSQL: POST and PATCH under load, DELETE one by
/// one, each with `pg_stat_statements` reset before it, then its statements by total time
/// per request (executor time, with planning time when the statement was planned).
extension HTTPBenchmark {
    func writeAnatomy(_ endpoints: Endpoints, targets: [LoadRoute: [LoadTarget]], tokens: [UUID: String], cluster: EmbeddedPostgres, database: String, logger: Logger) async throws {
        let admin = try await PostgresConnection.connect(
            configuration: PostgresConfiguration(connectionString: cluster.connectionString(database: database), statementTimeout: nil),
            logger: logger
        )
        try await admin.simpleQuery("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        print("statements of one write (pg_stat_statements: calls and PostgreSQL time per request):")
        let wrk = self.ownClient ? nil : Wrk.find()
        for route in [LoadRoute.createRecord, .updateRecord] {
            // The PATCH records not used by the measured runs (their ETags are still "1").
            let all = targets[route] ?? []
            let share = route == .updateRecord ? stride(from: self.slices + 1, to: all.count, by: self.slices + 2).map { all[$0] } : all
            try await admin.simpleQuery("SELECT pg_stat_statements_reset()")
            let result = try await self.loadOnce(route, endpoints: endpoints, targets: share, wrk: wrk)
            guard result.failures == 0 else { throw ValidationError("\(route.label): \(result.failures) requests failed") }
            try await StatementReport.print(route.label, requests: result.rate * 3, admin: admin)
        }
        // DELETE: records the POST runs made, one at a time.
        let created = try await admin.query("SELECT tenant_id, record_id FROM atrium.records WHERE data->>'title' = 'A new item written by the benchmark' LIMIT 300")
        try await admin.simpleQuery("SELECT pg_stat_statements_reset()")
        var deleted = 0
        for row in created {
            let (tenant, record) = try row.decode((UUID, UUID).self)
            guard let token = tokens[tenant] else { continue }
            var request = HTTPClientRequest(url: endpoints.atrium + LoadRoute.collectionPath + "/" + record.lowercasedString)
            request.method = .DELETE
            request.headers.add(name: "Authorization", value: "Bearer " + token)
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            _ = try await response.body.collect(upTo: 1 << 20)
            guard response.status == .noContent else { throw ValidationError("DELETE answered \(response.status.code)") }
            deleted += 1
        }
        try await StatementReport.print("DELETE record (one at a time)", requests: Double(deleted), admin: admin)
        await admin.close()
    }

    private func loadOnce(_ route: LoadRoute, endpoints: Endpoints, targets: [LoadTarget], wrk: String?) async throws -> LoadResult {
        if let wrk {
            return try await Wrk.run(wrk, route: route, base: endpoints.atrium, targets: targets, connections: self.connections, threads: self.threads, seconds: 3)
        }
        return try await LoadClient.run(route: route, base: endpoints.atrium, targets: targets, connections: self.connections, seconds: 3)
    }
}

/// The statements PostgreSQL spent most time on since `pg_stat_statements_reset()`, per request.
enum StatementReport {
    static func print(_ label: String, requests: Double, admin: PostgresConnection) async throws {
        let rows = try await admin.query("""
            SELECT calls, total_exec_time + total_plan_time, regexp_replace(left(query, 400), '\\s+', ' ', 'g')
            FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%' AND calls > 0
            ORDER BY total_exec_time + total_plan_time DESC LIMIT 10
            """)
        var total = 0.0
        var lines: [String] = []
        for row in rows {
            let (calls, milliseconds, query) = try row.decode((Int, Double, String).self)
            total += milliseconds
            let summary = query.count > 110 ? String(query.prefix(107)) + "…" : query
            lines.append(String(format: "    %5.2f × %7.1f µs  %@", Double(calls) / max(requests, 1), milliseconds * 1000 / max(requests, 1), summary))
        }
        Swift.print(String(format: "  %@: %.0f requests, %.1f µs of statement time per request", label, requests, total * 1000 / max(requests, 1)))
        lines.forEach { Swift.print($0) }
    }
}
