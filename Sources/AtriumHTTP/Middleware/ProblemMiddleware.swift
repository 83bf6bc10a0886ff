import AtriumCore
import AtriumText
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Turns every error into a problem document. This is the one place errors become statuses:
/// anything not mapped here is a 500 whose body says nothing internal and whose log line says all.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = AtriumRequestContext
    let routes: RouteTableReference

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // Unknown paths and methods are answered before anything else (authentication, limits):
        // a 404 or 405 does not depend on who asks. The router names the endpoint of a request
        // it matched (path and method) before this runs, so only the others are looked up.
        if context.endpointPath == nil {
            guard let allowed = self.routes.allowedMethods(for: request.uri.path) else {
                return Problem(.notFound, detail: "no route matches this path").response(requestID: context.requestID)
            }
            guard allowed.contains(request.method) else {
                let allow = allowed.map(\.rawValue).joined(separator: ", ")
                return Problem(.methodNotAllowed, detail: "\(request.method.rawValue) is not allowed here; use \(allow)", headers: [.allow: allow])
                    .response(requestID: context.requestID)
            }
        }
        do {
            return try await next(request, context)
        } catch {
            let problem = Self.problem(for: error, context: context)
            return problem.response(requestID: context.requestID)
        }
    }

    /// Domain errors to problems: the one place their HTTP statuses are decided.
    static func problem(for error: AtriumError) -> Problem {
        let fields = error.fields.isEmpty ? nil : error.fields.map { Problem.FieldError(field: $0.field, reason: $0.reason) }
        let retryAfter: HTTPFields = error.retryAfter.map { [.retryAfter: String(max(1, $0))] } ?? [:]
        switch error.code {
        case .unauthenticated:
            return Problem(.unauthenticated, detail: error.message, headers: [.wwwAuthenticate: "Bearer"])
        case .invalidCredentials:
            var problem = Problem(.invalidCredentials, detail: error.message, reason: error.reason, errors: fields, headers: [.wwwAuthenticate: "Bearer"])
            problem.extensions = error.extensions
            return problem
        case .forbidden:
            return Problem(.forbidden, detail: error.message, reason: error.reason)
        case .notFound:
            return Problem(.notFound, detail: error.message)
        case .conflict:
            return Problem(.conflict, detail: error.message, reason: error.reason)
        case .validation:
            return Problem(.validation, detail: error.message, errors: fields)
        case .throttled:
            return Problem(.throttled, detail: error.message, reason: error.reason, headers: retryAfter)
        case .overloaded:
            return Problem(.overloaded, detail: error.message, reason: error.reason, headers: retryAfter)
        case .unavailable:
            return Problem(.unavailable, detail: error.message, reason: error.reason, headers: retryAfter)
        case .preconditionFailed:
            return Problem(.preconditionFailed, detail: error.message)
        case .gone:
            return Problem(.gone, detail: error.message, reason: error.reason)
        case .badRequest:
            return Problem(.badRequest, detail: error.message, errors: fields)
        default:
            return Problem(.internalError, detail: "an unexpected error occurred")
        }
    }

    static func problem(for error: any Error, context: Context) -> Problem {
        switch error {
        case let problem as Problem:
            return problem
        case let error as AtriumError where error.code == .unavailable:
            context.logger.warning("unavailable", metadata: ["error": "\(error.cause ?? error.message)"])
            return Self.problem(for: error)
        case let error as AtriumError:
            return Self.problem(for: error)
        case let error as any HTTPResponseError where error.status == .contentTooLarge:
            return Problem(.contentTooLarge, detail: "the body is larger than the limit of \(context.maximumBodySize) bytes", headers: [.connection: "close"])
        case let error as HTTPError where error.status == .notFound:
            return Problem(.notFound, detail: "no route matches this path")
        default:
            var metadata: Logger.Metadata = ["error": "\(String(reflecting: error))"]
            if let principal = context.principal {
                metadata["tenant.id"] = .string(principal.tenant.tenantID.lowercasedString)
            }
            context.logger.error("unhandled error", metadata: metadata)
            return Problem(.internalError, detail: "an unexpected error occurred; quote the request id when reporting it")
        }
    }
}
