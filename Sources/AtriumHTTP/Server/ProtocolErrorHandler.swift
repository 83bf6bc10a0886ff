import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Answers requests that cannot even be parsed — a request head over the size limit, a
/// malformed request line — with a problem document like every other error (431 or 400), then
/// closes the connection; without it the client would get a bare 400 with no body.
final class ProtocolErrorHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Whether a response is under way (then only closing is left to do).
    private var responding = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch self.unwrapOutboundIn(data) {
        case .head: self.responding = true
        case .end: self.responding = false
        case .body: break
        }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        guard !self.responding else {
            context.close(promise: nil)
            return
        }
        let problem: Problem
        switch parserError {
        case .headerOverflow:
            problem = Problem(.headerFieldsTooLarge, detail: "the request head is larger than the server accepts")
        default:
            problem = Problem(.malformedRequest, detail: "the request is not valid HTTP/1.1 (\(parserError))")
        }
        let body = problem.body(requestID: RequestIdentifier.generate())
        let head = HTTPResponse(status: HTTPResponse.Status(code: problem.status), headerFields: [
            .contentType: "application/problem+json", .contentLength: String(body.readableBytes), .connection: "close",
        ])
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        context.write(self.wrapOutboundOut(.body(body)), promise: nil)
        let channel = context.channel
        context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }
}
