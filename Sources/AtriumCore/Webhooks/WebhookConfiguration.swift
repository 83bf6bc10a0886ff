/// How webhooks are delivered. The defaults are the production ones; tests shorten the
/// schedule and the timeout.
public struct WebhookConfiguration: Sendable {
    /// `http://` and private addresses allowed (local receivers): `ATRIUM_WEBHOOKS_ALLOW_PRIVATE=1`.
    public var allowPrivateAddresses = false
    /// One attempt may take this long, connection and answer included.
    public var timeout: Duration = .seconds(10)
    /// Waits between attempts after each failure (jittered by up to ±20 %): after the last, the
    /// delivery fails. About a day in all.
    public var retrySchedule: [Duration] = [
        .seconds(5), .seconds(5 * 60), .seconds(30 * 60), .seconds(2 * 3600), .seconds(5 * 3600), .seconds(10 * 3600), .seconds(10 * 3600),
    ]
    /// Attempts in flight on this server. Attempts mostly wait on the network (a receiver
    /// 100 ms away takes 100 ms), so this many cost little but sockets.
    public var concurrency = 256
    /// Attempts in flight per endpoint on this server (ordered endpoints: one everywhere).
    public var perEndpoint = 8
    /// Attempts in flight per tenant on this server, so one tenant's slow endpoints cannot take
    /// every slot.
    public var perTenant = 32
    /// Deliveries leased in one claim.
    public var claimBatch = 64
    /// Endpoints a tenant may have.
    public var maximumEndpoints = 20
    /// Positions of the change log one fan-out call covers past the endpoint furthest behind.
    public var fanoutBatch = 10_000
    /// How often due retries are looked for when nothing wakes the dispatcher.
    public var pollInterval: Duration = .seconds(1)
    /// How long finished deliveries are kept.
    public var retention: Duration = .seconds(7 * 24 * 3600)
    /// Default and longest overlap of a secret rotation.
    public var defaultOverlap: Duration = .seconds(24 * 3600)
    public var maximumOverlap: Duration = .seconds(7 * 24 * 3600)

    public init() {}

    /// A claim outlives the attempt it covers, so an attempt still in flight is never claimed
    /// again by another server; a server that died gives its claims up when they run out.
    public var lease: Duration {
        self.timeout * 2 + .seconds(5)
    }

    /// Attempts in all: the first and one per step of the schedule.
    public var maximumAttempts: Int {
        self.retrySchedule.count + 1
    }
}
