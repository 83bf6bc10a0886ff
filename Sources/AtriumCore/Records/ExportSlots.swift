import Foundation
import Synchronization

/// How many exports may run at once. Each holds a PostgreSQL connection of its own (its
/// snapshot) for as long as its client takes to read it.
public struct ExportLimits: Sendable {
    /// Exports of one tenant at a time.
    public var perTenant: Int
    /// Exports at a time in all.
    public var total: Int

    public init(perTenant: Int = 1, total: Int = 4) {
        self.perTenant = max(1, perTenant)
        self.total = max(1, total)
    }
}

/// Counts running exports against `ExportLimits`.
final class ExportSlots: Sendable {
    let limits: ExportLimits
    private let running = Mutex<(total: Int, byTenant: [UUID: Int])>((0, [:]))

    init(limits: ExportLimits) {
        self.limits = limits
    }

    /// Takes a slot for `tenant`: `throttled` while the tenant has its share running, `overloaded` when all are.
    func reserve(for tenant: UUID) throws {
        let outcome = self.running.withLock { running -> AtriumError? in
            if running.byTenant[tenant, default: 0] >= self.limits.perTenant {
                return AtriumError(.throttled, "an export of this tenant is already running; retry when it has finished", reason: "export_running", retryAfter: 10)
            }
            if running.total >= self.limits.total {
                return AtriumError(.overloaded, "too many exports are running; retry shortly", retryAfter: 10)
            }
            running.total += 1
            running.byTenant[tenant, default: 0] += 1
            return nil
        }
        if let outcome { throw outcome }
    }

    func release(for tenant: UUID) {
        self.running.withLock { running in
            running.total -= 1
            let remaining = running.byTenant[tenant, default: 1] - 1
            running.byTenant[tenant] = remaining > 0 ? remaining : nil
        }
    }
}
