import AtriumCore
import Foundation
import Logging
import HTTPTypes
import Hummingbird

/// Establishes the principal from `Authorization: Bearer …`. A request without the header
/// goes on unauthenticated (routes that need a principal answer 401); a malformed or invalid
/// credential is refused here with 401, without touching the database for access tokens.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = AtriumRequestContext
    let auth: AuthService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            return try await next(request, context)
        }
        guard let token = Self.bearerToken(header) else {
            throw AtriumError(.unauthenticated, "the Authorization header must be \"Bearer <token>\"")
        }
        var context = context
        let principal = try await self.auth.authenticate(bearer: token)
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
