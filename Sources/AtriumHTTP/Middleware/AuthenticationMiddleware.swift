import AtriumCore
import Foundation
import Logging
import HTTPTypes
import Hummingbird

/// Establishes the principal from `Authorization: Bearer …`. A request without the header
/// goes on unauthenticated (routes that need a principal answer 401); a malformed or invalid
/// credential is refused here with 401, without touching the database for access tokens.
///
/// Every failed credential costs its address a token of the anonymous rate limit, and an
/// address whose bucket is empty is refused (429) before its credential is checked: an API key
/// costs a database query to check, so guessing keys must not be free.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = AtriumRequestContext
    let auth: AuthService
    let limiter: RateLimiter

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            return try await next(request, context)
        }
        try self.limiter.admitCredential(from: context.clientAddress)
        let principal: Principal
        do {
            guard let token = Self.bearerToken(header) else {
                throw AtriumError(.unauthenticated, "the Authorization header must be \"Bearer <token>\"")
            }
            principal = try await self.auth.authenticate(bearer: token)
        } catch let error as AtriumError where error.code == .unauthenticated {
            self.limiter.chargeFailure(from: context.clientAddress)
            throw error
        }
        var context = context
        context.principal = principal
        context.outcome.principal = principal
        return try await next(request, context)
    }

    /// The token of `Bearer <token>` (scheme in any case, spaces between), or nil. Byte-wise:
    /// this runs on every authenticated request.
    static func bearerToken(_ header: String) -> String? {
        let bytes = header.utf8
        let scheme = "bearer".utf8
        guard bytes.count > scheme.count, zip(bytes, scheme).allSatisfy({ $0 | 0x20 == $1 }) else { return nil }
        let rest = bytes.dropFirst(scheme.count)
        guard rest.first == UInt8(ascii: " ") else { return nil }
        let token = rest.drop { $0 == UInt8(ascii: " ") }
        guard !token.isEmpty else { return nil }
        return String(Substring(token))
    }
}
