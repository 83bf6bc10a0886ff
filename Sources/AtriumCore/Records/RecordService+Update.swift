import AtriumText
public import Foundation
import PostgresPool
import Synchronization

extension RecordService {
    /// How a write replaces the data.
    public enum UpdateMode: Sendable {
        /// PUT: the body is the whole new data (defaults fill in what it omits).
        case replace
        /// PATCH: the body is an RFC 7396 JSON Merge Patch of the data.
        case mergePatch
    }

    /// How many times an update is worked out from the record as read, without a lock, and
    /// found changed when written, before it locks the record first (see `update`).
    static let unlockedAttempts = 2

    /// Replaces or patches a record. With a `condition` the current version does not meet, it
    /// fails (`preconditionFailed`); an update that changes nothing leaves the version as it was.
    /// The answer is the record as PostgreSQL printed it.
    ///
    /// The record is read without a lock and the new data worked out from it; the write then
    /// goes in one round trip whose first statement locks the record and checks that it is
    /// still at the version read (`RecordStore.recordGuard`). If it changed meanwhile, or
    /// another transaction holds it locked (the write does not wait for that: it may share its
    /// connection's round with other tenants' work), all of it is done again from a new read;
    /// after `unlockedAttempts` of those, as when many writers compete for one record, it is
    /// locked and read in a transaction with a connection to itself, which then writes it.
    /// Either way no change is written over one it did not see.
    public func update(
        _ principal: Principal, collection name: String, id: UUID, body: JSONValue, mode: UpdateMode, condition: VersionCondition?, origin: RequestOrigin
    ) async throws -> RecordText {
        try await self.withCollection(name, principal) { collection in
            try principal.require(collection.definition.rules.update.role)
            let targets = try await self.referenceTargets(of: collection, in: principal.tenant)
            let update = { (current: StoredRecord) in
                try Self.updatedData(of: current, body: body, mode: mode, condition: condition, collection: collection, principal: principal)
            }
            for _ in 0..<Self.unlockedAttempts {
                let rows = try await self.database.query(
                    in: principal.tenant, RecordStore.record(id, tenant: principal.tenant.tenantID, collection: collection.id, locked: false)
                )
                let (current, currentText) = try Self.visible(rows, collection: collection, principal: principal)
                guard let data = try update(current) else { return currentText }
                let (plan, written) = self.updatePlan(
                    data, over: current, guarded: true, collection: collection, targets: targets, principal: principal, origin: origin
                )
                do {
                    let results = try await plan.translatingFailures { try await self.database.transaction(in: principal.tenant, plan.statements) }
                    self.database.announceChanges()
                    return try RecordText(row: results[written][0])
                } catch is RecordChanged {
                    self.updatesRetried.add(1, ordering: .relaxed)
                    continue
                }
            }
            self.updatesLocked.add(1, ordering: .relaxed)
            return try await self.database.withTransaction(in: principal.tenant) { transaction in
                // The definition first, then the row, in one round trip: the order of every other
                // write. A definition change holds the definition and then rewrites the records;
                // taken the other way round, each would wait for the other (a deadlock, which
                // PostgreSQL ends after a second by failing one of them).
                var read = WritePlan()
                _ = read.add(RecordStore.versionGuard(collection), .definitionGuard)
                let record = read.add(RecordStore.record(id, tenant: principal.tenant.tenantID, collection: collection.id, locked: true))
                let rows = try await read.translatingFailures { try await transaction.execute(read.statements) }
                let (current, currentText) = try Self.visible(rows[record], collection: collection, principal: principal)
                guard let data = try update(current) else { return currentText }
                let (plan, written) = self.updatePlan(
                    data, over: current, guarded: false, collection: collection, targets: targets, principal: principal, origin: origin
                )
                // The write's statements and COMMIT travel together: one round trip fewer.
                let results = try await plan.translatingFailures { try await transaction.executeAndCommit(plan.statements) }
                self.database.announceChanges()
                return try RecordText(row: results[written][0])
            }
        }
    }

    /// The data `current` is to have after the update, or nil when that is what it has; throws
    /// what the caller may not do or did wrong.
    private static func updatedData(
        of current: StoredRecord, body: JSONValue, mode: UpdateMode, condition: VersionCondition?, collection: StoredCollection, principal: Principal
    ) throws -> JSONObject? {
        if collection.definition.rules.update.restrictsToOwn(principal), current.createdBy != Actor(principal) {
            throw AtriumError(.forbidden, "only the record's creator may change it")
        }
        try Self.check(condition, current)
        let candidate = mode == .replace ? body : MergePatch.apply(body, to: .object(current.data))
        if mode == .mergePatch, case .object(let patch) = body {
            let system = patch.keys.filter { CollectionDefinition.systemFields.contains($0) }
            if !system.isEmpty {
                throw AtriumError.invalid(system.map { .init(field: "/\($0)", reason: "is a system field and cannot be written") })
            }
        }
        let (data, failures) = RecordValidator.validate(candidate, against: collection.definition, applyDefaults: mode == .replace)
        guard failures.isEmpty else { throw AtriumError.invalid(failures) }
        return data == current.data ? nil : data
    }

    private static func check(_ condition: VersionCondition?, _ current: StoredRecord) throws {
        if let condition, !condition.holds(for: current.version) {
            throw AtriumError(.preconditionFailed, "the record has changed (its ETag is \"\(current.version)\")")
        }
    }

