import AtriumText
import AtriumCrypto
package import Foundation
package import Logging
package import PostgresPool

/// What a collection needs of its records, done by the records' side (`RecordStore`), so that
/// collections never touch record tables themselves.
package protocol CollectionRecords: Sendable {
    /// One statement whose single row and column says whether the collection has records.
    func anyRecords(of collection: UUID, tenant: UUID) -> PostgresQuery

    /// Brings every record in line with `definition`, in the transaction that changes the
    /// fields, or fails listing the records that do not fit.
    func migrateRecords(
        of collection: StoredCollection, to definition: CollectionDefinition, by principal: Principal,
        origin: RequestOrigin, in transaction: PostgresTransaction
    ) async throws

    /// One statement that writes the deletion of every record of the collection to the change
    /// log; run in the transaction that deletes the collection, before it does.
    func recordDeletions(ofCollection collection: StoredCollection, by principal: Principal) -> PostgresQuery
}

/// Collections of a tenant: their definitions (fields, constraints, rules) and changes to them.
public final class CollectionService: Sendable {
    let database: Database
    let cache: CollectionCache
    let records: any CollectionRecords
    let logger: Logger

    package init(database: Database, cache: CollectionCache, records: any CollectionRecords, logger: Logger) {
        self.database = database
        self.cache = cache
        self.records = records
        self.logger = logger
    }

    /// The collection `name` of the tenant, from the cache or the database; `notFound` when missing.
    public func collection(named name: String, in tenant: TenantContext) async throws -> StoredCollection {
        if let cached = self.cache.get(tenant: tenant.tenantID, name: name) { return cached }
        guard CollectionDefinition.isValidName(name) else { throw AtriumError.notFound("collection") }
        let rows = try await self.database.query(in: tenant, """
            SELECT collection_id, version, definition, created_at, updated_at FROM atrium.collections
            WHERE tenant_id = \(tenant.tenantID) AND name = \(name)
            """)
        guard let row = rows.single else { throw AtriumError.notFound("collection") }
        let collection = try Self.collection(row, tenant: tenant.tenantID)
        self.cache.put(collection)
        return collection
    }

    static func collection(_ row: PostgresRow, tenant: UUID) throws -> StoredCollection {
        let (id, version, definitionText, createdAt, updatedAt) = try row.decode((UUID, Int64, String, Date, Date).self)
        guard let json = try? JSONParser.parse(definitionText, limits: .stored), let definition = CollectionDefinition.parse(json, stored: true).definition else {
            throw AtriumError(.conflict, "the stored definition of this collection cannot be read")
        }
        return StoredCollection(id: id, tenantID: tenant, version: version, definition: definition, createdAt: createdAt, updatedAt: updatedAt)
    }

    /// Every collection of the tenant (viewer or above).
    public func list(_ principal: Principal) async throws -> [StoredCollection] {
        try principal.require(.viewer)
        let rows = try await self.database.query(in: principal.tenant, """
            SELECT collection_id, version, definition, created_at, updated_at FROM atrium.collections
            WHERE tenant_id = \(principal.tenant.tenantID) ORDER BY name
            """)
        return try rows.map { try Self.collection($0, tenant: principal.tenant.tenantID) }
    }

    /// One collection's definition (viewer or above).
    public func get(_ principal: Principal, name: String) async throws -> StoredCollection {
        try principal.require(.viewer)
        return try await self.collection(named: name, in: principal.tenant)
    }

    /// Creates a collection (admin or above).
    public func create(_ principal: Principal, body: JSONValue) async throws -> StoredCollection {
        try principal.require(.admin)
        let (parsed, failures) = CollectionDefinition.parse(body)
        guard let definition = parsed else { throw AtriumError.invalid(failures) }
        let id = SecureRandom.uuid()
        return try await mappingCollectionConflicts {
            try await self.database.withTransaction(in: principal.tenant) { transaction in
                try await self.checkReferences(definition, in: transaction, tenant: principal.tenant)
                let rows = try await transaction.query("""
                    INSERT INTO atrium.collections (tenant_id, collection_id, name, definition)
                    VALUES (\(principal.tenant.tenantID), \(id), \(definition.name), \(JSONSerializer.text(definition.json))::jsonb)
                    RETURNING collection_id, version, definition, created_at, updated_at
                    """)
                try await self.announce([definition.name], in: transaction, tenant: principal.tenant)
                return try Self.collection(rows[0], tenant: principal.tenant.tenantID)
            }
        }
    }

