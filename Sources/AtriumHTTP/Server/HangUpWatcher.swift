import NIOCore

/// Tells a long response that its client has gone. The server lets clients half-close
/// (`allowRemoteHalfClosure`), so a client that hangs up shows as an `inputClosed` event, not a
/// closed channel — and only once something reads the connection, which nothing does while one
/// response lasts. Added for the length of an event stream, with a read to see the EOF.
final class HangUpWatcher: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny

    private let onHangUp: @Sendable () -> Void

    init(_ onHangUp: @escaping @Sendable () -> Void) {
        self.onHangUp = onHangUp
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            self.onHangUp()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.onHangUp()
        context.fireChannelInactive()
    }

    /// Watches `channel` while `body` runs.
    static func watching<T>(_ channel: any Channel, onHangUp: @escaping @Sendable () -> Void, _ body: () async throws -> T) async throws -> T {
        let watcher = HangUpWatcher(onHangUp)
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(watcher, position: .first)
            channel.read()
        }.get()
        defer { channel.pipeline.removeHandler(watcher, promise: nil) }
        return try await body()
    }
}
