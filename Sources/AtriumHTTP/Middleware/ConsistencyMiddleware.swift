import AtriumCore
import HTTPTypes
import Hummingbird

extension HTTPField.Name {
    static let atriumConsistency = HTTPField.Name("Atrium-Consistency")!
}

/// Read-your-writes over read replicas. A write that succeeded answers with
/// `Atrium-Consistency`: the primary's WAL position after it, read once the handler is done, so
/// every commit of the request is behind it. A read may send the token back; it is then served
/// by a replica that has replayed that far, or by the primary. A read without one may be served
/// by any replica within the lag bound. Without replicas every read is the primary's and writes
/// carry no token, but a malformed token is refused all the same: a client learns of its bug in
/// development, not when replicas are added.
struct ConsistencyMiddleware: RouterMiddleware {
    typealias Context = AtriumRequestContext
    let database: Database

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // Tenant data is read and written only with a credential; without one the route answers
        // (401, or a public route that touches no replica-served data).
        guard context.principal != nil else { return try await next(request, context) }
        guard self.database.replicas != nil else {
            if let token = request.headers[.atriumConsistency], WALPosition(token) == nil { throw Self.malformed }
            return try await next(request, context)
        }
        switch request.method {
        case .get, .head:
            var consistency = ReadConsistency.anyReplica
            if let token = request.headers[.atriumConsistency] {
                guard let position = WALPosition(token) else { throw Self.malformed }
                consistency = .atLeast(position)
            }
            return try await ReadConsistency.$current.withValue(consistency) {
                try await next(request, context)
            }
        default:
            var response = try await next(request, context)
            // The position is read after the commits; if the primary cannot say (it just went
            // away), the answer goes without a token rather than failing a committed write.
            if (200..<300).contains(response.status.code), let position = try? await self.database.currentWALPosition() {
                response.headers[.atriumConsistency] = position.description
            }
            return response
        }
    }

    static let malformed = Problem(.badRequest, detail: "Atrium-Consistency must be a token a write returned, such as 0/16B3748")
}
