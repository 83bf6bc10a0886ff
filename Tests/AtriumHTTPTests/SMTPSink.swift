import AtriumCrypto
import AtriumMail
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// An SMTP server for tests: takes every mail (after STARTTLS when it has a certificate), keeps
/// what arrived, and answers `RCPT TO` with failures the test queues.
final class SMTPSink: Sendable {
    struct Received: Sendable {
        let from: String
        let to: String
        /// The message as sent, dot-stuffing undone.
        let data: String
        let overTLS: Bool
        let authenticatedAs: String?

        /// The decoded body of the part with `type` (text/plain or text/html).
        func body(_ type: String) -> String? {
            guard let start = self.data.range(of: "Content-Type: \(type); charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n") else {
                return nil
            }
            let rest = self.data[start.upperBound...]
            let end = rest.range(of: "\r\n--=_atrium_")?.lowerBound ?? rest.endIndex
            return QuotedPrintable.decode(String(rest[..<end]))
        }

        func header(_ name: String) -> String? {
            let head = self.data.components(separatedBy: "\r\n\r\n").first ?? ""
            // Folded lines continue with a space.
            let unfolded = head.replacingOccurrences(of: "\r\n ", with: " ")
            for line in unfolded.components(separatedBy: "\r\n") where line.lowercased().hasPrefix(name.lowercased() + ": ") {
                return String(line.dropFirst(name.count + 2))
            }
            return nil
        }

        /// The token after `#token=` in the text part's link.
        var token: String? {
            guard let text = self.body("text/plain"), let range = text.range(of: "#token=") else { return nil }
            return String(text[range.upperBound...].prefix { !$0.isWhitespace })
        }

        /// The short code (`ABCD-EFGH`) in the text part.
        var code: String? {
            guard let text = self.body("text/plain"), let range = text.range(of: "code in the app: ") else { return nil }
            return String(text[range.upperBound...].prefix(9))
        }
    }

    struct State {
        var received: [Received] = []
        /// The AUTH mechanisms EHLO offers.
        var mechanisms = "PLAIN LOGIN"
        /// Answer nothing after DATA's end (a server that hangs).
        var hangAfterData = false
        /// Replies to the next `RCPT TO`s, in order (e.g. "451 try later").
        var rcptFailures: [String] = []
    }

    let state = Mutex(State())
    let channel: any Channel
    let port: Int
    /// The certificate's PEM file, when the sink offers STARTTLS (trust it with ATRIUM_SMTP_CA_FILE).
    let certificateFile: String?

    private init(channel: any Channel, port: Int, certificateFile: String?) {
        self.channel = channel
        self.port = port
        self.certificateFile = certificateFile
    }

    static func start(tls: Bool = false) async throws -> SMTPSink {
        var context: NIOSSLContext?
        var certificateFile: String?
        if tls {
            let certificate = try SelfSignedCertificate.make()
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("smtp-sink-\(UUID().uuidString).pem").path
            try certificate.certificatePEM.write(toFile: file, atomically: true, encoding: .utf8)
            certificateFile = file
            context = try NIOSSLContext(configuration: .makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(certificate.certificatePEM.utf8)).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(certificate.keyPEM.utf8), format: .pem))
            ))
        }
        let box = Mutex<SMTPSink?>(nil)
        let tlsContext = context
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(SinkSession(sink: { box.withLock { $0! } }, tls: tlsContext))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let sink = SMTPSink(channel: channel, port: channel.localAddress!.port!, certificateFile: certificateFile)
        box.withLock { $0 = sink }
        return sink
    }

    var received: [Received] { self.state.withLock { $0.received } }

    func failNextRecipients(_ replies: [String]) {
        self.state.withLock { $0.rcptFailures += replies }
    }

    /// The mails to `recipient`, once there are at least `count` (or fails after `timeout`).
    func mails(to recipient: String, count: Int = 1, timeout: Duration = .seconds(10)) async throws -> [Received] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let mails = self.received.filter { $0.to.lowercased() == recipient.lowercased() }
            if mails.count >= count { return mails }
            guard ContinuousClock.now < deadline else {
                throw TestFailure("\(mails.count) of \(count) mails to \(recipient) arrived; the sink has \(self.received.map(\.to))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func stop() async {
        try? await self.channel.close()
        if let file = self.certificateFile { try? FileManager.default.removeItem(atPath: file) }
    }
}

