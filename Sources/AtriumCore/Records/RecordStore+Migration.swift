import AtriumText
package import Foundation
package import PostgresPool

extension RecordStore: CollectionRecords {
    package func recordDeletions(ofCollection collection: StoredCollection, by principal: Principal) -> PostgresQuery {
        Self.appendDeletions(ofCollection: collection, tenant: principal.tenant.tenantID, actor: Actor(principal))
    }

    package func anyRecords(of collection: UUID, tenant: UUID) -> PostgresQuery {
        "SELECT EXISTS (SELECT 1 FROM atrium.records WHERE tenant_id = \(tenant) AND collection_id = \(collection))"
    }

    /// Brings every record in line with `definition`, or fails listing the records that do not fit.
    package func migrateRecords(
        of collection: StoredCollection, to definition: CollectionDefinition, by principal: Principal,
        origin: RequestOrigin, in transaction: PostgresTransaction
    ) async throws {
        let tenant = principal.tenant.tenantID
        let removed = Set(collection.definition.fields.map(\.name)).subtracting(definition.fields.map(\.name))
        let actor = Actor(principal)
        var failures: [AtriumError.FieldFailure] = []
        var failingRecords = 0
        var seenUnique: [String: UUID] = [:]
        var last: UUID?
        _ = try await transaction.execute([
            Self.deleteValues(tenant: tenant, collection: collection.id),
            Self.deleteUniques(tenant: tenant, collection: collection.id),
        ])
        while true {
            let batch = try await transaction.query(Self.page(tenant: tenant, collection: collection.id, after: last, limit: 500))
            guard !batch.isEmpty else { break }
            var updates: [JSONValue] = []
            var entries: [JSONValue] = []
            var uniques: [JSONValue] = []
            var audits: [(record: UUID, changes: JSONValue)] = []
            for row in batch {
                let record = try StoredRecord(row: row)
                let id = record.id
                last = id
                var data = record.data
                let before = data
                for field in removed { data[field] = nil }
                let (validated, problems) = RecordValidator.validate(.object(data), against: definition, applyDefaults: true, at: "/records/\(id.lowercasedString)")
                // Checking every record of a large collection is long: other requests run between records.
                await Task.yield()
                var recordProblems = problems
                for (field, key) in RecordIndexing.uniqueKeys(validated, definition) {
                    if let other = seenUnique.updateValue(id, forKey: field + "\u{0}" + key), other != id {
                        recordProblems.append(.init(field: "/records/\(id.lowercasedString)/\(field)", reason: "has the same value as record \(other.lowercasedString), but \(field) is to be unique"))
                    }
                }
                if !recordProblems.isEmpty {
                    failingRecords += 1
                    if failures.count < 100 { failures += recordProblems.prefix(100 - failures.count) }
                    continue
                }
                guard failures.isEmpty else { continue }
                let idValue = JSONValue.string(id.lowercasedString)
                if validated != before {
                    updates.append(.object(JSONObject([("id", idValue), ("data", .object(validated))])))
                    audits.append((id, RecordChanges.diff(before: before, after: validated)))
                }
                entries += RecordIndexing.rows(RecordIndexing.entries(validated, definition), record: id)
                for (field, key) in RecordIndexing.uniqueKeys(validated, definition) {
                    uniques.append(.object(JSONObject([("record_id", idValue), ("field", .string(field)), ("value_key", .string(key))])))
                }
            }
            guard failures.isEmpty else { continue }
            var statements: [PostgresQuery] = []
            if !updates.isEmpty {
                statements.append(Self.update(.array(updates), tenant: tenant, collection: collection.id, actor: actor))
                statements.append(Self.audit(
                    tenant: tenant, collection: collection.id, named: definition.name, actor: actor, origin: origin, operation: "update", entries: audits
                ))
                statements.append(Self.appendChanges(
                    tenant: tenant, collection: collection.id, named: definition.name, readRule: definition.rules.read, actor: actor,
                    operation: "update", entries: audits.map { ($0.record, $0.changes.changedFields) }
                ))
            }
            if !entries.isEmpty {
                statements.append(Self.insertValues(tenant: tenant, collection: collection.id, rows: .array(entries)))
            }
            if !uniques.isEmpty {
                statements.append(Self.insertUniques(tenant: tenant, collection: collection.id, rows: .array(uniques)))
            }
            if !statements.isEmpty { _ = try await transaction.execute(statements) }
            if failures.count >= 100 { break }
        }
        if !failures.isEmpty {
            throw AtriumError(
                .validation,
                "\(failingRecords == 0 ? "some" : String(failingRecords)) existing record(s) do not fit the new definition; fix or delete them first",
                fields: failures
            )
        }
    }
}
