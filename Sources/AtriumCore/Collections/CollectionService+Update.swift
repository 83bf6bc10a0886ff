import AtriumText
import Foundation
import PostgresPool

extension CollectionService {
    /// Changes a collection (admin or above) with a JSON Merge Patch of its definition:
    /// `{"fields": {"due": {"type": "date"}, "old": null}, "rules": {…}}`.
    ///
    /// When fields change and the collection has records, every record is checked against the
    /// new definition in the same transaction: loosening always passes, tightening is refused
    /// (422) listing the records that fail. Removed fields are dropped from records, new fields
    /// with a default are filled in, and the indexes of the collection are rebuilt.
    public func update(_ principal: Principal, name: String, patch: JSONValue, origin: RequestOrigin) async throws -> StoredCollection {
        try principal.require(.admin)
        guard case .object = patch else { throw AtriumError.invalid([.init(field: "/", reason: "must be a JSON merge patch object")]) }
        let updated = try await mappingCollectionConflicts {
            try await self.database.withTransaction(in: principal.tenant) { transaction in
                let rows = try await transaction.query("""
                    SELECT collection_id, version, definition, created_at, updated_at FROM atrium.collections
                    WHERE tenant_id = \(principal.tenant.tenantID) AND name = \(name) FOR UPDATE
                    """)
                guard let row = rows.single else { throw AtriumError.notFound("collection") }
                let current = try Self.collection(row, tenant: principal.tenant.tenantID)
                let (parsed, failures) = CollectionDefinition.parse(MergePatch.apply(patch, to: current.definition.json))
                guard let definition = parsed else { throw AtriumError.invalid(failures) }
                try await self.checkReferences(definition, in: transaction, tenant: principal.tenant)
                if definition.name != current.name {
                    try await self.refuseRenameIfReferenced(current.name, in: transaction, tenant: principal.tenant)
                }
                if definition.fields != current.definition.fields {
                    try await self.migrateRecords(of: current, to: definition, by: principal, origin: origin, in: transaction)
                }
                let saved = try await transaction.query("""
                    UPDATE atrium.collections
                    SET name = \(definition.name), definition = \(JSONSerializer.text(definition.json))::jsonb, version = version + 1, updated_at = now()
                    WHERE tenant_id = \(principal.tenant.tenantID) AND collection_id = \(current.id)
                    RETURNING collection_id, version, definition, created_at, updated_at
                    """)
                return (current.name, try Self.collection(saved[0], tenant: principal.tenant.tenantID))
            }
        }
        self.cache.remove(tenant: principal.tenant.tenantID, name: updated.0)
        self.cache.remove(tenant: principal.tenant.tenantID, name: updated.1.name)
        return updated.1
    }

    private func refuseRenameIfReferenced(_ name: String, in transaction: PostgresTransaction, tenant: TenantContext) async throws {
        let rows = try await transaction.query("""
            SELECT name FROM atrium.collections WHERE tenant_id = \(tenant.tenantID) AND name <> \(name)
              AND EXISTS (SELECT 1 FROM jsonb_each(definition->'fields') f WHERE f.value->>'collection' = \(name))
            """)
        if !rows.isEmpty {
            throw AtriumError(.conflict, "other collections reference \(name); it cannot be renamed", reason: "referenced")
        }
    }

    /// Brings every record in line with `definition`, or fails listing the records that do not fit.
    private func migrateRecords(
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
            "DELETE FROM atrium.record_values WHERE tenant_id = \(tenant) AND collection_id = \(collection.id)",
            "DELETE FROM atrium.record_unique_values WHERE tenant_id = \(tenant) AND collection_id = \(collection.id)",
        ])
        while true {
            let batch = try await transaction.query("""
                SELECT record_id, data FROM atrium.records
                WHERE tenant_id = \(tenant) AND collection_id = \(collection.id) AND (\(last)::uuid IS NULL OR record_id > \(last))
                ORDER BY record_id LIMIT 500
                """)
            guard !batch.isEmpty else { break }
            var updates: [JSONValue] = []
            var entries: [JSONValue] = []
            var uniques: [JSONValue] = []
            var audits: [JSONValue] = []
            for row in batch {
                let (id, text) = try row.decode((UUID, String).self)
                last = id
                guard case .object(var data) = try JSONParser.parse(text, limits: .stored) else { continue }
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
                    audits.append(.object(JSONObject([("id", idValue), ("changes", RecordChanges.diff(before: before, after: validated))])))
                }
                entries += RecordIndexing.rows(RecordIndexing.entries(validated, definition), record: id)
                for (field, key) in RecordIndexing.uniqueKeys(validated, definition) {
                    uniques.append(.object(JSONObject([("record_id", idValue), ("field", .string(field)), ("value_key", .string(key))])))
                }
            }
            guard failures.isEmpty else { continue }
            var statements: [PostgresQuery] = []
            if !updates.isEmpty {
                statements.append("""
                    UPDATE atrium.records r SET data = u.data, version = r.version + 1, updated_at = now(),
                        updated_by = \(actor.id), updated_by_kind = \(actor.kind)
                    FROM jsonb_to_recordset(\(JSONSerializer.text(.array(updates)))::jsonb) AS u(id uuid, data jsonb)
                    WHERE r.tenant_id = \(tenant) AND r.collection_id = \(collection.id) AND r.record_id = u.id
                    """)
                statements.append("""
                    INSERT INTO atrium.record_audit (tenant_id, audit_id, actor_id, actor_kind, request_id, collection_id, collection_name, record_id, operation, changes)
                    SELECT \(tenant), gen_random_uuid(), \(actor.id), \(actor.kind), \(origin.requestID), \(collection.id), \(definition.name), a.id, 'update', a.changes
                    FROM jsonb_to_recordset(\(JSONSerializer.text(.array(audits)))::jsonb) AS a(id uuid, changes jsonb)
                    """)
            }
            if !entries.isEmpty {
                statements.append(RecordWrites.insertValues(tenant: tenant, collection: collection.id, rows: .array(entries)))
            }
            if !uniques.isEmpty {
                statements.append("""
                    INSERT INTO atrium.record_unique_values (tenant_id, collection_id, field, value_key, record_id)
                    SELECT \(tenant), \(collection.id), u.field, u.value_key, u.record_id
                    FROM jsonb_to_recordset(\(JSONSerializer.text(.array(uniques)))::jsonb) AS u(record_id uuid, field text, value_key text)
                    """)
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
