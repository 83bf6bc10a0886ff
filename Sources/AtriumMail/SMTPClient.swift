import AtriumCore
import AtriumCrypto
import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// One reply of an SMTP server: its code and the text of its lines.
struct SMTPReply: Sendable {
    let code: Int
    let lines: [String]
    var text: String { "\(self.code) " + self.lines.joined(separator: " / ") }
    var isPositive: Bool { (200..<400).contains(self.code) }
    var isPermanentFailure: Bool { (500..<600).contains(self.code) }
}

/// Why a mail (or a whole connection) failed: `permanent` when the server refused it for good
/// (5xx), otherwise worth trying again.
public struct SMTPFailure: Error, CustomStringConvertible, Sendable {
    public let permanent: Bool
    public let description: String

    static func transient(_ description: String) -> SMTPFailure { SMTPFailure(permanent: false, description: description) }
    static func refused(_ reply: SMTPReply, to what: String) -> SMTPFailure {
        SMTPFailure(permanent: reply.isPermanentFailure, description: "\(what) refused: \(reply.text)")
    }
}

/// An SMTP client on SwiftNIO: implicit TLS or STARTTLS with certificate and host name
/// verification (NIOSSL), AUTH PLAIN or LOGIN, pipelined nothing — one command, one reply —
/// and several mails over one connection.
public struct SMTPClient: Sendable {
    public struct Envelope: Sendable {
        public let from: String
        public let to: String
        /// The RFC 5322 message, lines ending in CRLF (dot-stuffed when sent).
        public let message: String

        public init(from: String, to: String, message: String) {
            self.from = from
            self.to = to
            self.message = message
        }
    }

    let configuration: SMTPConfiguration
    let tls: NIOSSLContext?

    public init(configuration: SMTPConfiguration) throws {
        self.configuration = configuration
        if configuration.security == .none {
            self.tls = nil
        } else {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            if let caFile = configuration.caFile {
                tls.trustRoots = .file(caFile)
            }
            self.tls = try NIOSSLContext(configuration: tls)
        }
    }

    /// Sends `envelopes` over one connection, in order. One result per envelope: a failure of
    /// the connection (refused, TLS, authentication, a timeout) is the result of every mail
    /// not yet sent.
    ///
    /// The whole conversation ends by `deadline` (the connection is closed then), so a server that
    /// answers each command just before the read timeout cannot hold a batch past its lease.
    public func send(_ envelopes: [Envelope], deadline: Duration = .seconds(120)) async -> [Result<Void, SMTPFailure>] {
        var results: [Result<Void, SMTPFailure>] = []
        do {
            let channel = try await self.connect()
            let underlying = channel.channel
            let closing = underlying.eventLoop.scheduleTask(in: .nanoseconds(deadline.nanoseconds)) { underlying.close(promise: nil) }
            defer { closing.cancel() }
            try await channel.executeThenClose { inbound, outbound in
                var conversation = Conversation(replies: inbound.makeAsyncIterator(), outbound: outbound, timeout: self.configuration.timeout)
                let extensions = try await self.open(&conversation, channel: channel.channel)
                for envelope in envelopes {
                    do {
                        try await self.transmit(envelope, extensions: extensions, over: &conversation)
                        results.append(.success(()))
                    } catch let failure as SMTPFailure where !conversation.closed {
                        results.append(.failure(failure))
                        // Start the next mail afresh.
                        let reset = try await conversation.command("RSET")
                        guard reset.code == 250 else { throw SMTPFailure.refused(reset, to: "RSET") }
                    }
                }
                _ = try? await conversation.command("QUIT")
            }
        } catch {
            let failure = error as? SMTPFailure ?? .transient("\(self.configuration.host):\(self.configuration.port): \(error)")
            results += Array(repeating: .failure(failure), count: envelopes.count - results.count)
        }
        return results
    }

