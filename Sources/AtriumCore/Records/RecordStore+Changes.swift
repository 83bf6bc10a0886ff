import AtriumText
import Foundation
import PostgresPool

/// The change log's side of a write: one row per record in `atrium.record_changes`, in the
/// writing transaction; each statement is one more in the write's pipeline, not one more round
/// trip. The NOTIFY that wakes the listeners is not part of it: whoever commits the transaction
/// calls `Database.announceChanges()` after the commit (see `ChangeAnnouncer` for why).
extension RecordStore {
    /// Channel on which servers learn that the change log grew.
    public static let changeChannel = "atrium_changes"

    /// The records of `entries` as they are after this transaction's write (create or update).
    /// The records are found by their key, so the plan is an index lookup whatever the
    /// collection's size; for several records, the changed fields come from a map by record id.
    ///
    /// One record — every single write — is matched with `=`, not `= ANY`: PostgreSQL cannot
    /// tell how many rows an array parameter matches, so its generic plan for `= ANY` looks
    /// dearer than the plan made for the values and the statement was planned again on every
    /// write (~0.2 ms of PostgreSQL's CPU, more than running it). With `=` on the key the
    /// prepared statement runs its generic plan after five executions.
    static func appendChanges(
        tenant: UUID, collection: UUID, named name: String, readRule: AccessRule, actor: Actor,
        operation: String, entries: [(record: UUID, fields: [String])]
    ) -> PostgresQuery {
        var builder = SQLBuilder()
        let fields: String
        let match: String
        if entries.count == 1 {
            fields = "\(builder.bind(entries[0].fields))::text[]"
            match = "r.record_id = \(builder.bind(entries[0].record))"
        } else {
            let map = JSONValue.object(JSONObject(entries.map { ($0.record.lowercasedString, .array($0.fields.map(JSONValue.string))) }))
            fields = "ARRAY(SELECT jsonb_array_elements_text(\(builder.bind(JSONSerializer.text(map)))::jsonb -> r.record_id::text))"
            match = "r.record_id = ANY(\(builder.bind(entries.map(\.record.lowercasedString)))::uuid[])"
        }
        let sql = """
            INSERT INTO atrium.record_changes (tenant_id, collection_id, collection_name, record_id, operation, version, actor_id, actor_kind,
                created_at, created_by, created_by_kind, updated_at, read_role, read_own, fields, data)
            SELECT r.tenant_id, r.collection_id, \(builder.bind(name)), r.record_id, \(builder.bind(operation)), r.version,
                \(builder.bind(actor.id)), \(builder.bind(actor.kind)), r.created_at, r.created_by, r.created_by_kind, r.updated_at,
                \(builder.bind(readRule.role.rawValue)), \(builder.bind(readRule.own)), \(fields), r.data
            FROM atrium.records r
            WHERE r.tenant_id = \(builder.bind(tenant)) AND r.collection_id = \(builder.bind(collection)) AND \(match)
            """
        builder.sql = sql
        return builder.query
    }

    /// A record deleted by this transaction, as it was.
    static func appendDeletion(
        of record: StoredRecord, tenant: UUID, collection: UUID, named name: String, readRule: AccessRule, actor: Actor
    ) -> PostgresQuery {
        """
        INSERT INTO atrium.record_changes (tenant_id, collection_id, collection_name, record_id, operation, version, actor_id, actor_kind,
            created_at, created_by, created_by_kind, updated_at, read_role, read_own, fields, data)
        VALUES (\(tenant), \(collection), \(name), \(record.id), 'delete', \(record.version), \(actor.id), \(actor.kind),
            \(record.createdAt), \(record.createdBy.id), \(record.createdBy.kind), \(record.updatedAt),
            \(readRule.role.rawValue), \(readRule.own), \(record.data.keys)::text[], NULL)
        """
    }

    /// Every record of a collection about to be deleted with it.
    static func appendDeletions(ofCollection collection: StoredCollection, tenant: UUID, actor: Actor) -> PostgresQuery {
        let rule = collection.definition.rules.read
        return """
            INSERT INTO atrium.record_changes (tenant_id, collection_id, collection_name, record_id, operation, version, actor_id, actor_kind,
                created_at, created_by, created_by_kind, updated_at, read_role, read_own, fields, data)
            SELECT r.tenant_id, r.collection_id, \(collection.name), r.record_id, 'delete', r.version, \(actor.id), \(actor.kind),
                r.created_at, r.created_by, r.created_by_kind, r.updated_at, \(rule.role.rawValue), \(rule.own),
                ARRAY(SELECT jsonb_object_keys(r.data)), NULL
            FROM atrium.records r WHERE r.tenant_id = \(tenant) AND r.collection_id = \(collection.id)
            ORDER BY r.record_id
            """
    }
}

extension JSONValue {
    /// The names of the fields an audit diff (`RecordChanges.diff`) says changed.
    var changedFields: [String] {
        if case .object(let object) = self { return object.keys }
        return []
    }
}
