import HTTPTypes
import Hummingbird
import Logging

extension HTTPField.Name {
    static let requestID = HTTPField.Name("X-Request-ID")!
}

/// Gives every request an id, puts it in the logger's metadata and on every response.
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = AtriumRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if let incoming = request.headers[.requestID], RequestIdentifier.isWellFormed(Substring(incoming)) {
            context.requestID = incoming
            context.logger[metadataKey: RequestIdentifier.metadataKey] = .string(incoming)
        }
        var response = try await next(request, context)
        response.headers[.requestID] = context.requestID
        return response
    }
}
