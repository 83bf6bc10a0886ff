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

/// Token buckets in memory: each key holds up to `burst` tokens, refilled at `rate` per second —
/// for the whole deployment. With N live servers behind a balancer (`servers`, from the
/// heartbeat table) each server's bucket holds `burst/N` tokens refilled at `rate/N`, so a
/// client spread evenly over the servers gets the rate once, not N times. The headers speak for
/// the deployment: the limit is `burst`, the remaining count this server's tokens times N.
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
    /// Live servers sharing the limit (1 when this server is alone or does not know).
    let servers: @Sendable () -> Int
    private let buckets = Mutex<[String: Bucket]>([:])
    private static let pruneThreshold = 100_000

    init(rate: Double, burst: Int, servers: @escaping @Sendable () -> Int = { 1 }) {
        self.rate = rate
        self.burst = max(1, burst)
        self.servers = servers
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
        let servers = Double(max(1, self.servers()))
        // This server's share; a bucket never holds less than one token, or nothing would pass.
        let capacity = max(1, Double(self.burst) / servers)
        let rate = self.rate / servers
        return self.buckets.withLock { buckets in
            if buckets.count > Self.pruneThreshold { self.prune(&buckets, now: now) }
            var bucket = buckets[key] ?? Bucket(tokens: capacity, updated: now)
            let elapsed = now - bucket.updated
            bucket.tokens = min(capacity, bucket.tokens + elapsed.seconds * rate)
            bucket.updated = now
            let allowed = bucket.tokens >= 1
            if allowed, consume { bucket.tokens -= 1 }
            buckets[key] = bucket
            let reset = allowed
                ? Int(((capacity - bucket.tokens) / rate).rounded(.up))
                : Int(((1 - bucket.tokens) / rate).rounded(.up))
            let remaining = min(self.burst, Int((bucket.tokens * servers).rounded(.down)))
            return Decision(allowed: allowed, limit: self.burst, remaining: remaining, reset: max(allowed ? 0 : 1, reset))
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

/// The rate limits, this server's share of them: a bucket per tenant for authenticated requests, one per client
/// address for the rest — and for every failed authentication, so guessing credentials is
/// limited like any anonymous traffic (see `AuthenticationMiddleware`).
final class RateLimiter: Sendable {
    let tenants: TokenBuckets?
    let addresses: TokenBuckets?
    let metrics: AtriumMetrics?

    /// `servers` counts the live servers the limits are shared between.
    init(policy: RateLimitPolicy, servers: @escaping @Sendable () -> Int = { 1 }, metrics: AtriumMetrics?) {
        self.tenants = policy.tenantRate > 0 ? TokenBuckets(rate: policy.tenantRate, burst: policy.tenantBurst, servers: servers) : nil
        self.addresses = policy.addressRate > 0 ? TokenBuckets(rate: policy.addressRate, burst: policy.addressBurst, servers: servers) : nil
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
