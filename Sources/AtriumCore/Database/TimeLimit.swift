/// Runs `body` for at most `limit`; nil when the time ran out first (`body` is then cancelled:
/// a query in it is cancelled on the server). For background database work that must not hang
/// on a frozen PostgreSQL: heartbeats, replica polls.
func withTimeLimit<Result: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async -> Result) async -> Result? {
    await withTaskGroup(of: Result?.self) { group in
        group.addTask { await body() }
        group.addTask {
            try? await Task.sleep(for: limit)
            return nil
        }
        let first = await group.next() ?? nil
        group.cancelAll()
        return first
    }
}
