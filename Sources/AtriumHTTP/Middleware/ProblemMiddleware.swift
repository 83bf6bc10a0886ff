import AtriumCore
import HTTPTypes
import Hummingbird
import Logging
import PostgresPool

/// Turns every error into a problem document. This is the one place errors become statuses:
/// anything not mapped here is a 500 whose body says nothing internal and whose log line says all.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = AtriumRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let problem = Self.problem(for: error, context: context)
            return try problem.response(requestID: context.requestID)
        }
    }

    static func problem(for error: any Error, context: Context) -> Problem {
        switch error {
        case let problem as Problem:
            return problem
        case let error as HTTPError where error.status == .notFound:
            return Problem(.notFound, detail: "no route matches this path")
        case let error as PostgresError where error.code == .acquireTimeout:
            context.logger.warning("database pool exhausted", metadata: ["error": "\(error.message)"])
            return Problem(.unavailable, detail: "the service is busy; retry shortly", headers: [.retryAfter: "1"])
        default:
            context.logger.error("unhandled error", metadata: ["error": "\(String(reflecting: error))"])
            return Problem(.internalError, detail: "an unexpected error occurred; quote the request id when reporting it")
        }
    }
}
