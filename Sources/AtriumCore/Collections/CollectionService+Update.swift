import AtriumText
import Foundation
import PostgresPool

extension CollectionService {
    /// Changes a collection (admin or above) with a JSON Merge Patch of its definition:
    /// `{"fields": {"due": {"type": "date"}, "old": null}, "rules": {…}}`.
    ///
    /// When fields change and the collection has records, every record is checked against the
    /// new definition in the same transaction: loosening always passes, tightening is refused
    /// (`validation`) listing the records that fail. Removed fields are dropped from records, new fields
    /// with a default are filled in, and the indexes of the collection are rebuilt.
    public func update(_ principal: Principal, name: String, patch: JSONValue, origin: RequestOrigin) async throws -> StoredCollection {
        try principal.require(.admin)
        guard case .object = patch else { throw AtriumError.invalid([.init(field: "/", reason: "must be a JSON merge patch object")]) }
        let updated = try await mappingCollectionConflicts {
            try await self.database.withTransaction(in: principal.tenant) { transaction in
                let rows = try await transaction.query("""
                    SELECT collection_id, version, definition, created_at, updated_at FROM atrium.collections
                    WHERE tenant_id = \(principal.tenant.tenantID) AND name = \(name) FOR NO KEY UPDATE
                    """)
                guard let row = rows.single else { throw AtriumError.notFound("collection") }
                let current = try Self.collection(row, tenant: principal.tenant.tenantID)
                // Waits for the record writes in flight (validated against this version) and
                // holds off new ones until commit; only then are the records read and checked.
                // After the row lock, never before: two changes of one collection queue on the row.
                // `NO KEY`: a write in flight still locks the row `FOR KEY SHARE` through its
                // records' foreign key, which `FOR UPDATE` would make wait for this change while
                // it waits for the write (a deadlock). A rename takes the stronger lock when the
                // row is updated below, once no write is in flight.
                _ = try await transaction.query(Self.lockDefinition(current.id))
                let (parsed, failures) = CollectionDefinition.parse(MergePatch.apply(patch, to: current.definition.json))
                guard let definition = parsed else { throw AtriumError.invalid(failures) }
                try await self.checkReferences(definition, in: transaction, tenant: principal.tenant)
                if definition.name != current.name {
                    try await self.refuseRenameIfReferenced(current.name, in: transaction, tenant: principal.tenant)
                }
                if definition.fields != current.definition.fields {
                    try await self.records.migrateRecords(of: current, to: definition, by: principal, origin: origin, in: transaction)
                }
                let saved = try await transaction.query("""
                    UPDATE atrium.collections
                    SET name = \(definition.name), definition = \(JSONSerializer.text(definition.json))::jsonb, version = version + 1, updated_at = now()
                    WHERE tenant_id = \(principal.tenant.tenantID) AND collection_id = \(current.id)
                    RETURNING collection_id, version, definition, created_at, updated_at
                    """)
                try await self.announce([current.name, definition.name], in: transaction, tenant: principal.tenant)
                return (current.name, try Self.collection(saved[0], tenant: principal.tenant.tenantID))
            }
        }
        // The records' changes when fields changed and records were brought in line (otherwise
        // the NOTIFY finds nothing new, as any spare one does).
        self.database.announceChanges()
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
}
