import AsyncHTTPClient
import AtriumCrypto
import AtriumHTTP
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Testing

/// Tests against a real listening server: TLS versions and ALPN, HSTS, a slow-header client,
/// an oversized body refused before it is sent.
@Suite struct LiveServerTests {
    /// Completes with the negotiated ALPN protocol once the TLS handshake is done, or fails.
    final class HandshakeWatcher: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let promise: EventLoopPromise<String?>

        init(promise: EventLoopPromise<String?>) {
            self.promise = promise
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case TLSUserEvent.handshakeCompleted(let negotiated) = event {
                self.promise.succeed(negotiated)
            }
            context.fireUserInboundEventTriggered(event)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            self.promise.fail(error)
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.promise.fail(ChannelError.ioOnClosedChannel)
            context.fireChannelInactive()
        }
    }

    /// Connects with TLS (certificates not verified) as `configure` sets the client up, waits
    /// for the handshake, and gives `body` the channel and the negotiated ALPN protocol; throws
    /// when the handshake fails.
    static func withTLSConnection<T>(
        port: Int,
        configure: (inout TLSConfiguration) -> Void = { _ in },
        _ body: (any Channel, String?) async throws -> T
    ) async throws -> T {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        configure(&configuration)
        let context = try NIOSSLContext(configuration: configuration)
        let group = MultiThreadedEventLoopGroup.singleton
        let promise = group.next().makePromise(of: String?.self)
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: "localhost"))
                    try channel.pipeline.syncOperations.addHandler(HandshakeWatcher(promise: promise))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        defer { channel.close(promise: nil) }
        return try await body(channel, try await promise.futureResult.get())
    }

    /// Handshakes with the server restricted to `version`; returns (version, ALPN) or throws.
    static func handshake(port: Int, version: TLSVersion, alpn: [String] = ["h2", "http/1.1"]) async throws -> (TLSVersion?, String?) {
        try await Self.withTLSConnection(port: port, configure: {
            $0.minimumTLSVersion = version
            $0.maximumTLSVersion = version
            $0.applicationProtocols = alpn
        }) { channel, negotiated in
            (try await channel.nioSSL_tlsVersion().get(), negotiated)
        }
    }

    /// Runs `body` with the port of a live server serving HTTPS with a self-signed certificate.
    static func withSelfSignedServer(maximumBodySize: Int? = nil, _ body: @escaping @Sendable (Int) async throws -> Void) async throws {
        var app = try await TestApp.make()
        app.server.port = 0
        if let maximumBodySize { app.server.limits.maximumBodySize = maximumBodySize }
        app.tls = try TLSSetup(TLSSettings(.selfSigned))
        try await app.test(.live) { client in
            try await body(try #require(client.port))
        }
    }

    @Test func tlsVersionsAndALPN() async throws {
        try await Self.withSelfSignedServer { port in
            await #expect(throws: (any Error).self) {
                _ = try await Self.handshake(port: port, version: .tlsv11)
            }
            await #expect(throws: (any Error).self) {
                _ = try await Self.handshake(port: port, version: .tlsv1)
            }
            let tls12 = try await Self.handshake(port: port, version: .tlsv12)
            #expect(tls12.0 == .tlsv12)
            #expect(tls12.1 == "h2")
            let tls13 = try await Self.handshake(port: port, version: .tlsv13)
            #expect(tls13.0 == .tlsv13)
            #expect(tls13.1 == "h2")
            let http1 = try await Self.handshake(port: port, version: .tlsv13, alpn: ["http/1.1"])
            #expect(http1.1 == "http/1.1")

            // A real request over HTTP/2 carries HSTS and the request id.
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .none
            let httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
            do {
                let response = try await httpClient.execute(HTTPClientRequest(url: "https://localhost:\(port)/healthz"), timeout: .seconds(10))
                #expect(response.status == .ok)
                #expect(response.version == .http2)
                #expect(response.headers.first(name: "Strict-Transport-Security") == "max-age=31536000")
                #expect(response.headers.first(name: "X-Request-ID") != nil)
            } catch {
                try await httpClient.shutdown()
                throw error
            }
            try await httpClient.shutdown()
        }
    }

    @Test func tls12OffersOnlyForwardSecretAEADSuites() async throws {
        try await Self.withSelfSignedServer { port in
            // A client offering only CBC or static-RSA suites finds nothing in common.
            await #expect(throws: (any Error).self) {
                try await Self.withTLSConnection(port: port, configure: {
                    $0.maximumTLSVersion = .tlsv12
                    $0.cipherSuites = "AES128-SHA:AES256-SHA:AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA"
                }) { _, _ in }
            }
        }
    }

    /// The SHA-256 fingerprint of the certificate the server presents now.
    static func presentedFingerprint(port: Int) async throws -> String {
        try await Self.withTLSConnection(port: port) { channel, _ in
            let certificate = try #require(try await channel.nioSSL_peerCertificate().get())
            return SHA256.hash(try certificate.toDERBytes()).map { String(format: "%02X", $0) }.joined(separator: ":")
        }
    }

    @Test func certificatesAreReloadedWithoutDroppingConnections() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("atrium-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let certificatePath = directory.appendingPathComponent("cert.pem").path
        let keyPath = directory.appendingPathComponent("key.pem").path
        let first = try SelfSignedCertificate.make()
        try first.certificatePEM.write(toFile: certificatePath, atomically: true, encoding: .utf8)
        try first.keyPEM.write(toFile: keyPath, atomically: true, encoding: .utf8)
        var app = try await TestApp.make()
        app.server.port = 0
        let setup = try TLSSetup(TLSSettings(.files(certificate: certificatePath, key: keyPath)))
        app.tls = setup
        #expect(setup.fingerprint == first.fingerprint)
        try await app.test(.live) { client in
            let port = try #require(client.port)
            #expect(try await Self.presentedFingerprint(port: port) == first.fingerprint)

            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .none
            let httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
            let before = try await httpClient.execute(HTTPClientRequest(url: "https://localhost:\(port)/healthz"), timeout: .seconds(10))
            #expect(before.status == .ok)

            // A broken file is refused and the certificate in use stays.
            try "not a certificate".write(toFile: certificatePath, atomically: true, encoding: .utf8)
            #expect(throws: (any Error).self) { try setup.store.reload() }
            #expect(try await Self.presentedFingerprint(port: port) == first.fingerprint)

            let second = try SelfSignedCertificate.make()
            try second.certificatePEM.write(toFile: certificatePath, atomically: true, encoding: .utf8)
            try second.keyPEM.write(toFile: keyPath, atomically: true, encoding: .utf8)
            try setup.store.reload()
            #expect(setup.fingerprint == second.fingerprint)
            #expect(try await Self.presentedFingerprint(port: port) == second.fingerprint)
            // The client's pooled connection from before the reload still serves.
            let after = try await httpClient.execute(HTTPClientRequest(url: "https://localhost:\(port)/healthz"), timeout: .seconds(10))
            #expect(after.status == .ok)
            try await httpClient.shutdown()
        }
    }

    /// Opens a plain TCP connection; `body` gets the inbound stream and outbound writer.
    static func raw(port: Int, _ body: (NIOAsyncChannelInboundStream<ByteBuffer>, NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws -> Void) async throws {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        try await channel.executeThenClose { inbound, outbound in
            try await body(inbound, outbound)
        }
    }

    /// Connects, sends `opening`, then one more byte every 200 ms — `bytes` of them — and reads
    /// until the server closes: what it answered, and how long it took to close.
    static func trickle(port: Int, opening: String, byte: String, bytes: Int) async throws -> (received: String, after: Duration) {
        let started = ContinuousClock.now
        var received = ""
        try await Self.raw(port: port) { inbound, outbound in
            do {
                try await outbound.write(ByteBuffer(string: opening))
            } catch let error as ChannelError where error == .ioOnClosedChannel {
                // On a loaded machine a short timeout can pass between the accept and this
                // first write: the server has closed it already.
            }
            let trickle = Task {
                for _ in 0..<bytes {
                    try await Task.sleep(for: .milliseconds(200))
                    try await outbound.write(ByteBuffer(string: byte))
                }
            }
            do {
                for try await chunk in inbound { received += String(buffer: chunk) }
            } catch let error as IOError where error.errnoCode == ECONNRESET {
                // Closing with the client's trickled bytes unread makes the kernel send a
                // reset instead of a clean end: closed either way.
            } catch let error as ChannelError where error == .ioOnClosedChannel {
                // Closed before reading began: closed all the same.
            }
            trickle.cancel()
        }
        return (received, ContinuousClock.now - started)
    }

    @Test func aSlowHeaderClientIsDisconnected() async throws {
        var app = try await TestApp.make()
        app.server.port = 0
        app.server.limits.headerTimeout = .seconds(1)
        try await app.test(.live) { client in
            // A header byte every 200 ms: 20 s worth, far past the header timeout.
            let outcome = try await Self.trickle(
                port: try #require(client.port), opening: "GET /healthz HTTP/1.1\r\nHost: localhost\r\n", byte: "X", bytes: 100
            )
            #expect(outcome.received.isEmpty)
            // Closed by the server long before the trickle would have finished.
            #expect(outcome.after < .seconds(10))
        }
    }

    @Test func aClientTricklingItsBodyIsCutOffAtTheRequestTimeout() async throws {
        var app = try await TestApp.make()
        app.server.port = 0
        app.server.limits.requestTimeout = .seconds(1)
        try await app.test(.live) { client in
            // A whole head, then a body announced at 200 bytes sent a byte every 200 ms: 40 s
            // worth. Each byte is traffic, so the idle timeout never fires.
            let outcome = try await Self.trickle(
                port: try #require(client.port),
                opening: """
                    POST /v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                    Content-Length: 200\r\n\r\n{"email":
                    """,
                byte: " ", bytes: 190
            )
            // Answered as timed out, if the answer got through before the close, and never from
            // a part of the body.
            if !outcome.received.isEmpty {
                #expect(outcome.received.hasPrefix("HTTP/1.1 503"))
                #expect(outcome.received.contains("request_timeout"))
            }
            // Closed by the server at the request timeout, long before the body would be complete.
            #expect(outcome.after < .seconds(10))
        }
    }

    @Test func aKeepAliveConnectionServesRequestsWithinTheHeaderTimeout() async throws {
        var app = try await TestApp.make()
        app.server.port = 0
        // Each pause is a third of the timeout (room for a loaded machine), and the four requests
        // together take longer than it: a timer not restarted after each response would end
        // the connection.
        app.server.limits.headerTimeout = .seconds(5)
        try await app.test(.live) { client in
            let port = try #require(client.port)
            try await Self.raw(port: port) { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                for _ in 0..<4 {
                    try await outbound.write(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"))
                    var text = ""
                    while !text.contains("{\"status\":\"ok\"}") {
                        guard let chunk = try await iterator.next() else { throw TestFailure("closed early") }
                        text += String(buffer: chunk)
                    }
                    #expect(text.hasPrefix("HTTP/1.1 200"))
                    try await Task.sleep(for: .milliseconds(1700))
                }
            }
        }
    }

    /// Sends raw bytes and returns everything the server answers until it closes.
    static func exchange(port: Int, _ bytes: String) async throws -> String {
        var text = ""
        try await Self.raw(port: port) { inbound, outbound in
            try await outbound.write(ByteBuffer(string: bytes))
            for try await chunk in inbound { text += String(buffer: chunk) }
        }
        return text
    }

    @Test func unparsableRequestsGetProblemDocumentsToo() async throws {
        var app = try await TestApp.make()
        app.server.port = 0
        app.server.limits.maximumHeaderSize = 8 * 1024
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let big = try await Self.exchange(port: port, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: \(String(repeating: "a", count: 10_000))\r\n\r\n")
            #expect(big.hasPrefix("HTTP/1.1 431"), "\(big)")
            #expect(big.lowercased().contains("content-type: application/problem+json"))
            #expect(big.contains("/problems/header-fields-too-large"))
            let garbage = try await Self.exchange(port: port, "BLAH\u{1}/ nonsense\r\n\r\n")
            #expect(garbage.hasPrefix("HTTP/1.1 400"), "\(garbage)")
            #expect(garbage.contains("/problems/malformed-request"))
            // Under the limit, the same server answers normally.
            let fine = try await Self.exchange(port: port, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Small: \(String(repeating: "a", count: 1_000))\r\n\r\n")
            #expect(fine.hasPrefix("HTTP/1.1 200"), "\(fine)")
        }
    }

    @Test func anOversizedBodyIsRefusedBeforeItIsSent() async throws {
        var app = try await TestApp.make()
        app.server.port = 0
        try await app.test(.live) { client in
            let port = try #require(client.port)
            try await Self.raw(port: port) { inbound, outbound in
                // Announce 100 MiB, send 1 KiB, then wait: the answer must come without the rest.
                try await outbound.write(ByteBuffer(string: "POST /v1/auth/signup HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n"))
                try await outbound.write(ByteBuffer(repeating: UInt8(ascii: " "), count: 1024))
                var text = ""
                for try await chunk in inbound {
                    text += String(buffer: chunk)
                    if text.contains("\r\n\r\n"), text.contains("}") { break }
                }
                #expect(text.hasPrefix("HTTP/1.1 413"), "\(text)")
                #expect(text.lowercased().contains("content-type: application/problem+json"))
                #expect(text.contains("/problems/content-too-large"))
            }
        }
    }

    @Test func aRefusedBodyEndsTheConnectionInsteadOfServingWhatFollowsIt() async throws {
        var app = try await TestApp.make()
        app.server.port = 0
        app.server.limits.maximumBodySize = 4096
        try await app.test(.live) { client in
            let port = try #require(client.port)
            // The whole refused body, then a second request on the same connection.
            let body = String(repeating: " ", count: 8000)
            let text = try await Self.exchange(port: port, """
                POST /v1/auth/signup HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 8000\r\n\r\n\(body)\
                GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n
                """)
            #expect(text.hasPrefix("HTTP/1.1 413"), "\(text)")
            #expect(text.lowercased().contains("connection: close"))
            #expect(text.components(separatedBy: "HTTP/1.1 ").count == 2, "only the 413 is answered: \(text)")
            #expect(!text.contains("\"status\":\"ok\""))
        }
    }

    @Test func aRefusedBodyOverHTTP2EndsTheStreamButNotTheConnection() async throws {
        try await Self.withSelfSignedServer(maximumBodySize: 4096) { port in
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .none
            let httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
            do {
                var request = HTTPClientRequest(url: "https://localhost:\(port)/v1/auth/login")
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(repeating: UInt8(ascii: " "), count: 8000))
                let refused = try await httpClient.execute(request, timeout: .seconds(10))
                #expect(refused.status == .payloadTooLarge)
                #expect(refused.version == .http2)
                // No connection-specific field in HTTP/2 (it would be a protocol error).
                #expect(refused.headers["Connection"].isEmpty)
                let body = try await refused.body.collect(upTo: 1 << 16)
                #expect(String(buffer: body).contains("/problems/content-too-large"))
                // The connection carries on.
                let next = try await httpClient.execute(HTTPClientRequest(url: "https://localhost:\(port)/healthz"), timeout: .seconds(10))
                #expect(next.status == .ok)
            } catch {
                try await httpClient.shutdown()
                throw error
            }
            try await httpClient.shutdown()
        }
    }
}
