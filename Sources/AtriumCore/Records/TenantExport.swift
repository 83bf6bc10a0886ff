import Foundation
import PostgresPool
import Synchronization

/// A tenant's collections and records, read page by page from one snapshot of the database.
///
/// The first reads happen before it is handed out (`RecordService.beginExport`), so a client is
/// told about an unreachable or exhausted database before the export starts. Between pages no
/// pooled connection is held: a client that stops reading costs the snapshot's own connection
/// and an export slot, until `close()`. Use it from one task.
public final class TenantExport: @unchecked Sendable {
    /// What the export holds, in order.
    public enum Item: Sendable {
        case tenant(Tenant)
        case collection(StoredCollection)
        /// Up to `pageSize` records of the collection named, in id order.
        case records(collection: String, [StoredRecord])
        /// The last item: everything was read.
        case end(collections: Int, records: Int)
    }

    static let pageSize = 500

    public let tenant: TenantContext
    private let snapshot: DatabaseSnapshot
    private let release: @Sendable () -> Void
    private var header: Item?
    private var collections: [StoredCollection]
    private var current = 0
    private var announced = false
    private var lastRecord: UUID?
    private var finished = false
    private let closed = Atomic(false)
    /// Records handed out so far.
    public private(set) var records = 0

    init(tenant: TenantContext, snapshot: DatabaseSnapshot, header: Tenant, collections: [StoredCollection], release: @escaping @Sendable () -> Void) {
        self.tenant = tenant
        self.snapshot = snapshot
        self.header = .tenant(header)
        self.collections = collections
        self.release = release
    }

    /// The next item, or nil after `.end`. A failure (the database gone, the snapshot lost)
    /// ends the export: it is incomplete, and must be reported as such.
    public func next() async throws -> Item? {
        if let header {
            self.header = nil
            return header
        }
        while !self.finished {
            guard self.current < self.collections.count else {
                self.finished = true
                self.close()
                return .end(collections: self.collections.count, records: self.records)
            }
            let collection = self.collections[self.current]
            if !self.announced {
                self.announced = true
                return .collection(collection)
            }
            let rows = try await self.snapshot.read(in: self.tenant, [
                RecordStore.page(tenant: self.tenant.tenantID, collection: collection.id, after: self.lastRecord, limit: Self.pageSize),
            ])[0]
            guard !rows.isEmpty else {
                self.current += 1
                self.announced = false
                self.lastRecord = nil
                continue
            }
            let page = try rows.map { try StoredRecord(row: $0) }
            self.lastRecord = page.last?.id
            self.records += page.count
            return .records(collection: collection.name, page)
        }
        return nil
    }

    /// Ends the snapshot and frees the export's slot; safe to call more than once.
    public func close() {
        guard !self.closed.exchange(true, ordering: .relaxed) else { return }
        self.snapshot.close()
        self.release()
    }

    deinit {
        self.close()
    }
}

extension RecordService {
    /// Starts an export of the principal's tenant (admin or above): takes an export slot, opens
    /// the snapshot and reads the tenant and its collections, all before returning — so the
    /// caller can still answer with an error. Close the export when done, whatever happens.
    public func beginExport(_ principal: Principal) async throws -> TenantExport {
        try principal.require(.admin)
        let tenant = principal.tenant
        try self.exportSlots.reserve(for: tenant.tenantID)
        let slots = self.exportSlots
        var snapshot: DatabaseSnapshot?
        do {
            snapshot = try await self.database.reading { try await $0.exportSnapshot() }
            let results = try await snapshot!.read(in: tenant, [
                "SELECT tenant_id, name, slug, require_verified_email, created_at, updated_at FROM atrium.tenants WHERE tenant_id = \(tenant.tenantID)",
                "SELECT collection_id, version, definition, created_at, updated_at FROM atrium.collections WHERE tenant_id = \(tenant.tenantID) ORDER BY name",
            ])
            guard let row = results[0].single else { throw AtriumError.notFound("tenant") }
            let collections = try results[1].map { try CollectionService.collection($0, tenant: tenant.tenantID) }
            return TenantExport(
                tenant: tenant, snapshot: snapshot!, header: try AuthService.tenantRecord(row),
                collections: collections, release: { slots.release(for: tenant.tenantID) }
            )
        } catch {
            snapshot?.close()
            slots.release(for: tenant.tenantID)
            throw error
        }
    }
}
