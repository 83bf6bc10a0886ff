import AtriumText
import HTTPTypes
import Hummingbird

/// Behind `hops` trusted proxies, the client is the address the outermost of them saw: the
/// `hops`-th entry from the right of `X-Forwarded-For`. Entries further left are whatever the
/// client claimed and are ignored.
struct ClientAddressMiddleware: RouterMiddleware {
    typealias Context = AtriumRequestContext
    let hops: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.userAgent = request.headers[.userAgent]
        if self.hops > 0 {
            let entries = request.headers[values: .init("X-Forwarded-For")!].flatMap { HTTPList.elements($0) }
            if entries.count >= self.hops {
                let candidate = String(entries[entries.count - self.hops])
                if candidate.utf8.count <= 64, candidate.allSatisfy({ $0.isHexDigit || $0 == "." || $0 == ":" }) {
                    context.clientAddress = candidate
                }
            }
        }
        return try await next(request, context)
    }
}
