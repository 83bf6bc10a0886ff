import Foundation
import PostgresPool

extension RecordStore {
    /// One record as stored (`RecordText.columns`): $1 tenant, $2 collection, $3 record, $4
    /// the creator it must have (NULL for any). The busiest statement: its text is fixed, so it
    /// is not rebuilt (nor rehashed into a new string) per request, and it leaves out the id
    /// the caller already has.
    static let readText = """
        SELECT \(RecordText.columns) FROM atrium.records
        WHERE tenant_id = $1 AND collection_id = $2 AND record_id = $3 AND ($4::uuid IS NULL OR created_by = $4)
        """

    /// One record (`StoredRecord.columns`), `locked` for the rest of the transaction.
    static func record(_ record: UUID, tenant: UUID, collection: UUID, locked: Bool) -> PostgresQuery {
        """
        SELECT \(unescaped: StoredRecord.columns) FROM atrium.records
        WHERE tenant_id = \(tenant) AND collection_id = \(collection) AND record_id = \(record)\(unescaped: locked ? " FOR UPDATE" : "")
        """
    }

    /// Up to `limit` records (`StoredRecord.columns`) of a collection in id order, after the id
    /// `after` (from the start when nil): how exports and field changes walk a collection.
    static func page(tenant: UUID, collection: UUID, after: UUID?, limit: Int) -> PostgresQuery {
        """
        SELECT \(unescaped: StoredRecord.columns) FROM atrium.records
        WHERE tenant_id = \(tenant) AND collection_id = \(collection) AND (\(after)::uuid IS NULL OR record_id > \(after))
        ORDER BY record_id LIMIT \(limit)
        """
    }

    /// The records (`collection`, `record_id`) whose reference fields point at `record`.
    static func referrers(of record: UUID, collection name: String) -> PostgresQuery {
        "SELECT collection, record_id FROM atrium.record_referrers(\(name), \(record))"
    }
}