    private func connect() async throws -> NIOAsyncChannel<SMTPReply, ByteBuffer> {
        let configuration = self.configuration
        let implicitTLS = configuration.security == .implicitTLS ? self.tls : nil
        let serverName = Self.serverName(configuration.host)
        let timeout = TimeAmount.nanoseconds(configuration.timeout.nanoseconds)
        return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(timeout)
            .connect(host: configuration.host, port: configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handlers = channel.pipeline.syncOperations
                    if let implicitTLS {
                        try handlers.addHandler(NIOSSLClientHandler(context: implicitTLS, serverHostname: serverName))
                    }
                    try handlers.addHandler(IdleStateHandler(readTimeout: timeout))
                    try handlers.addHandler(CloseWhenIdle())
                    try handlers.addHandler(ByteToMessageHandler(SMTPReplyDecoder()))
                    return try NIOAsyncChannel<SMTPReply, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
    }

    /// The greeting, EHLO, STARTTLS and AUTH; returns the extensions the server offers.
    private func open(_ conversation: inout Conversation, channel: any Channel) async throws -> Set<String> {
        let greeting = try await conversation.reply()
        guard greeting.code == 220 else { throw SMTPFailure.refused(greeting, to: "the connection") }
        var extensions = try await self.hello(&conversation)
        if self.configuration.security == .startTLS {
            guard extensions.contains("STARTTLS") else {
                throw SMTPFailure.transient("\(self.configuration.host) does not offer STARTTLS (use smtps:// for implicit TLS, or tls=none for a local relay)")
            }
            let ready = try await conversation.command("STARTTLS")
            guard ready.code == 220 else { throw SMTPFailure.refused(ready, to: "STARTTLS") }
            let tls = self.tls!
            let serverName = Self.serverName(self.configuration.host)
            try await channel.eventLoop.submit {
                try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName), position: .first)
            }.get()
            // What the server said before TLS counts for nothing now.
            extensions = try await self.hello(&conversation)
        }
        if let username = self.configuration.username {
            try await self.authenticate(&conversation, username: username, password: self.configuration.password ?? "", extensions: extensions)
        }
        return extensions
    }

    private func hello(_ conversation: inout Conversation) async throws -> Set<String> {
        let reply = try await conversation.command("EHLO \(self.configuration.heloName)")
        guard reply.code == 250 else { throw SMTPFailure.refused(reply, to: "EHLO") }
        // The first line is the server's name; each further one an extension and its parameters.
        var extensions: Set<String> = []
        for line in reply.lines.dropFirst() {
            let words = line.uppercased().split(separator: " ")
            guard let keyword = words.first else { continue }
            extensions.insert(String(keyword))
            if keyword == "AUTH" {
                for mechanism in words.dropFirst() { extensions.insert("AUTH=" + mechanism) }
            }
        }
        return extensions
    }

    private func authenticate(_ conversation: inout Conversation, username: String, password: String, extensions: Set<String>) async throws {
        // RFC 4954: standard base64 with padding.
        let encode = { (text: String) in Data(text.utf8).base64EncodedString() }
        if extensions.contains("AUTH=PLAIN") {
            let reply = try await conversation.command("AUTH PLAIN " + encode("\0\(username)\0\(password)"))
            guard reply.code == 235 else { throw SMTPFailure.transient("authentication refused: \(reply.text)") }
        } else if extensions.contains("AUTH=LOGIN") {
            var reply = try await conversation.command("AUTH LOGIN")
            guard reply.code == 334 else { throw SMTPFailure.transient("AUTH LOGIN refused: \(reply.text)") }
            reply = try await conversation.command(encode(username))
            guard reply.code == 334 else { throw SMTPFailure.transient("authentication refused: \(reply.text)") }
            reply = try await conversation.command(encode(password))
            guard reply.code == 235 else { throw SMTPFailure.transient("authentication refused: \(reply.text)") }
        } else {
            throw SMTPFailure.transient("\(self.configuration.host) offers neither AUTH PLAIN nor AUTH LOGIN")
        }
    }

    private func transmit(_ envelope: Envelope, extensions: Set<String>, over conversation: inout Conversation) async throws {
        for address in [envelope.from, envelope.to] where !Self.isSendable(address) {
            throw SMTPFailure(permanent: true, description: "\(address) cannot be written in an SMTP envelope")
        }
        let international = !envelope.to.unicodeScalars.allSatisfy(\.isASCII) || !envelope.from.unicodeScalars.allSatisfy(\.isASCII)
        if international && !extensions.contains("SMTPUTF8") {
            throw SMTPFailure(permanent: true, description: "\(envelope.to) is not ASCII and the server does not take SMTPUTF8")
        }
        let from = try await conversation.command("MAIL FROM:<\(envelope.from)>" + (international ? " SMTPUTF8" : ""))
        guard from.code == 250 else { throw SMTPFailure.refused(from, to: "MAIL FROM") }
        let recipient = try await conversation.command("RCPT TO:<\(envelope.to)>")
        guard recipient.code == 250 || recipient.code == 251 else { throw SMTPFailure.refused(recipient, to: "RCPT TO") }
        let data = try await conversation.command("DATA")
        guard data.code == 354 else { throw SMTPFailure.refused(data, to: "DATA") }
        let accepted = try await conversation.send(Self.dotStuffed(envelope.message))
        guard accepted.code == 250 else { throw SMTPFailure.refused(accepted, to: "the message") }
    }

    /// The message with every line that starts with "." given another one, ending in CRLF . CRLF.
    static func dotStuffed(_ message: String) -> String {
        var body = message.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        if body.hasSuffix("\n") { body.removeLast() }
        let lines = body.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasPrefix(".") ? "." + $0 : String($0) }
        return lines.joined(separator: "\r\n") + "\r\n.\r\n"
    }

    /// An address that cannot break out of `<…>` or the command line.
    static func isSendable(_ address: String) -> Bool {
        !address.isEmpty && address.utf8.count <= 254 && address.contains("@")
            && !address.unicodeScalars.contains { $0.value <= 32 || $0 == "<" || $0 == ">" || $0.value == 127 }
    }

    /// The name to send for SNI and check the certificate against (nil for an IP address).
    static func serverName(_ host: String) -> String? {
        host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
    }
}

