import AtriumCore
import AtriumMail
import Foundation
import Testing

/// The mail on the wire: MIME, quoted-printable, encoded words, dot-stuffing and the SMTP URL.
@Suite struct MailFormatTests {
    static let mail = OutgoingMail(
        id: UUID(uuidString: "0F6A8B9C-1D2E-4F30-8A1B-2C3D4E5F6071")!, tenant: nil, kind: .verifyEmail, recipient: "ann@example.com",
        subject: "Bestätigen Sie Ihre Adresse für Müller & Söhne — a rather long subject line that needs folding",
        text: "Zeile eins: ä ö ü\n.a line starting with a dot\ntrailing space \n" + String(repeating: "x", count: 200),
        html: "<p>caf\u{e9} = coffee</p>"
    )

    @Test func messagesAreSevenBitWithShortLinesAndDecodeBackExactly() throws {
        let rendered = MIMEMessage(mail: Self.mail, from: try #require(MailAddress(parsing: "Ätrium <no-reply@example.com>"))).rendered()
        #expect(rendered.utf8.allSatisfy { $0 < 128 }, "every byte is ASCII")
        for line in rendered.components(separatedBy: "\r\n") {
            #expect(line.utf8.count <= 78, "line too long: \(line)")
        }
        #expect(!rendered.replacingOccurrences(of: "\r\n", with: "").contains("\n"), "bare LF")
        #expect(rendered.contains("Message-ID: <0f6a8b9c-1d2e-4f30-8a1b-2c3d4e5f6071@example.com>"))
        #expect(rendered.contains("From: =?utf-8?B?"))
        #expect(rendered.contains("Subject: =?utf-8?B?"))
        #expect(rendered.contains("\r\n.a line") == false, "a leading dot is escaped in the body")

        let text = try #require(rendered.components(separatedBy: "quoted-printable\r\n\r\n").dropFirst().first?.components(separatedBy: "\r\n--=_atrium_").first)
        #expect(QuotedPrintable.decode(text) == Self.mail.text)
        // The subject's words decode back to the subject.
        let subjectLines = rendered.components(separatedBy: "\r\n").drop { !$0.hasPrefix("Subject:") }.prefix { $0.hasPrefix("Subject:") || $0.hasPrefix(" ") }
        let words = subjectLines.joined(separator: " ").dropFirst("Subject:".count).split(separator: " ")
        let decoded = words.map { word -> String in
            let payload = word.dropFirst("=?utf-8?B?".count).dropLast(2)
            return String(decoding: Data(base64Encoded: String(payload)) ?? Data(), as: UTF8.self)
        }.joined()
        #expect(decoded == Self.mail.subject)
    }

    @Test func headerInjectionThroughTheSubjectIsImpossible() {
        var mail = Self.mail
        mail.subject = "hello\r\nBcc: victim@example.com"
        let rendered = MIMEMessage(mail: mail, from: MailAddress(parsing: "no-reply@example.com")!).rendered()
        #expect(!rendered.contains("\r\nBcc:"))
    }

    @Test func smtpURLsSayHowToConnect() throws {
        let starttls = try SMTPConfiguration(url: "smtp://user%40example.com:p%3Ass@mail.example.com")
        #expect(starttls.security == .startTLS && starttls.port == 587 && starttls.username == "user@example.com" && starttls.password == "p:ss")
        #expect(starttls.redacted == "smtp://user@example.com:***@mail.example.com:587")
        let implicit = try SMTPConfiguration(url: "smtps://mail.example.com")
        #expect(implicit.security == .implicitTLS && implicit.port == 465)
        let plain = try SMTPConfiguration(url: "smtp://127.0.0.1:2525?tls=none")
        #expect(plain.security == .none && plain.port == 2525)
        // A password never crosses a network in the clear.
        #expect(throws: SMTPConfiguration.Invalid.self) { try SMTPConfiguration(url: "smtp://u:p@mail.example.com:25?tls=none") }
        #expect(throws: SMTPConfiguration.Invalid.self) { try SMTPConfiguration(url: "http://mail.example.com") }
        #expect(throws: SMTPConfiguration.Invalid.self) { try SMTPConfiguration(url: "smtp://mail.example.com?tls=maybe") }
    }

    @Test func theClientDotStuffsAndSendsSeveralMailsOverOneConnection() async throws {
        let sink = try await SMTPSink.start()
        let client = try SMTPClient(configuration: SMTPConfiguration(url: "smtp://u:secret@127.0.0.1:\(sink.port)?tls=none"))
        let message = "Subject: dots\r\n\r\n.one\r\n..two\r\n.\r\nend\r\n"
        sink.failNextRecipients(["", "550 5.1.1 unknown"].filter { !$0.isEmpty })
        let results = await client.send([
            SMTPClient.Envelope(from: "a@example.com", to: "first@example.com", message: message),
            SMTPClient.Envelope(from: "a@example.com", to: "second@example.com", message: message),
            SMTPClient.Envelope(from: "a@example.com", to: "bad>@example.com", message: message),
        ])
        #expect(results.count == 3)
        if case .failure(let failure) = results[0] { #expect(failure.permanent, "550 is for good") } else { Issue.record("the refused recipient was sent") }
        #expect((try? results[1].get()) != nil, "the next mail on the connection goes through")
        if case .failure(let failure) = results[2] { #expect(failure.permanent) } else { Issue.record("an address that breaks out of <> was sent") }
        let received = try await sink.mails(to: "second@example.com")
        #expect(received[0].data == message, "dot-stuffing is undone exactly")
        #expect(received[0].authenticatedAs == "u")
        await sink.stop()
    }

    @Test func authLoginWhenThatIsAllTheServerOffers() async throws {
        let sink = try await SMTPSink.start()
        sink.state.withLock { $0.mechanisms = "LOGIN" }
        let client = try SMTPClient(configuration: SMTPConfiguration(url: "smtp://login%40example.com:pw@127.0.0.1:\(sink.port)?tls=none"))
        let results = await client.send([SMTPClient.Envelope(from: "a@example.com", to: "b@example.com", message: "Subject: x\r\n\r\nhi\r\n")])
        #expect((try? results[0].get()) != nil)
        #expect(try await sink.mails(to: "b@example.com")[0].authenticatedAs == "login@example.com")
        await sink.stop()
    }

    @Test func aServerThatHangsIsLeftAtTheDeadline() async throws {
        let sink = try await SMTPSink.start()
        sink.state.withLock { $0.hangAfterData = true }
        let client = try SMTPClient(configuration: SMTPConfiguration(url: "smtp://127.0.0.1:\(sink.port)?tls=none"))
        let started = ContinuousClock.now
        let results = await client.send(
            [SMTPClient.Envelope(from: "a@example.com", to: "b@example.com", message: "Subject: x\r\n\r\nhi\r\n")],
            deadline: .milliseconds(500)
        )
        if case .failure(let failure) = results[0] { #expect(!failure.permanent, "tried again later") } else { Issue.record("a hung send counted as sent") }
        #expect(ContinuousClock.now - started < .seconds(20), "the read timeout (30 s) was not what ended it")
        await sink.stop()
    }
}
