import AsyncHTTPClient
import AtriumCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// Sends one attempt of a delivery: signed per Standard Webhooks, to an address checked just
/// before (see `WebhookAddresses`), bounded by the timeout, redirects not followed, at most
/// 1 KiB of the answer read.
///
/// The connection must go to the address that was checked, not to whatever the name resolves
/// to a moment later, and TLS must still verify the certificate against the host name. Each
/// (host, address) pair gets a client whose `dnsOverride` pins the name to that address (the
/// TLS server name stays the host); the clients keep their connection pools and the least
/// recently used are closed beyond `maximumClients`.
final class WebhookSender: Sendable {
    let addresses: WebhookAddresses
    let timeout: Duration
    let logger: Logger
    private let clients = Mutex<[String: (client: HTTPClient, used: ContinuousClock.Instant)]>([:])
    static let maximumClients = 64

    init(addresses: WebhookAddresses, timeout: Duration, logger: Logger) {
        self.addresses = addresses
        self.timeout = timeout
        self.logger = logger
    }

    private func configuration(pinning host: String?, to address: IPAddress?) -> HTTPClient.Configuration {
        let timeout = TimeAmount.nanoseconds(Int64(self.timeout.components.seconds) * 1_000_000_000 + self.timeout.components.attoseconds / 1_000_000_000)
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: timeout, read: timeout),
            connectionPool: .init(idleTimeout: .seconds(60)),
            decompression: .disabled
        )
        if let host, let address {
            configuration.dnsOverride = [host: "\(address)"]
        }
        return configuration
    }

    /// A client that connects `target` to an allowed address of its host.
    private func client(for target: WebhookAddresses.Target) async throws -> HTTPClient {
        let resolved = try await self.addresses.resolve(target.host)
        let address = resolved[0]
        let key = IPAddress(target.host) == nil ? "\(target.host)|\(address)" : "literal"
        var retired: [HTTPClient] = []
        let client = self.clients.withLock { clients -> HTTPClient in
            let now = ContinuousClock.now
            if let entry = clients[key] {
                clients[key] = (entry.client, now)
                return entry.client
            }
            let pinned = key == "literal" ? nil : address
            let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: self.configuration(pinning: target.host, to: pinned))
            clients[key] = (client, now)
            while clients.count > Self.maximumClients, let oldest = clients.min(by: { $0.value.used < $1.value.used }) {
                retired.append(oldest.value.client)
                clients[oldest.key] = nil
            }
            return client
        }
        for old in retired {
            Task { try? await old.shutdown() }
        }
        return client
    }

    func shutdown() async {
        let all = self.clients.withLock { clients in
            defer { clients.removeAll() }
            return clients.values.map(\.client)
        }
        for client in all {
            try? await client.shutdown()
        }
    }

    func send(_ delivery: ClaimedDelivery, body: [UInt8]) async -> DeliveryOutcome {
        let start = ContinuousClock.now
        let (target, problem) = self.addresses.target(delivery.url)
        guard let target else {
            return DeliveryOutcome(kind: .failed, duration: .now - start, error: "the URL can no longer be used: \(problem ?? "invalid")")
        }
        do {
            return try await self.withTimeout {
                let client = try await self.client(for: target)
                let timestamp = Int(Date().timeIntervalSince1970)
                var request = HTTPClientRequest(url: delivery.url)
                request.method = .POST
                request.headers.add(name: "content-type", value: "application/json")
                request.headers.add(name: "user-agent", value: "Atrium-Webhooks/1")
                request.headers.add(name: "webhook-id", value: delivery.messageID)
                request.headers.add(name: "webhook-timestamp", value: String(timestamp))
                request.headers.add(
                    name: "webhook-signature",
                    value: WebhookSignature.header(secrets: delivery.secrets, id: delivery.messageID, timestamp: timestamp, body: body)
                )
                request.body = .bytes(body)
                // The client's own deadline comes first, so a connection that cannot be made
                // (refused, a certificate that does not verify) fails with that reason.
                let response = try await client.execute(request, timeout: .nanoseconds(self.timeout.components.seconds * 1_000_000_000 + self.timeout.components.attoseconds / 1_000_000_000))
                var collected: [UInt8] = []
                for try await chunk in response.body {
                    collected.append(contentsOf: chunk.readableBytesView.prefix(1024 - collected.count))
                    if collected.count >= 1024 { break }
                }
                let status = Int(response.status.code)
                let kind: DeliveryOutcome.Kind = switch status {
                case 200..<300: .succeeded
                case 410: .gone
                default: .failed
                }
                return DeliveryOutcome(
                    kind: kind, responseStatus: status, responseBody: String(decoding: collected, as: UTF8.self), duration: .now - start,
                    error: (300..<400).contains(status) ? "redirects are not followed" : nil
                )
            }
        } catch let refusal as WebhookAddresses.Refusal {
            return DeliveryOutcome(kind: .failed, duration: .now - start, error: "refused: \(refusal.reason)")
        } catch is TimedOut {
            return DeliveryOutcome(kind: .failed, duration: .now - start, error: "no complete answer within \(self.timeout.components.seconds) s")
        } catch {
            return DeliveryOutcome(kind: .failed, duration: .now - start, error: "\(error)")
        }
    }

    private struct TimedOut: Error {}

    /// `body`, cancelled a second after the timeout (the answer's body included, which the
    /// client's own deadline does not bound).
    private func withTimeout<Result: Sendable>(_ body: @escaping @Sendable () async throws -> Result) async throws -> Result {
        try await withThrowingTaskGroup(of: Result.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: self.timeout + .seconds(1))
                throw TimedOut()
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }
}
