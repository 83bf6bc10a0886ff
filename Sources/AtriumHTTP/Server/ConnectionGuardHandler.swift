import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP2

/// The server's rules for one connection (or one HTTP/2 stream), in one handler because every
/// request part passes each handler of the pipeline: three handlers cost three hops and three
/// casts of every part, which measured as a fifth of `/healthz`'s CPU.
///
/// - **Unparsable requests** — a request head over the size limit, a malformed request line — are
///   answered with a problem document like every other error (431 or 400), then the connection
///   is closed; without this the client would get a bare 400 with no body.
/// - **`Connection: close` on a response ends the connection** — a 413 whose body was never
///   read, above all. Hummingbird only looks at the request's header, so it would otherwise read
///   the rest of the refused body and serve the next request on the same connection. The close
///   lingers, as nginx's does: the response is flushed, the sending side shut, and whatever the
///   client still sends is read and dropped until it stops or `linger` passes. Closing at once
///   with unread data would make the kernel reset the connection, which can destroy the
///   response before the client has read it. On an HTTP/2 stream the header itself is not
///   allowed (connection-specific fields are a protocol error there, which used to drop the
///   whole connection): it is removed, and the stream — not the connection — is reset once the
///   response is complete, which tells the client to stop sending the body.
/// - **A request head must arrive in time**, counted from the connection's start and again from
///   the end of each response, so a client trickling header bytes (slowloris) cannot hold a
///   connection and its slot forever. The idle timeout alone does not catch it: every trickled
///   byte counts as traffic.
/// - **A request body that has not arrived by the request's deadline** is answered here (503,
///   `request_timeout`), since the handler is waiting for it, and the connection closed.
final class ConnectionGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let headerTimeout: TimeAmount
    private let linger: TimeAmount
    /// This pipeline serves one HTTP/2 stream.
    private var isHTTP2Stream = false
    /// A response is under way (a protocol error then only closes).
    private var responding = false
    /// The response being written said `Connection: close`.
    private var closeAtEnd = false
    /// The response has gone out and the connection is closing; what arrives now is dropped.
    private var lingering = false
    /// When the wait for the current request head began; nil while a request is being served.
    private var waitingSince: NIODeadline?
    private var headerTimer: Scheduled<Void>?

    /// Fields that describe one HTTP/1 connection and are forbidden in HTTP/2 (RFC 9113, 8.2.2).
    private static let connectionSpecific: [HTTPField.Name] = [
        .connection, HTTPField.Name("Keep-Alive")!, HTTPField.Name("Proxy-Connection")!, .transferEncoding, HTTPField.Name("Upgrade")!,
    ]

    init(headerTimeout: TimeAmount, linger: TimeAmount = .seconds(2)) {
        self.headerTimeout = headerTimeout
        self.linger = linger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // Asking the channel for an HTTP/2 option would trap on a plain socket; the codec that
        // turns HTTP/2 frames into request parts sits in stream pipelines only.
        self.isHTTP2Stream = (try? context.pipeline.syncOperations.handler(type: HTTP2FramePayloadToHTTPServerCodec.self)) != nil
        if context.channel.isActive { self.startWaiting(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.stopWaiting()
    }

    func channelActive(context: ChannelHandlerContext) {
        self.startWaiting(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.stopWaiting()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.lingering else { return }
        // Only the first part of a request can be its head; the others pass without a cast.
        if self.waitingSince != nil, case .head = self.unwrapInboundIn(data) { self.waitingSince = nil }
        context.fireChannelRead(data)
    }

    /// Sent down the pipeline by a request whose body did not arrive by its deadline: the
    /// handler is waiting for that body and cannot answer, so it is answered here (503) and the
    /// connection closed.
    struct BodyTimedOut {
        let requestID: String
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? BodyTimedOut {
            let problem = Problem(
                .unavailable, detail: "the request body did not arrive within the request timeout", reason: "request_timeout",
                headers: [.retryAfter: "1"]
            )
            self.answerAndClose(problem, requestID: event.requestID, context: context)
            return
        }
        if self.lingering, let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch self.unwrapOutboundIn(data) {
        case .head(var head):
            self.responding = true
            guard head.status.kind != .informational else { break }
            self.closeAtEnd = head.headerFields[.connection]?.lowercased().contains("close") == true
            if self.isHTTP2Stream {
                for name in Self.connectionSpecific { head.headerFields[name] = nil }
                context.write(self.wrapOutboundOut(.head(head)), promise: promise)
                return
            }
        case .body:
            break
        case .end:
            self.responding = false
            self.startWaiting(context)
            guard self.closeAtEnd else { break }
            self.closeAtEnd = false
            if self.isHTTP2Stream {
                let channel = context.channel
                context.writeAndFlush(data).whenComplete { result in
                    promise?.completeWith(result)
                    channel.close(promise: nil)
                }
            } else {
                self.lingering = true
                let written = promise ?? context.eventLoop.makePromise()
                context.writeAndFlush(data, promise: written)
                let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                written.futureResult.whenComplete { _ in
                    let (handler, context) = loopBound.value
                    handler.shutDown(context)
                }
            }
            return
        }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        let problem: Problem
        switch parserError {
        case .headerOverflow:
            problem = Problem(.headerFieldsTooLarge, detail: "the request head is larger than the server accepts")
        default:
            problem = Problem(.malformedRequest, detail: "the request is not valid HTTP/1.1 (\(parserError))")
        }
        self.answerAndClose(problem, requestID: RequestIdentifier.generate(), context: context)
    }

    /// Answers with `problem` and closes; only closes when a response is under way already.
    private func answerAndClose(_ problem: Problem, requestID: String, context: ChannelHandlerContext) {
        guard !self.responding else {
            context.close(promise: nil)
            return
        }
        self.responding = true
        let body = problem.body(requestID: requestID)
        var head = HTTPResponse(status: HTTPResponse.Status(code: problem.status), headerFields: problem.headers)
        head.headerFields[.contentType] = "application/problem+json"
        head.headerFields[.contentLength] = String(body.readableBytes)
        if !self.isHTTP2Stream { head.headerFields[.connection] = "close" }
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        context.write(self.wrapOutboundOut(.body(body)), promise: nil)
        let channel = context.channel
        context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    /// The lingering close: shut the sending side, drop what still comes, close after `linger`.
    private func shutDown(_ context: ChannelHandlerContext) {
        let channel = context.channel
        // Half-closing is not possible on every channel (an HTTP/2 stream, some TLS set-ups):
        // then close outright.
        let halfClosed = context.eventLoop.makePromise(of: Void.self)
        context.close(mode: .output, promise: halfClosed)
        halfClosed.futureResult.whenFailure { _ in channel.close(promise: nil) }
        context.eventLoop.scheduleTask(in: self.linger) { channel.close(promise: nil) }
        context.read()
    }

    /// Marks the start of a wait for a request head. One timer per connection is kept scheduled
    /// while waits happen; marking is a timestamp, so a busy keep-alive connection does not
    /// reschedule per request.
    private func startWaiting(_ context: ChannelHandlerContext) {
        self.waitingSince = .now()
        if self.headerTimer == nil { self.scheduleHeaderTimer(context, at: .now() + self.headerTimeout) }
    }

    private func scheduleHeaderTimer(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.headerTimer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = loopBound.value
            handler.headerTimer = nil
            guard let since = handler.waitingSince else { return }  // serving; the next wait re-arms
            let due = since + handler.headerTimeout
            if due <= .now() {
                context.close(promise: nil)
            } else {
                handler.scheduleHeaderTimer(context, at: due)
            }
        }
    }

    private func stopWaiting() {
        self.headerTimer?.cancel()
        self.headerTimer = nil
        self.waitingSince = nil
    }
}
