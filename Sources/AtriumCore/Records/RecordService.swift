import AtriumCrypto
import AtriumText
public import Foundation
public import Logging
import PostgresPool
public import Synchronization

/// Records of a tenant's collections: reading, validated writes, queries. Writes are recorded
/// in the audit log in the same transaction.
public final class RecordService: Sendable {
    let database: Database
    let collections: CollectionService
    let cursors: CursorCodec
    let exportSlots: ExportSlots
    let logger: Logger
    /// Updates written after reading the record again, because it changed or was locked
    /// between their read and their write (each such attempt counts), since start.
    public let updatesRetried = Atomic<Int>(0)
    /// Updates that, after those attempts, locked the record before reading it, since start.
    public let updatesLocked = Atomic<Int>(0)

    /// Most records in one batch.
    public static let maximumBatch = 100

    public init(database: Database, collections: CollectionService, cursorKey: [UInt8], exportLimits: ExportLimits = ExportLimits(), logger: Logger) {
        self.database = database
        self.collections = collections
        self.cursors = CursorCodec(key: cursorKey)
        self.exportSlots = ExportSlots(limits: exportLimits)
        self.logger = logger
    }

    /// Runs `body` with the collection's definition; if the definition changed underneath
    /// (another server's cache was newer, or a change committed while the write waited for it),
    /// reads it again and runs again, up to `definitionAttempts` times in all — a write that
    /// waited for one change can meet the next one queued behind it. Past that, `503`: the
    /// definition is changing faster than writes get through, and nothing was written.
    func withCollection<T>(_ name: String, _ principal: Principal, _ body: (StoredCollection) async throws -> T) async throws -> T {
        var collection = try await self.collections.collection(named: name, in: principal.tenant)
        var attempt = 1
        while true {
            do {
                return try await body(collection)
            } catch is DefinitionChanged {
                guard attempt < Self.definitionAttempts else {
                    throw AtriumError(
                        .unavailable, "the collection's definition kept changing during the write, which was not applied; retry it", retryAfter: 1,
                        cause: "collection \(name) changed \(attempt) times during one write"
                    )
                }
                attempt += 1
                self.collections.cache.remove(tenant: principal.tenant.tenantID, name: name)
                collection = try await self.collections.collection(named: name, in: principal.tenant)
            }
        }
    }

    /// How many times a write is worked out against its collection's definition when the
    /// definition changes underneath it (see `withCollection`).
    static let definitionAttempts = 4

    /// The collections `collection`'s reference fields point at.
    func referenceTargets(of collection: StoredCollection, in tenant: TenantContext) async throws -> [String: StoredCollection] {
        var targets: [String: StoredCollection] = [:]
        for target in Set(collection.definition.fields.compactMap(\.collection)) {
            targets[target] = target == collection.name ? collection : try await self.collections.collection(named: target, in: tenant)
        }
        return targets
    }

    /// A record by id (per the collection's read rule), its data as PostgreSQL printed it.
    public func get(_ principal: Principal, collection name: String, id: UUID) async throws -> RecordText {
        let collection = try await self.collections.collection(named: name, in: principal.tenant)
        let rule = collection.definition.rules.read
        try principal.require(rule.role)
        let own: UUID? = rule.restrictsToOwn(principal) ? Actor(principal).id : nil
        var bindings = PostgresBindings(capacity: 4)
        bindings.append(principal.tenant.tenantID)
        bindings.append(collection.id)
        bindings.append(id)
        if let own { bindings.append(own) } else { bindings.appendNull() }
        let statement = PostgresQuery(unsafeSQL: RecordStore.readText, bindings: bindings)
        let rows = try await self.database.reading { try await $0.query(in: principal.tenant, statement) }
        guard let row = rows.single else { throw AtriumError.notFound("record") }
        return try RecordText(row: row, id: id)
    }

    /// Creates a record; `respond` renders the answer from the record as PostgreSQL printed it
    /// (inside the write's transaction, so that an Idempotency-Key stores it with the write).
    public func create(
        _ principal: Principal, collection name: String, body: JSONValue, idempotency: IdempotencyRequest?, origin: RequestOrigin,
        respond: (StoredCollection, RecordText) throws -> StoredResponse
    ) async throws -> StoredResponse {
        try await self.withCollection(name, principal) { collection in
            try principal.require(collection.definition.rules.create.role)
            let (data, failures) = RecordValidator.validate(body, against: collection.definition, applyDefaults: true)
            guard failures.isEmpty else { throw AtriumError.invalid(failures) }
            let id = SecureRandom.uuidV7()
            let records = [(id: id, data: data, pointer: "")]
            let (plan, insert) = try await self.creationPlan(records, collection: collection, principal: principal, origin: origin)
            return try await self.run(plan, idempotency: idempotency, principal: principal) { results in
                try respond(collection, try RecordText(row: results[insert][0]))
            }
        }
    }

