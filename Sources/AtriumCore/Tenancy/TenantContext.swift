#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// The tenant a piece of work belongs to. Every tenant-scoped store method takes one; there is
/// no way to reach tenant data without it, and PostgreSQL checks the same tenant again through
/// row-level security.
public struct TenantContext: Sendable, Hashable {
    public let tenantID: UUID

    public init(tenantID: UUID) {
        self.tenantID = tenantID
    }
}
