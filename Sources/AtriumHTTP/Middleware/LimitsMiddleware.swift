import AtriumCore
import HTTPTypes
import Hummingbird
import Logging
import PostgresPool

/// The per-request limits: a body announced larger than the limit is refused before a byte of
/// it is read (a chunked body is cut off while reading, in `JSONBody`), and a handler that runs
/// past the request timeout has its database work given up and is answered 503.
struct LimitsMiddleware: RouterMiddleware {
    typealias Context = AtriumRequestContext
    let limits: ServerConfiguration.Limits

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.maximumBodySize = self.limits.maximumBodySize
        if let length = request.headers[.contentLength], let size = Int(length), size > self.limits.maximumBodySize {
            throw Problem(
                .contentTooLarge,
                detail: "the body of \(size) bytes is larger than the limit of \(self.limits.maximumBodySize) bytes",
                headers: [.connection: "close"]
            )
        }
        let timeout = self.limits.requestTimeout
        // The handler runs in this task, the one reading the connection: cancelling the task
        // would end the connection too, so the deadline gives up the handler's database work
        // instead, which is what a handler waits on.
        let deadline = QueryDeadline(ContinuousClock.now + timeout)
        do {
            return try await QueryDeadline.$current.withValue(deadline) { try await next(request, context) }
        } catch where deadline.hasFired {
            // A handler that completes is answered even when the deadline passed meanwhile (a
            // committed write is answered as committed); one that fails after it gave up is 503.
            context.logger.warning("request timed out", metadata: ["timeout": "\(timeout)"])
            throw Problem(.unavailable, detail: "the request took longer than \(timeout)", reason: "request_timeout", headers: [.retryAfter: "1"])
        }
    }
}
