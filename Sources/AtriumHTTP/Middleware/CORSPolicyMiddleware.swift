import HTTPTypes
import Hummingbird

extension HTTPField.Name {
    static let accessControlAllowOrigin = HTTPField.Name("Access-Control-Allow-Origin")!
    static let accessControlAllowCredentials = HTTPField.Name("Access-Control-Allow-Credentials")!
    static let accessControlAllowMethods = HTTPField.Name("Access-Control-Allow-Methods")!
    static let accessControlAllowHeaders = HTTPField.Name("Access-Control-Allow-Headers")!
    static let accessControlExposeHeaders = HTTPField.Name("Access-Control-Expose-Headers")!
    static let accessControlMaxAge = HTTPField.Name("Access-Control-Max-Age")!
    static let accessControlRequestMethod = HTTPField.Name("Access-Control-Request-Method")!
    static let vary = HTTPField.Name("Vary")!
}

/// Cross-origin access for browsers. Preflights are answered here, before authentication (a
/// browser never sends credentials on them). Origins are compared exactly; `*` allows any
/// origin and is refused together with credentials when the server starts.
struct CORSPolicyMiddleware: RouterMiddleware {
    typealias Context = AtriumRequestContext
    let policy: CORSPolicy
    let allowsAny: Bool
    let origins: Set<String>

    static let allowedMethods = "GET, POST, PUT, PATCH, DELETE"
    static let allowedHeaders = "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, X-Request-ID, Atrium-Consistency"
    static let exposedHeaders = "ETag, Location, X-Request-ID, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Idempotent-Replayed, Atrium-Consistency"

    init(policy: CORSPolicy) {
        self.policy = policy
        self.allowsAny = policy.allowedOrigins.contains("*")
        self.origins = Set(policy.allowedOrigins.filter { $0 != "*" })
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin] else {
            return try await next(request, context)
        }
        let allowed = self.allowsAny || self.origins.contains(origin)
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            guard allowed else {
                return Problem(.forbidden, detail: "the origin \(origin) may not call this API", reason: "origin_not_allowed")
                    .response(requestID: context.requestID)
            }
            var headers = self.headers(origin: origin)
            headers[.accessControlAllowMethods] = Self.allowedMethods
            headers[.accessControlAllowHeaders] = Self.allowedHeaders
            headers[.accessControlMaxAge] = String(self.policy.maxAge)
            return Response(status: .noContent, headers: headers)
        }
        var response = try await next(request, context)
        if allowed {
            for field in self.headers(origin: origin) { response.headers.append(field) }
            response.headers[.accessControlExposeHeaders] = Self.exposedHeaders
        } else if !self.allowsAny {
            response.headers[.vary] = "Origin"
        }
        return response
    }

    private func headers(origin: String) -> HTTPFields {
        var headers: HTTPFields = [:]
        if self.allowsAny && !self.policy.allowCredentials {
            headers[.accessControlAllowOrigin] = "*"
        } else {
            headers[.accessControlAllowOrigin] = origin
            headers[.vary] = "Origin"
        }
        if self.policy.allowCredentials {
            headers[.accessControlAllowCredentials] = "true"
        }
        return headers
    }
}
