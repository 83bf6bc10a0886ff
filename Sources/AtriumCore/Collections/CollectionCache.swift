public import Foundation
import Synchronization

/// Collection definitions by tenant and name, so a record request does not read its
/// collection's definition from the database every time. Entries are dropped on NOTIFY
/// `atrium_collections`; writes also check the cached version in their own transaction, so a
/// stale entry can never let a record in under an old schema.
public final class CollectionCache: Sendable {
    struct Key: Hashable {
        let tenant: UUID
        let name: String
    }

    private let entries = Mutex<[Key: StoredCollection]>([:])
    let capacity: Int

    public init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    func get(tenant: UUID, name: String) -> StoredCollection? {
        self.entries.withLock { $0[Key(tenant: tenant, name: name)] }
    }

    func put(_ collection: StoredCollection) {
        self.entries.withLock { entries in
            if entries.count >= self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[Key(tenant: collection.tenantID, name: collection.name)] = collection
        }
    }

    public func remove(tenant: UUID, name: String) {
        _ = self.entries.withLock { $0.removeValue(forKey: Key(tenant: tenant, name: name)) }
    }

    public func removeAll() {
        self.entries.withLock { $0.removeAll() }
    }
}
