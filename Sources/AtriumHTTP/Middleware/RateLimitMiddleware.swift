import AtriumCore
import AtriumText
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

    /// Takes a token from `key`'s bucket if it has one.
    func take(_ key: String, now: ContinuousClock.Instant = .now) -> Decision {
        self.decide(key, consume: true, now: now)
    }

    /// Whether `key`'s bucket has a token, without taking it.
    func peek(_ key: String, now: ContinuousClock.Instant = .now) -> Decision {
        self.decide(key, consume: false, now: now)
    }

    private func decide(_ key: String, consume: Bool, now: ContinuousClock.Instant) -> Decision {
        self.buckets.withLock { buckets in
            if buckets.count > Self.pruneThreshold { self.prune(&buckets, now: now) }
            var bucket = buckets[key] ?? Bucket(tokens: Double(self.burst), updated: now)
            let elapsed = now - bucket.updated
            bucket.tokens = min(Double(self.burst), bucket.tokens + elapsed.seconds * self.rate)
            bucket.updated = now
            let allowed = bucket.tokens >= 1
            if allowed, consume { bucket.tokens -= 1 }
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

/// The rate limits of one server: a bucket per tenant for authenticated requests, one per client
/// address for the rest — and for every failed authentication, so guessing credentials is
/// limited like any anonymous traffic (see `AuthenticationMiddleware`).
final class RateLimiter: Sendable {
    let tenants: TokenBuckets?
    let addresses: TokenBuckets?
    let metrics: AtriumMetrics?

    init(policy: RateLimitPolicy, metrics: AtriumMetrics?) {
        self.tenants = policy.tenantRate > 0 ? TokenBuckets(rate: policy.tenantRate, burst: policy.tenantBurst) : nil
        self.addresses = policy.addressRate > 0 ? TokenBuckets(rate: policy.addressRate, burst: policy.addressBurst) : nil
        self.metrics = metrics
    }

    /// Paths never limited: probes and scrapers must always get through.
    static let exempt: Set<String> = ["/healthz", "/readyz", "/metrics", "/openapi.json"]

    /// Refuses a credential from an address whose bucket is empty, before it is checked: a
    /// client that keeps failing is stopped without a database query per guess.
    func admitCredential(from address: String) throws {
        guard let addresses, case let decision = addresses.peek(address), !decision.allowed else { return }
        throw self.refusal(decision, scope: "address")
    }

    /// A credential from `address` failed: it costs the address a token.
    func chargeFailure(from address: String) {
        _ = self.addresses?.take(address)
    }

    /// The 429 for a refused decision.
    func refusal(_ decision: TokenBuckets.Decision, scope: String) -> Problem {
        self.metrics?.recordRateLimited(scope: scope)
        var headers = Self.headers(decision)
        headers[.retryAfter] = String(decision.reset)
        return Problem(
            .throttled,
            detail: scope == "tenant" ? "this tenant is sending requests faster than its limit" : "too many requests from this address",
            reason: "rate_limited",
            headers: headers
        )
    }

    static func headers(_ decision: TokenBuckets.Decision) -> HTTPFields {
        [
            .rateLimitLimit: String(decision.limit),
            .rateLimitRemaining: String(decision.remaining),
            .rateLimitReset: String(decision.reset),
        ]
    }
}

/// Per-tenant limits for authenticated requests, per-address limits for the rest. Health,
/// readiness and metrics are not limited (probes and scrapers must always get through).
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = AtriumRequestContext
    let limiter: RateLimiter

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !RateLimiter.exempt.contains(request.uri.path) else { return try await next(request, context) }
        let decision: TokenBuckets.Decision
        let scope: String
        if let principal = context.principal {
            guard let tenants = self.limiter.tenants else { return try await next(request, context) }
            decision = tenants.take(principal.tenant.tenantID.lowercasedString)
            scope = "tenant"
        } else {
            guard let addresses = self.limiter.addresses else { return try await next(request, context) }
            decision = addresses.take(context.clientAddress)
            scope = "address"
        }
        guard decision.allowed else { throw self.limiter.refusal(decision, scope: scope) }
        var response = try await next(request, context)
        for field in RateLimiter.headers(decision) { response.headers[field.name] = field.value }
        return response
    }
}