    /// Tells every server to drop its cached definitions of `names`, when this transaction
    /// commits. On PostgreSQL a trigger on atrium.collections does it; on Citus the trigger
    /// would run on a worker, where nobody listens (sql/citus/distribute.sql drops it there).
    /// Inside a definition change or deletion: waits for the collection's record writes in
    /// flight and holds off new ones until commit (`atrium.require_collection_version`).
    static func lockDefinition(_ collection: UUID) -> PostgresQuery {
        "SELECT atrium.lock_collection_definition(\(collection))"
    }

    func announce(_ names: [String], in transaction: PostgresTransaction, tenant: TenantContext) async throws {
        guard self.database.runsOnCitus else { return }
        let payloads = Set(names).map { tenant.tenantID.lowercasedString + ":" + $0 }
        _ = try await transaction.query("SELECT pg_catalog.pg_notify(\(ChangeWatcher.collectionChannel), p) FROM unnest(\(payloads)::text[]) AS p")
    }

    /// Reference fields must name a collection of the same tenant (or the collection itself).
    func checkReferences(_ definition: CollectionDefinition, in transaction: PostgresTransaction, tenant: TenantContext) async throws {
        let targets = Set(definition.fields.compactMap(\.collection)).subtracting([definition.name])
        guard !targets.isEmpty else { return }
        let rows = try await transaction.query("""
            SELECT name FROM atrium.collections WHERE tenant_id = \(tenant.tenantID) AND name = ANY(\(Array(targets))::text[])
            """)
        let existing = Set(try rows.map { try $0.decode(String.self, column: 0) })
        let failures = definition.fields.compactMap { field -> AtriumError.FieldFailure? in
            guard let target = field.collection, target != definition.name, !existing.contains(target) else { return nil }
            return AtriumError.FieldFailure(field: "/fields/\(field.name)/collection", reason: "there is no collection \(target)")
        }
        if !failures.isEmpty { throw AtriumError.invalid(failures) }
    }

    /// Deletes a collection and its records (admin or above). A collection with records needs
    /// `force`; one that other collections reference cannot go until those fields do.
    public func delete(_ principal: Principal, name: String, force: Bool) async throws {
        try principal.require(.admin)
        let collection = try await self.collection(named: name, in: principal.tenant)
        try await self.database.withTransaction(in: principal.tenant) { transaction in
            // The writes in flight commit first, so the check for records sees theirs.
            let checks = try await transaction.execute([
                Self.lockDefinition(collection.id),
                self.records.anyRecords(of: collection.id, tenant: principal.tenant.tenantID),
                """
                SELECT name FROM atrium.collections WHERE tenant_id = \(principal.tenant.tenantID) AND name <> \(name)
                  AND EXISTS (SELECT 1 FROM jsonb_each(definition->'fields') f WHERE f.value->>'collection' = \(name))
                """,
            ])
            let referrers = try checks[2].map { try $0.decode(String.self, column: 0) }
            if !referrers.isEmpty {
                throw AtriumError(.conflict, "collections \(referrers.joined(separator: ", ")) reference \(name); remove those fields first", reason: "referenced")
            }
            if try checks[1][0].decode(Bool.self, column: 0), !force {
                throw AtriumError(.conflict, "\(name) has records; delete with ?force=true to delete them too", reason: "not_empty")
            }
            let deleted = try await transaction.execute([
                self.records.recordDeletions(ofCollection: collection, by: principal),
                "DELETE FROM atrium.collections WHERE tenant_id = \(principal.tenant.tenantID) AND collection_id = \(collection.id)",
            ])[1]
            guard deleted.affectedRows == 1 else { throw AtriumError.notFound("collection") }
            try await self.announce([name], in: transaction, tenant: principal.tenant)
        }
        // The deletions of its records.
        self.database.announceChanges()
        self.cache.remove(tenant: principal.tenant.tenantID, name: name)
    }
}

/// Maps a taken collection name to a conflict.
func mappingCollectionConflicts<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as PostgresError where error.sqlState == PostgresError.SQLState.uniqueViolation && error.constraint == "collections_name_key" {
        throw AtriumError(.conflict, "a collection with this name exists", reason: "name_taken")
    }
}