/// One client connection of the sink.
private final class SinkSession: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let sink: () -> SMTPSink
    let tls: NIOSSLContext?
    var pending = ""
    var inData = false
    var dataLines: [String] = []
    var from = ""
    var to = ""
    var overTLS = false
    var user: String?
    /// Where an AUTH LOGIN exchange is: waiting for the user name, then the password.
    var loginStep = 0

    init(sink: @escaping () -> SMTPSink, tls: NIOSSLContext?) {
        self.sink = sink
        self.tls = tls
    }

    func channelActive(context: ChannelHandlerContext) {
        self.reply("220 sink ESMTP", context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = self.unwrapInboundIn(data)
        self.pending += buffer.readString(length: buffer.readableBytes) ?? ""
        while let range = self.pending.range(of: "\r\n") {
            let line = String(self.pending[..<range.lowerBound])
            self.pending.removeSubrange(..<range.upperBound)
            self.handle(line, context: context)
        }
    }

    private func handle(_ line: String, context: ChannelHandlerContext) {
        if self.inData {
            if line == "." {
                self.inData = false
                let received = SMTPSink.Received(
                    from: self.from, to: self.to, data: self.dataLines.joined(separator: "\r\n") + "\r\n", overTLS: self.overTLS, authenticatedAs: self.user
                )
                let hang = self.sink().state.withLock { state in
                    state.received.append(received)
                    return state.hangAfterData
                }
                self.dataLines = []
                if !hang { self.reply("250 queued", context: context) }
            } else {
                self.dataLines.append(line.hasPrefix("..") ? String(line.dropFirst()) : line)
            }
            return
        }
        if self.loginStep == 1 {
            self.user = Data(base64Encoded: line).map { String(decoding: $0, as: UTF8.self) }
            self.loginStep = 2
            self.reply("334 UGFzc3dvcmQ6", context: context)
            return
        } else if self.loginStep == 2 {
            self.loginStep = 0
            self.reply("235 ok", context: context)
            return
        }
        let upper = line.uppercased()
        if upper.hasPrefix("EHLO") {
            let mechanisms = self.sink().state.withLock { $0.mechanisms }
            var lines = ["250-sink", "250-AUTH \(mechanisms)", "250-8BITMIME"]
            if self.tls != nil && !self.overTLS { lines.append("250-STARTTLS") }
            lines.append("250 SMTPUTF8")
            self.reply(lines.joined(separator: "\r\n"), context: context)
        } else if upper == "STARTTLS", let tls = self.tls {
            self.reply("220 go ahead", context: context)
            try? context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), position: .first)
            self.overTLS = true
        } else if upper.hasPrefix("AUTH PLAIN ") {
            let decoded = Data(base64Encoded: String(line.dropFirst(11))).map { String(decoding: $0, as: UTF8.self) } ?? ""
            self.user = decoded.split(separator: "\0", omittingEmptySubsequences: false).dropFirst().first.map(String.init)
            self.reply("235 ok", context: context)
        } else if upper == "AUTH LOGIN" {
            self.loginStep = 1
            self.reply("334 VXNlcm5hbWU6", context: context)
        } else if upper.hasPrefix("MAIL FROM:") {
            self.from = Self.address(line)
            self.reply("250 ok", context: context)
        } else if upper.hasPrefix("RCPT TO:") {
            self.to = Self.address(line)
            let failure = self.sink().state.withLock { $0.rcptFailures.isEmpty ? nil : $0.rcptFailures.removeFirst() }
            self.reply(failure ?? "250 ok", context: context)
        } else if upper == "DATA" {
            self.inData = true
            self.reply("354 go on", context: context)
        } else if upper == "RSET" {
            self.reply("250 reset", context: context)
        } else if upper == "QUIT" {
            self.reply("221 bye", context: context)
            context.close(promise: nil)
        } else {
            self.reply("502 unknown command", context: context)
        }
    }

    private static func address(_ line: String) -> String {
        guard let open = line.firstIndex(of: "<"), let close = line.firstIndex(of: ">") else { return "" }
        return String(line[line.index(after: open)..<close])
    }

    private func reply(_ text: String, context: ChannelHandlerContext) {
        context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: text + "\r\n")), promise: nil)
    }
}
