import AtriumHTTP
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// Keeps every log record, for tests that read the log.
final class CapturedLog: Sendable {
    struct Record: Sendable {
        let message: String
        let metadata: [String: String]
    }

    private let records = Mutex<[Record]>([])

    var all: [Record] { self.records.withLock { $0 } }

    func logger() -> Logger {
        var logger = Logger(label: "captured") { _ in Handler(log: self) }
        logger.logLevel = .info
        return logger
    }

    struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { self.metadata[key] }
            set { self.metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var merged = self.metadata
            for (key, value) in event.metadata ?? [:] { merged[key] = value }
            let record = Record(message: "\(event.message)", metadata: merged.mapValues { "\($0)" })
            self.log.records.withLock { $0.append(record) }
        }
    }
}

@Suite struct AccessLogTests {
    @Test func oneStructuredLinePerRequestWithTheRouteTemplateAndNoSecrets() async throws {
        let log = CapturedLog()
        let access = CapturedAccessLog()
        var app = try await TestApp.make()
        app.server.accessLog = true
        app.server.accessLogFormat = .json
        app.server.accessLogSink = access.sink
        app.logger = log.logger()
        try await app.test { client in
            let owner = try await client.signUp("logged@example.com", tenant: "Logged")
            let created = try await client.call(.post, "/v1/collections", token: owner.accessToken, json: ["name": "notes", "fields": ["body": ["type": "text"]]])
            #expect(created.status == .created)
            let record = try await client.call(.post, "/v1/collections/notes/records", token: owner.accessToken, json: ["body": "hello"])
            let id = try #require(record.string("id"))
            _ = try await client.call(.get, "/v1/collections/notes/records/\(id)", token: owner.accessToken, headers: [.init("X-Request-ID")!: "trace-me-42"])

            try await waitUntil { access.lines.count >= 4 }
            let lines = try access.lines.map { try AccessLogFormatTests.fields(of: $0) }
            #expect(lines.count == 4)
            #expect(lines.allSatisfy { $0["message"] == "request" && $0["level"] == "info" })
            let get = try #require(lines.first { $0["hb.request.id"] == "trace-me-42" })
            #expect(get["http.method"] == "GET")
            #expect(get["http.route"] == "/v1/collections/{name}/records/{id}")
            #expect(get["http.status"] == "200")
            #expect(get["tenant.id"] == owner.tenantID)
            #expect(get["user.id"] == owner.userID)
            #expect(Double(get["duration_ms"] ?? "") != nil)
            #expect(get["client.address"] == "192.0.2.1")
            // Neither the password, nor tokens, nor record ids in paths reach the log.
            let everything = log.all.map { "\($0.message) \($0.metadata)" }.joined(separator: "\n") + access.lines.joined(separator: "\n")
            #expect(!everything.contains("correct horse battery"))
            #expect(!everything.contains(owner.accessToken))
            #expect(!everything.contains(owner.refreshToken))
            #expect(!everything.contains(id))
        }
    }
}

@Suite struct ConnectionLimitTests {
    @Test func connectionsBeyondTheCapWaitUntilOneCloses() async throws {
        var app = try await TestApp.make()
        app.server.limits.maximumConnections = 2
        let connections = app.services.connections
        try await app.serve { port in
            let group = MultiThreadedEventLoopGroup.singleton
            func connect() async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
                try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port) { channel in
                    channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
                }
            }
            func request(_ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws {
                try await outbound.write(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"))
            }
            // The accept loop takes up to four queued connections per wake-up and the cap is
            // checked between wake-ups: the readiness probe of `serve`, still open or queued
            // with the first two, would be a third. Start once it has been accepted and closed.
            try await waitUntil(timeout: .seconds(15)) { connections.snapshot.accepted >= 1 && connections.snapshot.open == 0 }
            // Two keep-alive connections that have been served hold both slots.
            let first = try await connect()
            let second = try await connect()
            try await first.executeThenClose { inbound1, outbound1 in
                var iterator1 = inbound1.makeAsyncIterator()
                try await request(outbound1)
                #expect(try await iterator1.next() != nil)
                try await second.executeThenClose { inbound2, outbound2 in
                    var iterator2 = inbound2.makeAsyncIterator()
                    try await request(outbound2)
                    #expect(try await iterator2.next() != nil)

                    // The server has stopped accepting at the cap: it declined to accept more
                    // with two open, and only a close reopens the accept loop.
                    try await waitUntil(timeout: .seconds(15)) { connections.snapshot.pauses > 0 }
                    let atCap = connections.snapshot
                    #expect(atCap.open == 2)

                    let third = try await connect()
                    try await third.executeThenClose { inbound3, outbound3 in
                        try await request(outbound3)
                        #expect(connections.snapshot.accepted == atCap.accepted, "a third connection was accepted past the cap of 2")
                        // Freeing a slot lets it in, and it is served.
                        try await second.channel.close()
                        var iterator3 = inbound3.makeAsyncIterator()
                        #expect(try await iterator3.next() != nil)
                        let after = connections.snapshot
                        #expect(after.accepted == atCap.accepted + 1)
                        #expect(after.mostOpen == 2, "the server held \(after.mostOpen) connections at once")
                    }
                }
            }
        }
    }
}

@Suite struct UnexpectedErrorTests {
    @Test func anUnexpectedFailureIsAGeneric500WithTheDetailInTheLog() async throws {
        let log = CapturedLog()
        var app = try await TestApp.make()
        app.logger = log.logger()
        app.server.accessLog = false
        let database = app.database
        try await app.test { client in
            let owner = try await client.signUp("broken@example.com", tenant: "Broken")
            // An administrator's mistake the service cannot plan for.
            try await database.withSuperuser { admin in
                try await admin.simpleQuery("REVOKE SELECT ON atrium.collections FROM atrium_app")
            }
            let response = try await client.call(.get, "/v1/collections", token: owner.accessToken)
            ErrorAndLimitTests.expectProblem(response, .internalServerError, type: "internal-error")
            #expect(!response.body.contains("permission"), "\(response.body)")
            #expect(!response.body.contains("collections"), "\(response.body)")
            let requestID = try #require(response.string("requestId"))
            let logged = try #require(log.all.first { $0.message == "unhandled error" })
            #expect(logged.metadata["hb.request.id"] == requestID)
            #expect(logged.metadata["error"]?.contains("permission denied") == true)
            try await database.withSuperuser { admin in
                try await admin.simpleQuery("GRANT SELECT ON atrium.collections TO atrium_app")
            }
        }
    }
}
