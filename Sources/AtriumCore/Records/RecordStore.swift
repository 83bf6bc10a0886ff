import AtriumCrypto
import AtriumText
import Foundation
import PostgresPool

/// Every statement that writes records and what goes with them: the typed values lists filter
/// on, the unique keys, the audit log. Creating, changing and deleting records, and changing a
/// collection's fields (which rewrites its records, see `migrateRecords`), all write through
/// it; nothing else writes these tables.
public struct RecordStore: Sendable {
    public init() {}

    /// Inserts `rows` (`[{"id", "data"}]`), returning `StoredRecord.columns`.
    static func insert(_ rows: JSONValue, tenant: UUID, collection: UUID, actor: Actor) -> PostgresQuery {
        """
        INSERT INTO atrium.records (tenant_id, collection_id, record_id, data, created_by, created_by_kind, updated_by, updated_by_kind)
        SELECT \(tenant), \(collection), r.id, r.data, \(actor.id), \(actor.kind), \(actor.id), \(actor.kind)
        FROM jsonb_to_recordset(\(JSONSerializer.text(rows))::jsonb) AS r(id uuid, data jsonb)
        RETURNING \(unescaped: StoredRecord.columns)
        """
    }

    /// Replaces one record's data and moves it to the next version, returning `StoredRecord.columns`.
    static func update(_ record: UUID, data: JSONObject, tenant: UUID, collection: UUID, actor: Actor) -> PostgresQuery {
        """
        UPDATE atrium.records SET data = \(JSONSerializer.text(.object(data)))::jsonb, version = version + 1, updated_at = now(),
            updated_by = \(actor.id), updated_by_kind = \(actor.kind)
        WHERE tenant_id = \(tenant) AND collection_id = \(collection) AND record_id = \(record)
        RETURNING \(unescaped: StoredRecord.columns)
        """
    }

    /// The same for many records at once (`[{"id", "data"}]`), returning nothing.
    static func update(_ rows: JSONValue, tenant: UUID, collection: UUID, actor: Actor) -> PostgresQuery {
        """
        UPDATE atrium.records r SET data = u.data, version = r.version + 1, updated_at = now(),
            updated_by = \(actor.id), updated_by_kind = \(actor.kind)
        FROM jsonb_to_recordset(\(JSONSerializer.text(rows))::jsonb) AS u(id uuid, data jsonb)
        WHERE r.tenant_id = \(tenant) AND r.collection_id = \(collection) AND r.record_id = u.id
        """
    }

    /// Deletes one record; its values and unique keys go with it (foreign keys cascade).
    static func delete(_ record: UUID, tenant: UUID, collection: UUID) -> PostgresQuery {
        "DELETE FROM atrium.records WHERE tenant_id = \(tenant) AND collection_id = \(collection) AND record_id = \(record)"
    }

    // The INSERT … SELECTs below end in `RETURNING 1`, whose rows nobody reads: without it Citus
    // runs an INSERT … SELECT from a function (jsonb_to_recordset) as a COPY into the shards,
    // which row-level security refuses ("COPY FROM not supported with row-level security").

    /// Typed values rows as `RecordIndexing.rows` makes them.
    static func insertValues(tenant: UUID, collection: UUID, rows: JSONValue) -> PostgresQuery {
        """
        INSERT INTO atrium.record_values (tenant_id, collection_id, record_id, field, position, text_value, num_value, time_value)
        SELECT \(tenant), \(collection), v.record_id, v.field, v.position, v.text_value, v.num_value, v.time_value
        FROM jsonb_to_recordset(\(JSONSerializer.text(rows))::jsonb)
            AS v(record_id uuid, field text, position integer, text_value text, num_value numeric, time_value timestamptz)
        RETURNING 1
        """
    }

