import HTTPTypes
import NIOCore
import NIOHTTPTypes
import NIOHTTPTypesHTTP2

/// Ends a connection after a response that says `Connection: close` — a 413 whose body was
/// never read, above all. Hummingbird only looks at the request's header, so without this it
/// would read the rest of the refused body and serve the next request on the same connection.
///
/// The close lingers, as nginx's does: the response is flushed, the sending side shut, and
/// whatever the client still sends is read and dropped until it stops or `linger` passes.
/// Closing at once with unread data would make the kernel reset the connection, which can
/// destroy the response before the client has read it.
///
/// On an HTTP/2 stream the header itself is not allowed (connection-specific fields are a
/// protocol error there, which used to drop the whole connection): it is removed, and the
/// stream — not the connection — is reset once the response is complete, which tells the
/// client to stop sending the body.
final class CloseAfterResponseHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let linger: TimeAmount
    /// The response being written said `Connection: close`.
    private var closeAtEnd = false
    /// The response has gone out; what arrives now is dropped.
    private var lingering = false
    /// This pipeline serves one HTTP/2 stream.
    private var isHTTP2Stream = false

    /// Fields that describe one HTTP/1 connection and are forbidden in HTTP/2 (RFC 9113, 8.2.2).
    private static let connectionSpecific: [HTTPField.Name] = [
        .connection, HTTPField.Name("Keep-Alive")!, HTTPField.Name("Proxy-Connection")!, .transferEncoding, HTTPField.Name("Upgrade")!,
    ]

    init(linger: TimeAmount = .seconds(2)) {
        self.linger = linger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // Asking the channel for an HTTP/2 option would trap on a plain socket; the codec that
        // turns HTTP/2 frames into request parts sits in stream pipelines only.
        self.isHTTP2Stream = (try? context.pipeline.syncOperations.handler(type: HTTP2FramePayloadToHTTPServerCodec.self)) != nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.lingering else { return }
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if self.lingering, let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch self.unwrapOutboundIn(data) {
        case .head(var head) where head.status.kind != .informational:
            self.closeAtEnd = head.headerFields[.connection]?.lowercased().contains("close") == true
            if self.isHTTP2Stream {
                for name in Self.connectionSpecific { head.headerFields[name] = nil }
                context.write(self.wrapOutboundOut(.head(head)), promise: promise)
                return
            }
        case .end where self.closeAtEnd && self.isHTTP2Stream:
            self.closeAtEnd = false
            let channel = context.channel
            context.writeAndFlush(data).whenComplete { result in
                promise?.completeWith(result)
                channel.close(promise: nil)
            }
            return
        case .end where self.closeAtEnd:
            self.closeAtEnd = false
            self.lingering = true
            let written = promise ?? context.eventLoop.makePromise()
            context.writeAndFlush(data, promise: written)
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            written.futureResult.whenComplete { _ in
                let (handler, context) = loopBound.value
                handler.shutDown(context)
            }
            return
        default:
            break
        }
        context.write(data, promise: promise)
    }

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
}
