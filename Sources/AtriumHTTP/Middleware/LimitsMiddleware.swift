import AtriumCore
import HTTPTypes
import Hummingbird
import Logging

/// The per-request limits: a body announced larger than the limit is refused before a byte of
/// it is read (a chunked body is cut off while reading, in `JSONBody`), and a handler that runs
/// past the request timeout is cancelled — its database work with it — and answered 503.
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
        let deadline = ContinuousClock.now + timeout
        // The handler runs in a child task so the deadline can cancel it without cancelling the
        // connection; the task ends before this function returns, so `next` does not outlive it.
        let outcome = try await withoutActuallyEscaping(next) { next in
            let handler = UncheckedSendable(next)
            let context = context
            return try await DeadlineTicker.shared.run(until: deadline) { try await handler.value(request, context) }
        }
        guard case .finished(let response) = outcome else {
            context.logger.warning("request timed out", metadata: ["timeout": "\(timeout)"])
            throw Problem(.unavailable, detail: "the request took longer than \(timeout)", reason: "request_timeout", headers: [.retryAfter: "1"])
        }
        return response
    }
}

/// Carries a value the compiler cannot prove sendable across a boundary known to be safe.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