    /// The typed values of some fields of one record.
    static func deleteValues(tenant: UUID, collection: UUID, record: UUID, fields: [String]) -> PostgresQuery {
        """
        DELETE FROM atrium.record_values
        WHERE tenant_id = \(tenant) AND collection_id = \(collection) AND record_id = \(record) AND field = ANY(\(fields)::text[])
        """
    }

    /// The typed values of every record of the collection.
    static func deleteValues(tenant: UUID, collection: UUID) -> PostgresQuery {
        "DELETE FROM atrium.record_values WHERE tenant_id = \(tenant) AND collection_id = \(collection)"
    }

    /// One statement per unique field, so a violation names its field (by statement index).
    static func insertUnique(tenant: UUID, collection: UUID, field: String, keys: [(record: UUID, key: String)]) -> PostgresQuery {
        let rows = JSONValue.array(keys.map {
            .object(JSONObject([("record_id", .string($0.record.lowercasedString)), ("value_key", .string($0.key))]))
        })
        return "SELECT atrium.claim_unique_values(\(tenant), \(collection), \(field), \(JSONSerializer.text(rows))::jsonb)"
    }

    /// Unique keys of many fields at once (`[{"record_id", "field", "value_key"}]`), for keys
    /// already known to be distinct.
    static func insertUniques(tenant: UUID, collection: UUID, rows: JSONValue) -> PostgresQuery {
        """
        INSERT INTO atrium.record_unique_values (tenant_id, collection_id, field, value_key, record_id)
        SELECT \(tenant), \(collection), u.field, u.value_key, u.record_id
        FROM jsonb_to_recordset(\(JSONSerializer.text(rows))::jsonb) AS u(record_id uuid, field text, value_key text)
        RETURNING 1
        """
    }

    /// The unique keys of one record.
    static func deleteUniques(tenant: UUID, collection: UUID, record: UUID) -> PostgresQuery {
        "DELETE FROM atrium.record_unique_values WHERE tenant_id = \(tenant) AND collection_id = \(collection) AND record_id = \(record)"
    }

    /// The unique keys of every record of the collection.
    static func deleteUniques(tenant: UUID, collection: UUID) -> PostgresQuery {
        "DELETE FROM atrium.record_unique_values WHERE tenant_id = \(tenant) AND collection_id = \(collection)"
    }

    /// One audit entry per record, under the collection's name as it is after the write.
    static func audit(
        tenant: UUID, collection: UUID, named name: String, actor: Actor, origin: RequestOrigin,
        operation: String, entries: [(record: UUID, changes: JSONValue)]
    ) -> PostgresQuery {
        // Time-ordered ids, as records': the audit table's key grows at one end.
        let rows = JSONValue.array(entries.map {
            .object(JSONObject([
                ("audit_id", .string(SecureRandom.uuidV7().lowercasedString)), ("record_id", .string($0.record.lowercasedString)), ("changes", $0.changes),
            ]))
        })
        return """
            INSERT INTO atrium.record_audit (tenant_id, audit_id, actor_id, actor_kind, request_id, collection_id, collection_name, record_id, operation, changes)
            SELECT \(tenant), a.audit_id, \(actor.id), \(actor.kind), \(origin.requestID), \(collection), \(name), a.record_id, \(operation), a.changes
            FROM jsonb_to_recordset(\(JSONSerializer.text(rows))::jsonb) AS a(audit_id uuid, record_id uuid, changes jsonb)
            RETURNING 1
            """
    }

    /// Fails the transaction (AT004) unless the record is still at the version an update was
    /// worked out from, and locks it until commit.
    static func recordGuard(_ record: UUID, version: Int64, collection: UUID) -> PostgresQuery {
        "SELECT atrium.require_record_version(\(collection), \(record), \(version))"
    }

    /// Fails the transaction unless the collection is still at the version the write was checked against.
    static func versionGuard(_ collection: StoredCollection) -> PostgresQuery {
        "SELECT atrium.require_collection_version(\(collection.id), \(collection.version))"
    }
}
