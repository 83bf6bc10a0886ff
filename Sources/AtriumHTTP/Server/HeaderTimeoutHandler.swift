import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Closes an HTTP/1 connection whose client does not send a complete request head in time —
/// counted from the connection's start and again from the end of each response — so a client
/// trickling header bytes (slowloris) cannot hold a connection and its slot forever. The idle
/// timeout alone does not catch it: every trickled byte counts as traffic.
final class HeaderTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?
    /// When the wait for the current request head began; nil while a request is being served.
    private var waitingSince: NIODeadline?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.startWaiting(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.stop()
    }

    func channelActive(context: ChannelHandlerContext) {
        self.startWaiting(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.stop()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = self.unwrapInboundIn(data) { self.waitingSince = nil }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = self.unwrapOutboundIn(data) { self.startWaiting(context) }
        context.write(data, promise: promise)
    }

    /// Marks the start of a wait. One timer per connection is kept scheduled while waits happen;
    /// marking is a timestamp, so a busy keep-alive connection does not reschedule per request.
    private func startWaiting(_ context: ChannelHandlerContext) {
        self.waitingSince = .now()
        if self.timer == nil { self.schedule(context, at: .now() + self.timeout) }
    }

    private func schedule(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.timer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = loopBound.value
            handler.timer = nil
            guard let since = handler.waitingSince else { return }  // serving; the next wait re-arms
            let due = since + handler.timeout
            if due <= .now() {
                context.close(promise: nil)
            } else {
                handler.schedule(context, at: due)
            }
        }
    }

    private func stop() {
        self.timer?.cancel()
        self.timer = nil
        self.waitingSince = nil
    }
}
