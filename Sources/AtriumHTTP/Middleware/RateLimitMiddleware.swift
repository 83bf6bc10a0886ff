import AtriumCore
import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

extension HTTPField.Name {
    static let rateLimitLimit = HTTPField.Name("RateLimit-Limit")!
    static let rateLimitRemaining = HTTPField.Name("RateLimit-Remaining")!
    static let rateLimitReset = HTTPField.Name("RateLimit-Reset")!
}

/// Token buckets in memory: each key holds up to `burst` tokens, refilled at `rate` per second.
/// Limits are per server process; behind a load balancer with N servers a tenant gets up to N
/// times the rate.
final class TokenBuckets: Sendable {
    struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    struct Decision: Sendable {
        let allowed: Bool
        let limit: Int
        let remaining: Int
        /// Seconds until the bucket is full again (allowed) or holds one token (refused).
        let reset: Int
    }

    let rate: Double
    let burst: Int
    private let buckets = Mutex<[String: Bucket]>([:])
    private static let pruneThreshold = 100_000

    init(rate: Double, burst: Int) {
        self.rate = rate
        self.burst = max(1, burst)
    }

    func take(_ key: String, now: ContinuousClock.Instant = .now) -> Decision {
        self.buckets.withLock { buckets in
            if buckets.count > Self.pruneThreshold { self.prune(&buckets, now: now) }
            var bucket = buckets[key] ?? Bucket(tokens: Double(self.burst), updated: now)
            let elapsed = now - bucket.updated
            bucket.tokens = min(Double(self.burst), bucket.tokens + elapsed.seconds * self.rate)
            bucket.updated = now
            let allowed = bucket.tokens >= 1
            if allowed { bucket.tokens -= 1 }
            buckets[key] = bucket
            let reset = allowed
                ? Int(((Double(self.burst) - bucket.tokens) / self.rate).rounded(.up))
                : Int(((1 - bucket.tokens) / self.rate).rounded(.up))
            return Decision(allowed: allowed, limit: self.burst, remaining: Int(bucket.tokens.rounded(.down)), reset: max(allowed ? 0 : 1, reset))
        }
    }

    /// Forgets buckets that have refilled completely: they are the same as new ones.
    private func prune(_ buckets: inout [String: Bucket], now: ContinuousClock.Instant) {
        let full = Double(self.burst) / self.rate
        buckets = buckets.filter { _, bucket in
            let idle = now - bucket.updated
            return idle.seconds < full
        }
    }
}

/// Per-tenant limits for authenticated requests, per-address limits for the rest. Health,
/// readiness and metrics are not limited (probes and scrapers must always get through).
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = AtriumRequestContext
    let tenants: TokenBuckets?
    let addresses: TokenBuckets?
    let metrics: AtriumMetrics?

    init(policy: RateLimitPolicy, metrics: AtriumMetrics?) {
        self.tenants = policy.tenantRate > 0 ? TokenBuckets(rate: policy.tenantRate, burst: policy.tenantBurst) : nil
        self.addresses = policy.addressRate > 0 ? TokenBuckets(rate: policy.addressRate, burst: policy.addressBurst) : nil
        self.metrics = metrics
    }

    static let exempt: Set<String> = ["/healthz", "/readyz", "/metrics", "/openapi.json"]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !Self.exempt.contains(request.uri.path) else { return try await next(request, context) }
        let decision: TokenBuckets.Decision
        let scope: String
        if let principal = context.principal {
            guard let tenants else { return try await next(request, context) }
            decision = tenants.take(principal.tenant.tenantID.uuidString)
            scope = "tenant"
        } else {
            guard let addresses else { return try await next(request, context) }
            decision = addresses.take(context.clientAddress)
            scope = "address"
        }
        var headers: HTTPFields = [
            .rateLimitLimit: String(decision.limit),
            .rateLimitRemaining: String(decision.remaining),
            .rateLimitReset: String(decision.reset),
        ]
        guard decision.allowed else {
            self.metrics?.recordRateLimited(scope: scope)
            headers[.retryAfter] = String(decision.reset)
            throw Problem(
                .throttled,
                detail: scope == "tenant" ? "this tenant is sending requests faster than its limit" : "too many requests from this address",
                reason: "rate_limited",
                headers: headers
            )
        }
        var response = try await next(request, context)
        for field in headers { response.headers[field.name] = field.value }
        return response
    }
}
