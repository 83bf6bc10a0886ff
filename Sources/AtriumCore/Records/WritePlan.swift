import AtriumText
import Foundation
import PostgresPool

/// Statements of one record write, each tagged with what it is for, so a failure of statement
/// n can be told to the caller in terms of their request (which field, which record).
struct WritePlan {
    enum Purpose {
        case definitionGuard
        case recordGuard
        case reference(field: String, target: String)
        case unique(field: String, pointers: [UUID: String])
        case other
    }

    private(set) var statements: [PostgresQuery] = []
    private(set) var purposes: [Purpose] = []

    mutating func add(_ statement: PostgresQuery, _ purpose: Purpose = .other) -> Int {
        self.statements.append(statement)
        self.purposes.append(purpose)
        return self.statements.count - 1
    }

    /// The definition guard (unless the transaction holds it already) and the reference
    /// checks for `records` (`pointer` names each in errors).
    mutating func addChecks(
        for records: [(id: UUID, data: JSONObject, pointer: String)],
        collection: StoredCollection,
        targets: [String: StoredCollection],
        tenant: UUID,
        definitionGuard: Bool = true
    ) {
        if definitionGuard {
            _ = self.add(RecordStore.versionGuard(collection), .definitionGuard)
        }
        for field in collection.definition.fields where field.type == .reference {
            guard let targetName = field.collection, let target = targets[targetName] else { continue }
            let ids = records.compactMap { $0.data[field.name]?.stringValue.flatMap({ UUID(canonical: $0) }) }
            guard !ids.isEmpty else { continue }
            _ = self.add("SELECT atrium.require_records(\(target.id), \(ids.map(\.lowercasedString))::uuid[])", .reference(field: field.name, target: targetName))
        }
    }

    mutating func addUniques(for records: [(id: UUID, data: JSONObject, pointer: String)], collection: StoredCollection, tenant: UUID) {
        var byField: [String: [(record: UUID, key: String)]] = [:]
        var pointers: [UUID: String] = [:]
        for record in records {
            pointers[record.id] = record.pointer
            for (field, key) in RecordIndexing.uniqueKeys(record.data, collection.definition) {
                byField[field, default: []].append((record.id, key))
            }
        }
        // Claimed field by field in the definition's order, each field's values sorted: two
        // writes wanting some of the same values then wait for each other in turn, where in their
        // records' orders each could hold a value the other waits for (a deadlock PostgreSQL
        // breaks only after `deadlock_timeout`, by failing one of them).
        for field in collection.definition.fields where byField[field.name] != nil {
            let keys = byField[field.name]!.sorted { $0.key < $1.key }
            _ = self.add(
                RecordStore.insertUnique(tenant: tenant, collection: collection.id, field: field.name, keys: keys),
                .unique(field: field.name, pointers: pointers)
            )
        }
    }

    /// The caller-facing meaning of a failed statement, or nil to rethrow as is.
    func explain(_ error: PostgresError) -> (any Error)? {
        guard let index = error.statementIndex, index < self.purposes.count else { return nil }
        switch (self.purposes[index], error.sqlState) {
        case (.definitionGuard, "AT003"):
            return DefinitionChanged()
        case (.recordGuard, "AT004"), (.recordGuard, PostgresError.SQLState.lockNotAvailable):
            return RecordChanged()
        case (.reference(let field, let target), "AT002"):
            return AtriumError.invalid([.init(field: "/\(field)", reason: "must be the id of a record in \(target)")])
        case (.unique(let field, let pointers), PostgresError.SQLState.uniqueViolation):
            // atrium.claim_unique_values puts the record that wanted the value in the detail.
            let pointer = error.detail.flatMap({ UUID(canonical: $0) }).flatMap { pointers[$0] } ?? ""
            return AtriumError.invalid([.init(field: "\(pointer)/\(field)", reason: "must be unique; another record has this value")])
        default:
            return nil
        }
    }

    /// Runs `body`, translating a failed statement through `explain`.
    func translatingFailures<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PostgresError {
            throw self.explain(error) ?? error
        }
    }
}

/// The collection changed between reading its definition and writing: read it again and retry.
struct DefinitionChanged: Error {}

/// The record changed (or went) between reading it and writing it, or another transaction holds
/// it locked: read it again and retry.
struct RecordChanged: Error {}
