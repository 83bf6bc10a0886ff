import AtriumCore
import AtriumText
import AtriumWire
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// `GET /v1/events` (Server-Sent Events) and `POST /v1/events/tickets`.
///
/// A stream carries the record changes of the caller's tenant that the caller could read, each
/// with an opaque `id`; `Last-Event-ID` (or `?after=`) resumes after one, replaying what was
/// missed from the change log. Browsers' `EventSource` cannot send headers, so they open the
/// stream with a one-time `?ticket=` instead. The stream ends — with a final `close` event
/// saying why — when the session is revoked, the credential expires, the client falls too far
/// behind, or the server shuts down; a write that stalls for `stallTimeout` closes it.
struct EventRoutes {
    let feed: ChangeFeed
    let tickets: EventTickets
    let auth: AuthService
    let stallTimeout: Duration

    func register(on router: RouteRecorder) {
        router.post("v1/events/tickets") { request, context in
            let principal = try context.authenticated()
            let (ticket, expiresAt) = try await self.tickets.issue(for: principal, streamUntil: self.expiry(of: request))
            return Response.json(
                .object(JSONObject([("ticket", .string(ticket)), ("expiresAt", .string(RFC3339.string(expiresAt)))])),
                status: .created, headers: [.cacheControl: "no-store"]
            )
        }
        router.get("v1/events") { request, context in
            let query = request.uri.queryParameters
            let principal: Principal
            let expiresAt: Date?
            if let ticket = query.get("ticket") {
                guard context.principal == nil else {
                    throw AtriumError(.badRequest, "send either a ticket or an Authorization header, not both")
                }
                (principal, expiresAt) = try await self.tickets.redeem(ticket)
            } else {
                principal = try context.authenticated()
                expiresAt = self.expiry(of: request)
            }
            let subscription = try await self.feed.subscribe(
                principal, resume: try self.resumePoint(request, tenant: principal.tenant.tenantID),
                collections: try Self.collections(query.get("collections")), expiresAt: expiresAt
            )
            return Response(
                status: .ok,
                headers: [.contentType: "text/event-stream", .cacheControl: "no-store", HTTPField.Name("X-Accel-Buffering")!: "no"],
                body: self.stream(subscription, channel: context.channel, logger: context.logger)
            )
        }
    }

    private func stream(_ subscription: ChangeSubscription, channel: any Channel, logger: Logger) -> ResponseBody {
        let codec = self.feed.positions
        let stall = StallGuard(timeout: self.stallTimeout, channel: channel)
        return ResponseBody { writer in
            defer { subscription.end(.disconnected) }
            do {
                try await HangUpWatcher.watching(channel, onHangUp: { subscription.end(.disconnected) }) {
                    try await withGracefulShutdownHandler {
                        try await stall.run { try await Self.pump(subscription, codec: codec, stall: stall, into: &writer) }
                    } onGracefulShutdown: {
                        subscription.end(.shutdown)
                    }
                }
                try await writer.finish(nil)
            } catch {
                logger.info("event stream cut off", metadata: ["error": .string(String(describing: error))])
                throw error
            }
        }
    }

    /// Writes the subscription's items until it ends, then a `close` event saying why.
    private static func pump(
        _ subscription: ChangeSubscription, codec: ChangePositionCodec, stall: StallGuard, into writer: inout any ResponseBodyWriter
    ) async throws {
        let tenant = subscription.principal.tenant.tenantID
        // Sent at once so the client sees the stream open; the first frame completes it.
        try await stall.write { try await writer.write(ByteBuffer(string: "retry: 2000\n")) }
        while true {
            let (items, end) = try await subscription.next()
            var bytes: [UInt8] = []
            for item in items {
                ServerSentEvents.append(item, tenant: tenant, codec: codec, to: &bytes)
            }
            if let end, end != .disconnected { ServerSentEvents.appendClose(end, to: &bytes) }
            if !bytes.isEmpty {
                let buffer = ByteBuffer(bytes: bytes)
                try await stall.write { try await writer.write(buffer) }
            }
            if end != nil { return }
        }
    }

    /// When the access token of the request expires (nil for API keys).
    private func expiry(of request: Request) -> Date? {
        guard let header = request.headers[.authorization], let token = AuthenticationMiddleware.bearerToken(header) else { return nil }
        return self.auth.accessTokens.expiry(of: token)
    }

    /// From `Last-Event-ID`, else `?after=`.
    private func resumePoint(_ request: Request, tenant: UUID) throws -> ChangeFeed.ResumePoint {
        guard let id = request.headers[HTTPField.Name("Last-Event-ID")!] ?? request.uri.queryParameters.get("after"), !id.isEmpty else {
            return .now
        }
        return self.feed.positions.decode(id, tenant: tenant).map(ChangeFeed.ResumePoint.after) ?? .unknown
    }

    /// `?collections=a,b`: at most 50 names.
    static func collections(_ parameter: String?) throws -> Set<String>? {
        guard let parameter else { return nil }
        let names = parameter.split(separator: ",", omittingEmptySubsequences: true).map(String.init)
        guard !names.isEmpty, names.count <= 50, names.allSatisfy(CollectionDefinition.isValidName) else {
            throw AtriumError(.badRequest, "collections must be 1 to 50 collection names separated by commas", fields: [.init(field: "collections", reason: "is malformed")])
        }
        return Set(names)
    }
}

/// The `text/event-stream` framing of the feed's items.
enum ServerSentEvents {
    static func append(_ item: ChangeSubscription.Item, tenant: UUID, codec: ChangePositionCodec, to bytes: inout [UInt8]) {
        switch item {
        case .change(let change):
            Self.field("id", codec.encode(change.position, tenant: tenant), to: &bytes)
            Self.field("event", ChangeJSON.event(change), to: &bytes)
            bytes.append(contentsOf: "data: ".utf8)
            bytes.append(contentsOf: ChangeJSON.bytes(change))
            bytes.append(contentsOf: "\n\n".utf8)
        case .position(let position):
            // An id alone sets the client's Last-Event-ID without dispatching an event.
            Self.field("id", codec.encode(position, tenant: tenant), to: &bytes)
            bytes.append(UInt8(ascii: "\n"))
        case .reset(let position, let reason):
            Self.field("id", codec.encode(position, tenant: tenant), to: &bytes)
            Self.field("event", "reset", to: &bytes)
            Self.field("data", #"{"reason":"\#(reason.rawValue)"}"#, to: &bytes)
            bytes.append(UInt8(ascii: "\n"))
        case .heartbeat:
            bytes.append(contentsOf: ": heartbeat\n\n".utf8)
        }
    }

    static func appendClose(_ reason: ChangeSubscription.EndReason, to bytes: inout [UInt8]) {
        Self.field("event", "close", to: &bytes)
        Self.field("data", #"{"reason":"\#(reason.rawValue)"}"#, to: &bytes)
        bytes.append(UInt8(ascii: "\n"))
    }

    private static func field(_ name: String, _ value: String, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: name.utf8)
        bytes.append(contentsOf: ": ".utf8)
        bytes.append(contentsOf: value.utf8)
        bytes.append(UInt8(ascii: "\n"))
    }
}
