import AtriumText
import Foundation
import PostgresPool

/// SQL for writing records and what goes with them (typed values, unique keys, audit).
enum RecordWrites {
    static func insertValues(tenant: UUID, collection: UUID, rows: JSONValue) -> PostgresQuery {
        """
        INSERT INTO atrium.record_values (tenant_id, collection_id, record_id, field, position, text_value, num_value, time_value)
        SELECT \(tenant), \(collection), v.record_id, v.field, v.position, v.text_value, v.num_value, v.time_value
        FROM jsonb_to_recordset(\(JSONSerializer.text(rows))::jsonb)
            AS v(record_id uuid, field text, position integer, text_value text, num_value numeric, time_value timestamptz)
        """
    }

    /// One statement per unique field, so a violation names its field (by statement index).
    static func insertUnique(tenant: UUID, collection: UUID, field: String, keys: [(record: UUID, key: String)]) -> PostgresQuery {
        let rows = JSONValue.array(keys.map {
            .object(JSONObject([("record_id", .string($0.record.lowercasedString)), ("value_key", .string($0.key))]))
        })
        return "SELECT atrium.claim_unique_values(\(tenant), \(collection), \(field), \(JSONSerializer.text(rows))::jsonb)"
    }

    static func audit(
        tenant: UUID, collection: StoredCollection, actor: Actor, origin: RequestOrigin,
        operation: String, entries: [(record: UUID, changes: JSONValue)]
    ) -> PostgresQuery {
        let rows = JSONValue.array(entries.map {
            .object(JSONObject([("record_id", .string($0.record.lowercasedString)), ("changes", $0.changes)]))
        })
        return """
            INSERT INTO atrium.record_audit (tenant_id, audit_id, actor_id, actor_kind, request_id, collection_id, collection_name, record_id, operation, changes)
            SELECT \(tenant), gen_random_uuid(), \(actor.id), \(actor.kind), \(origin.requestID), \(collection.id), \(collection.name), a.record_id, \(operation), a.changes
            FROM jsonb_to_recordset(\(JSONSerializer.text(rows))::jsonb) AS a(record_id uuid, changes jsonb)
            """
    }

    static func versionGuard(_ collection: StoredCollection) -> PostgresQuery {
        "SELECT atrium.require_collection_version(\(collection.id), \(collection.version))"
    }
}
