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
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw AtriumError(.unauthenticated, "the Authorization header must be \"Bearer <token>\"")
        }
        var context = context
        let principal = try await self.auth.authenticate(bearer: String(parts[1]))
        context.principal = principal
        context.outcome.principal = principal
        return try await next(request, context)
    }
}