    /// The statements that write `data` over `current` (`written`: the one that answers the
    /// record); `guarded` when `current` was read without a lock, to take the definition and
    /// check that the record is still what was read first (the locked path took the definition
    /// and the record before reading it).
    private func updatePlan(
        _ data: JSONObject, over current: StoredRecord, guarded: Bool, collection: StoredCollection, targets: [String: StoredCollection],
        principal: Principal, origin: RequestOrigin
    ) -> (plan: WritePlan, written: Int) {
        let tenant = principal.tenant.tenantID
        let actor = Actor(principal)
        let records = [(id: current.id, data: data, pointer: "")]
        var plan = WritePlan()
        plan.addChecks(for: records, collection: collection, targets: targets, tenant: tenant, definitionGuard: guarded)
        if guarded {
            _ = plan.add(RecordStore.recordGuard(current.id, version: current.version, collection: collection.id), .recordGuard)
        }
        let update = plan.add(RecordStore.update(current.id, data: data, tenant: tenant, collection: collection.id, actor: actor))
        // Index rows are rewritten only for the indexed fields whose values changed: an edit of
        // other fields writes none (deleting and inserting them all was a third of a PATCH's
        // PostgreSQL time), an edit of one indexed field only its rows. The rows always match
        // the current definition (a definition change rebuilds them, and the version guard
        // above keeps it from happening meanwhile), so the old data says what is stored.
        let before = RecordIndexing.entries(current.data, collection.definition)
        let after = RecordIndexing.entries(data, collection.definition)
        let changed = RecordIndexing.changedFields(from: before, to: after)
        if !changed.isEmpty {
            _ = plan.add(RecordStore.deleteValues(tenant: tenant, collection: collection.id, record: current.id, fields: changed.sorted()))
            let values = RecordIndexing.rows(after.filter { changed.contains($0.field) }, record: current.id)
            if !values.isEmpty { _ = plan.add(RecordStore.insertValues(tenant: tenant, collection: collection.id, rows: .array(values))) }
        }
        // Unique values likewise: claimed again only when one of them changed.
        let uniqueKeys = { (data: JSONObject) in RecordIndexing.uniqueKeys(data, collection.definition).map { $0.field + "\u{0}" + $0.key } }
        if uniqueKeys(current.data) != uniqueKeys(data) {
            _ = plan.add(RecordStore.deleteUniques(tenant: tenant, collection: collection.id, record: current.id))
            plan.addUniques(for: records, collection: collection, tenant: tenant)
        }
        let diff = RecordChanges.diff(before: current.data, after: data)
        _ = plan.add(RecordStore.audit(
            tenant: tenant, collection: collection.id, named: collection.name, actor: actor, origin: origin, operation: "update",
            entries: [(current.id, diff)]
        ))
        _ = plan.add(RecordStore.appendChanges(
            tenant: tenant, collection: collection.id, named: collection.name, readRule: collection.definition.rules.read, actor: actor,
            operation: "update", entries: [(current.id, diff.changedFields)]
        ))
        return (plan, update)
    }

    /// Deletes a record (per the delete rule). Refused (`conflict`) while other records reference it.
    public func delete(_ principal: Principal, collection name: String, id: UUID, condition: VersionCondition?, origin: RequestOrigin) async throws {
        let collection = try await self.collections.collection(named: name, in: principal.tenant)
        let rules = collection.definition.rules
        try principal.require(rules.delete.role)
        try await self.database.withTransaction(in: principal.tenant) { transaction in
            // The lock and the referrers in one round trip; the delete, its audit entry and
            // COMMIT in another.
            let read = try await transaction.execute([
                RecordStore.record(id, tenant: principal.tenant.tenantID, collection: collection.id, locked: true),
                RecordStore.referrers(of: id, collection: collection.name),
            ])
            let current = try Self.visible(read[0], collection: collection, principal: principal).record
            if rules.delete.restrictsToOwn(principal), current.createdBy != Actor(principal) {
                throw AtriumError(.forbidden, "only the record's creator may delete it")
            }
            try Self.check(condition, current)
            let referrers = read[1]
            if !referrers.isEmpty {
                let list = try referrers.map { row -> String in
                    let (referrer, record) = try row.decode((String, UUID).self)
                    return "\(referrer)/\(record.lowercasedString)"
                }
                throw AtriumError(.conflict, "other records reference this one: \(list.joined(separator: ", "))", reason: "referenced")
            }
            let tenant = principal.tenant.tenantID
            _ = try await transaction.executeAndCommit([
                RecordStore.delete(id, tenant: tenant, collection: collection.id),
                RecordStore.audit(
                    tenant: tenant, collection: collection.id, named: collection.name, actor: Actor(principal), origin: origin, operation: "delete",
                    entries: [(id, RecordChanges.diff(before: current.data, after: nil))]
                ),
                RecordStore.appendDeletion(
                    of: current, tenant: tenant, collection: collection.id, named: collection.name,
                    readRule: rules.read, actor: Actor(principal)
                ),
            ])
            self.database.announceChanges()
        }
    }

    /// The record of `rows`, unless missing or not visible to the caller.
    private static func visible(_ rows: PostgresRows, collection: StoredCollection, principal: Principal) throws -> (record: StoredRecord, text: RecordText) {
        guard let row = rows.single else { throw AtriumError.notFound("record") }
        let text = try RecordText(row: row)
        let record = try StoredRecord(text)
        if collection.definition.rules.read.restrictsToOwn(principal), record.createdBy != Actor(principal) {
            throw AtriumError.notFound("record")
        }
        return (record, text)
    }
}
