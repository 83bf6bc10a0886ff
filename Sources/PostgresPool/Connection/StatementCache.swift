/// Names of statements prepared on one connection, keyed by SQL text.
///
/// Bounded: past `capacity` the oldest statement is evicted and deallocated on the server, so a
/// stream of distinct ad-hoc queries cannot grow a backend's memory without limit.
struct StatementCache {
    private var names: [String: String] = [:]
    private var order: [String] = []
    private var orderStart = 0
    private var counter = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    func name(for sql: String) -> String? {
        self.names[sql]
    }

    /// Reserves a fresh name for `sql`; returns it and the name of a statement to deallocate, if any.
    mutating func insert(_ sql: String) -> (name: String, evicted: String?) {
        self.counter += 1
        let name = "atrium_s\(self.counter)"
        self.names[sql] = name
        self.order.append(sql)
        var evicted: String?
        while self.names.count > self.capacity, self.orderStart < self.order.count {
            let oldest = self.order[self.orderStart]
            self.orderStart += 1
            if oldest != sql, let oldName = self.names.removeValue(forKey: oldest) {
                evicted = oldName
            }
        }
        if self.orderStart > 1024, self.orderStart * 2 > self.order.count {
            self.order.removeFirst(self.orderStart)
            self.orderStart = 0
        }
        return (name, evicted)
    }

    /// Forgets `sql` when its prepare did not happen (failed or skipped in an aborted pipeline).
    mutating func remove(_ sql: String, name: String) {
        if self.names[sql] == name {
            self.names.removeValue(forKey: sql)
        }
    }

    mutating func removeAll() {
        self.names.removeAll()
        self.order.removeAll()
        self.orderStart = 0
    }
}
