import AtriumCore
import AtriumCrypto
import AtriumMail
import AtriumText
import CoreMetrics
import Foundation
import HTTPTypes
public import Prometheus
import Synchronization

/// The service's metrics, recorded through swift-metrics into a Prometheus registry of the
/// application's own (not the process-wide bootstrap, so several applications in one process —
/// tests, the benchmark — each count only their own requests).
public final class AtriumMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    private let requests = Mutex<[RequestKey: RequestMetrics]>([:])
    let authFailures: CoreMetrics.Counter
    let rateLimited: Mutex<[String: CoreMetrics.Counter]> = Mutex([:])
    private let gauges: Gauges
    private let services: AtriumServices
    /// How many of the tenants that waited most for connections get series of their own.
    let tenantSeries: Int
    private let tenantGauges = Mutex<[UUID: (waits: Prometheus.Gauge, timeouts: Prometheus.Gauge)]>([:])

    struct RequestKey: Hashable {
        let route: String
        let method: String
        let status: Int
    }

    struct RequestMetrics: Sendable {
        let count: CoreMetrics.Counter
        let duration: CoreMetrics.Timer
    }

    private struct Gauges: Sendable {
        let poolOpen, poolIdle, poolInUse, poolWaiting, poolAcquired, poolTimedOut, poolGathered: Prometheus.Gauge
        let hashRunning, hashWaiting: Prometheus.Gauge
        let connectionsOpen, connectionPauses: Prometheus.Gauge
        let accessLogDropped: Prometheus.Gauge?
        let databaseUp, databaseRestarts: Prometheus.Gauge?
        let eventSubscribers, eventsDelivered, eventSlowConsumers, changesRead, changeLag: Prometheus.Gauge
        let webhookDeliveriesCreated, webhookAttemptsSucceeded, webhookAttemptsFailed, webhookAttemptsInFlight: Prometheus.Gauge
        let updatesRetried, updatesLocked, transactionsRetried: Prometheus.Gauge
        let mailSent, mailFailed: Prometheus.Gauge
        let liveServers: Prometheus.Gauge
        /// With read replicas: reads per target, and each replica's lag and whether it is used.
        let primaryReads: Prometheus.Gauge?
        let replicas: [(reads: Prometheus.Gauge, lag: Prometheus.Gauge, usable: Prometheus.Gauge)]
    }

    private let accessLog: AccessLog?

    public init(services: AtriumServices, tenantSeries: Int = 0, accessLog: AccessLog? = nil) {
        self.accessLog = accessLog
        self.tenantSeries = tenantSeries
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
        ]
        self.registry = registry
        self.factory = factory
        self.services = services
        self.authFailures = CoreMetrics.Counter(label: "atrium_auth_failures_total", factory: factory)
        func gauge(_ name: String, _ help: String) -> Prometheus.Gauge { registry.gauge(name, labels: [], help: help) }
        self.gauges = Gauges(
            poolOpen: gauge("atrium_db_pool_connections_open", "PostgreSQL connections established"),
            poolIdle: gauge("atrium_db_pool_connections_idle", "PostgreSQL connections idle in the pool"),
            poolInUse: gauge("atrium_db_pool_connections_in_use", "PostgreSQL connections lent to requests"),
            poolWaiting: gauge("atrium_db_pool_waiters", "Requests waiting for a PostgreSQL connection"),
            poolAcquired: gauge("atrium_db_pool_acquired", "Connections handed out since start"),
            poolTimedOut: gauge("atrium_db_pool_acquire_timeouts", "Requests that gave up waiting for a connection since start"),
            poolGathered: gauge("atrium_db_pool_gathered", "Requests that found a connection idle and joined a busy one's next round since start"),
            hashRunning: gauge("atrium_password_hashes_running", "Password hashes being computed"),
            hashWaiting: gauge("atrium_password_hash_queue_depth", "Password hashes waiting for a thread"),
            connectionsOpen: gauge("atrium_http_connections_open", "HTTP connections open"),
            connectionPauses: gauge("atrium_http_connection_cap_pauses", "Times the server stopped accepting connections at ATRIUM_MAX_CONNECTIONS since start"),
            accessLogDropped: accessLog == nil ? nil : gauge("atrium_access_log_dropped", "Access log lines dropped because the writer had fallen behind, since start"),
            databaseUp: services.databaseProcess == nil ? nil : gauge("atrium_embedded_postgres_up", "1 while the embedded PostgreSQL runs, 0 while it is restarted or down"),
            databaseRestarts: services.databaseProcess == nil ? nil : gauge("atrium_embedded_postgres_restarts", "Times the embedded PostgreSQL was restarted after exiting on its own"),
            eventSubscribers: gauge("atrium_event_subscribers", "Event streams (GET /v1/events) open on this server"),
            eventsDelivered: gauge("atrium_events_delivered", "Change events handed to this server's subscribers since start, replays included"),
            eventSlowConsumers: gauge("atrium_event_slow_consumers_dropped", "Event streams ended because the client fell too far behind, since start"),
            changesRead: gauge("atrium_change_log_read", "Changes this server read from the change log since start"),
            changeLag: gauge("atrium_change_feed_lag_seconds", "From the start of the last dispatched change's transaction to its dispatch"),
            webhookDeliveriesCreated: gauge("atrium_webhook_deliveries_created", "Webhook deliveries this server made from changes since start"),
            webhookAttemptsSucceeded: gauge("atrium_webhook_attempts_succeeded", "Webhook attempts answered with 2xx since start"),
            webhookAttemptsFailed: gauge("atrium_webhook_attempts_failed", "Webhook attempts that failed (retried later or given up) since start"),
            webhookAttemptsInFlight: gauge("atrium_webhook_attempts_in_flight", "Webhook attempts this server is sending now"),
            updatesRetried: gauge("atrium_record_update_retries", "Record updates worked out again because the record changed or was locked between their read and their write, since start"),
            updatesLocked: gauge("atrium_record_updates_locked", "Record updates that, after retries, locked the record before reading it, since start"),
            transactionsRetried: gauge("atrium_db_transaction_retries", "Transactions run again because PostgreSQL failed them to break a deadlock (or a serialization failure), since start"),
            mailSent: gauge("atrium_mail_sent", "Mails this server handed to the SMTP server (or wrote to files) since start"),
            mailFailed: gauge("atrium_mail_attempts_failed", "Mail attempts that failed (retried later or given up) since start"),
            liveServers: gauge("atrium_live_servers", "Live servers in the deployment by their heartbeats (the rate limits are shared between them)"),
            primaryReads: services.database.replicas == nil ? nil : registry.gauge(
                "atrium_db_reads", labels: [("target", "primary")], help: "Reads that could have gone to a replica, by where they went, since start"
            ),
            replicas: (services.database.replicas?.statistics.replicas ?? []).map { replica in
                (
                    registry.gauge("atrium_db_reads", labels: [("target", replica.name)], help: "Reads that could have gone to a replica, by where they went, since start"),
                    registry.gauge("atrium_db_replica_lag_seconds", labels: [("replica", replica.name)], help: "How far the replica is behind, at its last poll"),
                    registry.gauge("atrium_db_replica_usable", labels: [("replica", replica.name)], help: "1 when reads may go to the replica (reachable, in recovery, within the lag bound)")
                )
            }
        )
    }

    /// Counts a finished request under its route template, method and status.
    func recordRequest(route: String, method: HTTPRequest.Method, status: HTTPResponse.Status, duration: Duration) {
        let key = RequestKey(route: route, method: method.rawValue, status: Int(status.code))
        let metrics = self.requests.withLock { cache in
            if let existing = cache[key] { return existing }
            let dimensions = [("route", key.route), ("method", key.method), ("status", String(key.status))]
            let created = RequestMetrics(
                count: CoreMetrics.Counter(label: "atrium_http_requests_total", dimensions: dimensions, factory: self.factory),
                duration: CoreMetrics.Timer(label: "atrium_http_request_duration_seconds", dimensions: [("route", key.route), ("method", key.method)], factory: self.factory)
            )
            cache[key] = created
            return created
        }
        metrics.count.increment()
        metrics.duration.recordNanoseconds(duration.nanoseconds)
        if status == .unauthorized { self.authFailures.increment() }
    }

    /// Counts a request refused by a rate limit (`scope`: tenant or address).
    func recordRateLimited(scope: String) {
        let counter = self.rateLimited.withLock { counters in
            if let existing = counters[scope] { return existing }
            let created = CoreMetrics.Counter(label: "atrium_rate_limited_total", dimensions: [("scope", scope)], factory: self.factory)
            counters[scope] = created
            return created
        }
        counter.increment()
    }

    /// The Prometheus text exposition, with the gauges read now.
    public func exposition() -> [UInt8] {
        let pool = self.services.database.load
        self.gauges.poolOpen.set(Double(pool.open))
        self.gauges.poolIdle.set(Double(pool.idle))
        self.gauges.poolInUse.set(Double(pool.inUse))
        self.gauges.poolWaiting.set(Double(pool.waiting))
        self.gauges.poolAcquired.set(Double(pool.acquired))
        self.gauges.poolTimedOut.set(Double(pool.timedOut))
        self.gauges.poolGathered.set(Double(pool.gathered))
        self.updateTenantSeries()
        if let state = self.services.databaseProcess?.processState {
            self.gauges.databaseUp?.set(state.phase == .running ? 1.0 : 0.0)
            self.gauges.databaseRestarts?.set(Double(state.restarts))
        }
        let hashing = self.services.auth.hasher.executor.depth
        self.gauges.hashRunning.set(Double(hashing.running))
        self.gauges.hashWaiting.set(Double(hashing.waiting))
        let connections = self.services.connections.snapshot
        self.gauges.connectionsOpen.set(Double(connections.open))
        self.gauges.connectionPauses.set(Double(connections.pauses))
        if let accessLog = self.accessLog {
            self.gauges.accessLogDropped?.set(Double(accessLog.dropped))
        }
        let feed = self.services.feed.statistics
        self.gauges.eventSubscribers.set(Double(self.services.feed.subscriberCount))
        self.gauges.eventsDelivered.set(Double(feed.eventsDelivered))
        self.gauges.eventSlowConsumers.set(Double(feed.slowConsumersDropped))
        self.gauges.changesRead.set(Double(feed.changesRead))
        self.gauges.changeLag.set(feed.lagSeconds)
        let webhooks = self.services.dispatcher.statistics
        self.gauges.webhookDeliveriesCreated.set(Double(webhooks.deliveriesCreated))
        self.gauges.webhookAttemptsSucceeded.set(Double(webhooks.attemptsSucceeded))
        self.gauges.webhookAttemptsFailed.set(Double(webhooks.attemptsFailed))
        self.gauges.webhookAttemptsInFlight.set(Double(self.services.dispatcher.attemptsInFlight))
        self.gauges.updatesRetried.set(Double(self.services.records.updatesRetried.load(ordering: .relaxed)))
        self.gauges.updatesLocked.set(Double(self.services.records.updatesLocked.load(ordering: .relaxed)))
        self.gauges.transactionsRetried.set(Double(self.services.database.transactionsRetried))
        self.gauges.mailSent.set(Double(self.services.mailer?.sent.load(ordering: .relaxed) ?? 0))
        self.gauges.mailFailed.set(Double(self.services.mailer?.failed.load(ordering: .relaxed) ?? 0))
        self.gauges.liveServers.set(Double(self.services.servers.liveServers))
        if let statistics = self.services.database.replicas?.statistics {
            self.gauges.primaryReads?.set(Double(statistics.primaryReads))
            for (gauges, replica) in zip(self.gauges.replicas, statistics.replicas) {
                gauges.reads.set(Double(replica.reads))
                let lag: Double = replica.lag.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 } ?? -1
                gauges.lag.set(lag)
                gauges.usable.set(replica.usable ? 1.0 : 0.0)
            }
        }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 * 1024)
        self.registry.emit(into: &buffer)
        return buffer
    }

    /// Series for the tenants that waited most for a connection (`tenantSeries` of them, none
    /// by default): a label per tenant would otherwise grow without bound. Tenants that drop
    /// out of the top lose their series.
    private func updateTenantSeries() {
        guard self.tenantSeries > 0 else { return }
        let busiest = self.services.database.busiestTenants(limit: self.tenantSeries)
        self.tenantGauges.withLock { gauges in
            let current = Set(busiest.map(\.tenant))
            for (tenant, series) in gauges where !current.contains(tenant) {
                self.registry.unregisterGauge(series.waits)
                self.registry.unregisterGauge(series.timeouts)
                gauges[tenant] = nil
            }
            for counters in busiest {
                let tenant = counters.tenant
                let labels = [("tenant", tenant.lowercasedString)]
                let series = gauges[tenant] ?? (
                    self.registry.gauge("atrium_db_pool_tenant_waits", labels: labels, help: "Requests of the tenant that waited for a PostgreSQL connection since start"),
                    self.registry.gauge("atrium_db_pool_tenant_acquire_timeouts", labels: labels, help: "Requests of the tenant that gave up waiting for a connection since start")
                )
                gauges[tenant] = series
                series.waits.set(Double(counters.waited))
                series.timeouts.set(Double(counters.timedOut))
            }
        }
    }
}

extension PrometheusCollectorRegistry {
    /// A gauge named exactly `name` (no unit suffix), with its help text.
    fileprivate func gauge(_ name: String, labels: [(String, String)], help: String) -> Prometheus.Gauge {
        self.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
    }
}