    /// Creates up to 100 records, all or none; `respond` gets them in request order.
    public func createBatch(
        _ principal: Principal, collection name: String, body: JSONValue, idempotency: IdempotencyRequest?, origin: RequestOrigin,
        respond: (StoredCollection, [StoredRecord]) throws -> StoredResponse
    ) async throws -> StoredResponse {
        guard case .object(let object) = body, object.keys == ["records"], case .array(let items) = object["records"] else {
            throw AtriumError.invalid([.init(field: "/", reason: "must be {\"records\": [ … ]} and nothing else")])
        }
        guard (1...Self.maximumBatch).contains(items.count) else {
            throw AtriumError.invalid([.init(field: "/records", reason: "must hold 1 to \(Self.maximumBatch) records")])
        }
        return try await self.withCollection(name, principal) { collection in
            try principal.require(collection.definition.rules.create.role)
            var failures: [AtriumError.FieldFailure] = []
            var records: [(id: UUID, data: JSONObject, pointer: String)] = []
            var seen: [String: Int] = [:]
            for (index, item) in items.enumerated() {
                let pointer = "/records/\(index)"
                let (data, problems) = RecordValidator.validate(item, against: collection.definition, applyDefaults: true, at: pointer)
                failures += problems
                for (field, key) in RecordIndexing.uniqueKeys(data, collection.definition) {
                    if let other = seen.updateValue(index, forKey: field + "\u{0}" + key) {
                        failures.append(.init(field: "\(pointer)/\(field)", reason: "must be unique; record \(other) of this batch has the same value"))
                    }
                }
                records.append((SecureRandom.uuidV7(), data, pointer))
                // A record can cost up to the pattern budget to check: let other requests
                // run between records rather than after the hundredth.
                await Task.yield()
            }
            guard failures.isEmpty else { throw AtriumError.invalid(failures) }
            let (plan, insert) = try await self.creationPlan(records, collection: collection, principal: principal, origin: origin)
            return try await self.run(plan, idempotency: idempotency, principal: principal) { results in
                var byID: [UUID: StoredRecord] = [:]
                for row in results[insert] {
                    let record = try StoredRecord(row: row)
                    byID[record.id] = record
                }
                return try respond(collection, records.compactMap { byID[$0.id] })
            }
        }
    }

    /// Statements that insert `records` with their checks, values, unique keys and audit entries.
    private func creationPlan(
        _ records: [(id: UUID, data: JSONObject, pointer: String)], collection: StoredCollection, principal: Principal, origin: RequestOrigin
    ) async throws -> (WritePlan, insert: Int) {
        let tenant = principal.tenant.tenantID
        let actor = Actor(principal)
        var plan = WritePlan()
        plan.addChecks(for: records, collection: collection, targets: try await self.referenceTargets(of: collection, in: principal.tenant), tenant: tenant)
        let rows = JSONValue.array(records.map { .object(JSONObject([("id", .string($0.id.lowercasedString)), ("data", .object($0.data))])) })
        let insert = plan.add(RecordStore.insert(rows, tenant: tenant, collection: collection.id, actor: actor))
        let values = records.flatMap { RecordIndexing.rows(RecordIndexing.entries($0.data, collection.definition), record: $0.id) }
        if !values.isEmpty {
            _ = plan.add(RecordStore.insertValues(tenant: tenant, collection: collection.id, rows: .array(values)))
        }
        plan.addUniques(for: records, collection: collection, tenant: tenant)
        let diffs = records.map { ($0.id, RecordChanges.diff(before: nil, after: $0.data)) }
        _ = plan.add(RecordStore.audit(
            tenant: tenant, collection: collection.id, named: collection.name, actor: actor, origin: origin, operation: "create", entries: diffs
        ))
        _ = plan.add(RecordStore.appendChanges(
            tenant: tenant, collection: collection.id, named: collection.name, readRule: collection.definition.rules.read, actor: actor,
            operation: "create", entries: diffs.map { ($0.0, $0.1.changedFields) }
        ))
        return (plan, insert)
    }

    /// Runs a creation plan in one round trip, or under an Idempotency-Key (then the key is
    /// claimed and the response stored in the same transaction as the write).
    private func run(
        _ plan: WritePlan, idempotency: IdempotencyRequest?, principal: Principal, respond: ([PostgresRows]) throws -> StoredResponse
    ) async throws -> StoredResponse {
        guard let idempotency else {
            return try await plan.translatingFailures {
                let results = try await self.database.transaction(in: principal.tenant, plan.statements)
                self.database.announceChanges()
                return try respond(results)
            }
        }
        let response = try await plan.translatingFailures {
            try await self.database.withTransaction(in: principal.tenant) { transaction in
                try await Idempotency.perform(idempotency, principal: principal, in: transaction) {
                    try respond(try await transaction.execute(plan.statements))
                }
            }
        }
        self.database.announceChanges()
        return response
    }
}
