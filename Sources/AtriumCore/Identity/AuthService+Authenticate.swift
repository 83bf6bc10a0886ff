import AtriumCrypto
import Foundation
import PostgresPool

extension AuthService {
    /// The principal behind a bearer credential: an API key (`atk_…`, checked against its
    /// stored hash on every request, so revocation is immediate) or an access token (checked
    /// in memory: signature, claims, revocation set).
    public func authenticate(bearer: String) async throws -> Principal {
        if bearer.hasPrefix(SecretPrefix.apiKey) {
            guard bearer.utf8.count < 200 else { throw AtriumError.unauthenticated }
            let rows = try await self.database.unscopedTransaction(["SELECT tenant_id, key_id, role FROM atrium.auth_api_key(\(RandomToken.digest(bearer)))"])[0]
            guard let row = rows.single else { throw AtriumError(.unauthenticated, "the API key is not valid") }
            let (tenant, key, role) = try row.decode((UUID, UUID, String).self)
            return Principal(tenant: TenantContext(tenantID: tenant), role: Role(rawValue: role) ?? .viewer, credential: .apiKey(keyID: key))
        }
        switch self.accessTokens.verify(bearer) {
        case .success(let principal):
            return principal
        case .failure(let rejection):
            throw AtriumError(.unauthenticated, rejection == .expired ? "the access token has expired" : "the access token is not valid", reason: rejection.rawValue)
        }
    }
}