/// One command at a time: write a line, read the reply.
struct Conversation {
    var replies: NIOAsyncChannelInboundStream<SMTPReply>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    let timeout: Duration
    var closed = false

    mutating func reply() async throws -> SMTPReply {
        guard let reply = try await self.replies.next() else {
            self.closed = true
            throw SMTPFailure.transient("the server closed the connection or sent nothing for \(Int(self.timeout.seconds)) s")
        }
        if reply.code == 421 { self.closed = true }
        return reply
    }

    mutating func command(_ line: String) async throws -> SMTPReply {
        try await self.send(line + "\r\n")
    }

    mutating func send(_ text: String) async throws -> SMTPReply {
        try await self.outbound.write(ByteBuffer(string: text))
        return try await self.reply()
    }
}

/// Closes the connection when the server has been silent for the read timeout.
final class CloseWhenIdle: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}

/// Splits the byte stream into replies: `250-first`, `250-second`, `250 last`.
struct SMTPReplyDecoder: ByteToMessageDecoder {
    typealias InboundOut = SMTPReply
    var lines: [String] = []

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > 4096 { throw SMTPFailure.transient("a reply line over 4 KiB") }
            return .needMoreData
        }
        var utf8 = buffer.readBytes(length: newline - buffer.readerIndex + 1)!
        while let last = utf8.last, last == 10 || last == 13 { utf8.removeLast() }
        let line = String(decoding: utf8, as: UTF8.self)
        guard utf8.count >= 3, let code = Int(String(decoding: utf8[0..<3], as: UTF8.self)), (200..<600).contains(code) else {
            throw SMTPFailure.transient("not an SMTP reply: \(line.prefix(100))")
        }
        self.lines.append(utf8.count > 4 ? String(decoding: utf8[4...], as: UTF8.self) : "")
        if utf8.count > 3, utf8[3] == UInt8(ascii: "-") {
            if self.lines.count > 100 { throw SMTPFailure.transient("a reply of over 100 lines") }
            return .continue
        }
        let reply = SMTPReply(code: code, lines: self.lines)
        self.lines = []
        context.fireChannelRead(Self.wrapInboundOut(reply))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try self.decode(context: context, buffer: &buffer) == .continue, buffer.readableBytes > 0 {}
        return .needMoreData
    }
}
