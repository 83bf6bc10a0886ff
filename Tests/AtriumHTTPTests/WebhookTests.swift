import AtriumCore
import AtriumCrypto
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOPosix
import NIOSSL
import Testing

/// `/v1/webhooks`: endpoints, signed deliveries to a local receiver, retries, 410, ordering,
/// redirects, rotation, isolation between tenants and between a greedy tenant and the rest.
/// One at a time: each runs a live server, a receiver and a dispatcher polling ten times a
/// second, and the suite shares two cores with timing-sensitive ones.
@Suite(.serialized) struct WebhookTests {
    /// Local receivers allowed, short timeout and retries.
    static func fast(_ change: (inout WebhookConfiguration) -> Void = { _ in }) -> WebhookConfiguration {
        var configuration = WebhookConfiguration()
        configuration.allowPrivateAddresses = true
        configuration.timeout = .seconds(2)
        configuration.retrySchedule = [.milliseconds(200), .milliseconds(200)]
        configuration.pollInterval = .milliseconds(100)
        change(&configuration)
        return configuration
    }

    static func live(_ webhooks: WebhookConfiguration = fast(), _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        var app = try await TestApp.make(webhooks: webhooks)
        app.server.port = 0
        try await app.test(.live) { client in try await body(client) }
    }

    @Test func adminsManageEndpointsAndTheSecretIsShownOnce() async throws {
        let app = try await TestApp.make(webhooks: Self.fast { $0.maximumEndpoints = 2 })
        try await app.test { client in
            let ann = try await client.signUp("ann@example.com", tenant: "Acme")
            let created = try await client.call(.post, "/v1/webhooks", token: ann.accessToken, json: [
                "url": "http://127.0.0.1:9/hooks/a", "description": "CRM sync",
            ])
            #expect(created.status == .created)
            let id = try #require(created.string("id"))
            #expect(created.headers[.location] == "/v1/webhooks/\(id)")
            let secret = try #require(created.string("secret"))
            #expect(secret.hasPrefix("whsec_") && secret.count > 40)
            #expect(created["events"] as? [String] == ["record.created", "record.updated", "record.deleted"])
            #expect(created["collections"] is NSNull)
            #expect(created["enabled"] as? Bool == true && created["ordered"] as? Bool == false)

            let read = try await client.call(.get, "/v1/webhooks/\(id)", token: ann.accessToken)
            #expect(read.status == .ok && read["secret"] == nil && read.string("description") == "CRM sync")
            #expect(try await client.call(.get, "/v1/webhooks", token: ann.accessToken).dataIDs == [id])

            let patched = try await client.call(.patch, "/v1/webhooks/\(id)", token: ann.accessToken, json: [
                "events": ["record.deleted"], "collections": ["tasks"], "enabled": false, "ordered": true,
            ])
            #expect(patched.status == .ok)
            #expect(patched["events"] as? [String] == ["record.deleted"] && patched["collections"] as? [String] == ["tasks"])
            #expect(patched["enabled"] as? Bool == false && patched["ordered"] as? Bool == true)
            #expect(patched.string("url") == "http://127.0.0.1:9/hooks/a")

            let rotated = try await client.call(.post, "/v1/webhooks/\(id)/rotate-secret", token: ann.accessToken, json: ["overlapSeconds": 60])
            #expect(rotated.status == .ok)
            #expect(rotated.string("secret")?.hasPrefix("whsec_") == true && rotated.string("secret") != secret)
            #expect(rotated.string("previousSecretExpiresAt") != nil)

            // Bad input names every field at fault.
            let bad = try await client.call(.post, "/v1/webhooks", token: ann.accessToken, json: [
                "url": "ftp://example.com/x", "events": ["record.moved"], "collections": "tasks", "colour": "red",
            ])
            #expect(bad.status == .unprocessableContent)
            #expect(bad.errorFields == ["/url", "/events", "/collections", "/colour"])
            #expect(try await client.call(.post, "/v1/webhooks", token: ann.accessToken, json: ["events": ["record.created"]]).errorFields == ["/url"])

            // A cap per tenant.
            #expect(try await client.call(.post, "/v1/webhooks", token: ann.accessToken, json: ["url": "http://127.0.0.1:9/hooks/b"]).status == .created)
            let third = try await client.call(.post, "/v1/webhooks", token: ann.accessToken, json: ["url": "http://127.0.0.1:9/hooks/c"])
            #expect(third.status == .conflict && third.string("reason") == "webhook_limit")

            // Members cannot see or make endpoints; other tenants cannot find them.
            let mia = try await client.addMember("mia@example.com", role: "member", by: ann)
            #expect(try await client.call(.get, "/v1/webhooks", token: mia.accessToken).status == .forbidden)
            #expect(try await client.call(.post, "/v1/webhooks", token: mia.accessToken, json: ["url": "http://127.0.0.1:9/x"]).status == .forbidden)
            let bob = try await client.signUp("bob@example.com", tenant: "Globex")
            #expect(try await client.call(.get, "/v1/webhooks/\(id)", token: bob.accessToken).status == .notFound)
            #expect(try await client.call(.patch, "/v1/webhooks/\(id)", token: bob.accessToken, json: ["enabled": true]).status == .notFound)
            #expect(try await client.call(.delete, "/v1/webhooks/\(id)", token: bob.accessToken).status == .notFound)
            #expect(try await client.call(.get, "/v1/webhooks/\(id)/deliveries", token: bob.accessToken).status == .notFound)
            #expect(try await client.call(.get, "/v1/webhooks", token: bob.accessToken).dataIDs.isEmpty)

            #expect(try await client.call(.delete, "/v1/webhooks/\(id)", token: ann.accessToken).status == .noContent)
            #expect(try await client.call(.get, "/v1/webhooks/\(id)", token: ann.accessToken).status == .notFound)
        }
    }

    @Test func privateLoopbackLinkLocalAndMetadataAddressesAreRefused() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let ann = try await client.signUp("ann@example.com", tenant: "Acme")
            for url in [
                "http://example.com/hooks", "https://127.0.0.1/hooks", "https://169.254.169.254/latest/meta-data", "https://[::1]/hooks",
                "https://10.1.2.3/hooks", "https://192.168.0.10/hooks", "https://172.20.0.1/hooks", "https://100.64.0.1/hooks",
                "https://[::ffff:127.0.0.1]/hooks", "https://[fd00:ec2::254]/hooks", "https://[fe80::1]/hooks", "https://0.0.0.0/hooks",
                "https://localhost/hooks", "https://user:secret@example.com/hooks",
            ] {
                let response = try await client.call(.post, "/v1/webhooks", token: ann.accessToken, json: ["url": url])
                #expect(response.status == .unprocessableContent, "\(url) was accepted")
                #expect(response.errorFields == ["/url"], "\(url): \(response.body)")
            }
        }
    }

    @Test func addressesAreJudgedByTheirRange() {
        for text in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "2a00:1450:4001:800::200e", "172.32.0.1", "100.128.0.1"] {
            #expect(IPAddress(text)?.isPublic == true, "\(text)")
        }
        for text in [
            "127.0.0.1", "127.8.9.10", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254", "100.64.0.1",
            "0.0.0.0", "224.0.0.1", "255.255.255.255", "192.0.2.1", "198.18.0.1", "::", "::1", "::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::", "fc00::1", "fd00:ec2::254", "fe80::1", "ff02::1", "2001:db8::1",
        ] {
            #expect(IPAddress(text)?.isPublic == false, "\(text)")
        }
        #expect(IPAddress("example.com") == nil)
    }

    @Test func signaturesMatchTheStandardWebhooksReference() {
        // The example of the Standard Webhooks libraries' tests.
        let header = WebhookSignature.header(
            secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330,
            body: Array(#"{"test": 2432232314}"#.utf8)
        )
        #expect(header == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    @Test func deliveriesAreSignedAndRetriedUntilTheReceiverAnswers() async throws {
        let receiver = WebhookReceiver { index, _ in .init(status: index < 2 ? .internalServerError : .ok) }
        try await receiver.serve { base in
            try await Self.live { client in
                let ann = try await client.signUp("ann@example.com", tenant: "Acme")
                try await client.createTasks(ann.accessToken)
                let hook = try await client.call(.post, "/v1/webhooks", token: ann.accessToken, json: ["url": base + "/hooks/a"])
                let (hookID, secret) = (try #require(hook.string("id")), try #require(hook.string("secret")))
                let record = try await client.createRecord(ann.accessToken, ["title": "Call the customer"])
                let recordID = try #require(record.string("id"))

                let requests = await receiver.wait { $0.count >= 3 }
                try #require(requests.count == 3)
                #expect(Set(requests.map(\.id)).count == 1 && requests[0].id.hasPrefix("msg_"))
                for request in requests {
                    #expect(signatureVerifies(request, secret: secret))
                }
                var tampered = requests[0]
                tampered = .init(path: tampered.path, id: tampered.id, timestamp: tampered.timestamp, signature: tampered.signature,
                                 body: tampered.body.replacingOccurrences(of: "Call", with: "Fire"))
                #expect(!signatureVerifies(tampered, secret: secret))
                #expect(!signatureVerifies(requests[0], secret: "whsec_" + Base64.encode(SecureRandom.bytes(32), alphabet: .standard)))
                let body = requests[2]
                #expect(body.json["type"] as? String == "record.created")
                #expect(body.data["id"] as? String == recordID && body.data["collection"] as? String == "tasks")
                #expect(((body.data["record"] as? [String: Any])?["data"] as? [String: Any])?["title"] as? String == "Call the customer")

                let deliveries = try await Self.settled(client, ann.accessToken, hookID, count: 1)
                let delivery = try #require(deliveries.first)
                #expect(delivery["status"] as? String == "succeeded")
                #expect(delivery["attempts"] as? Int == 3)
                #expect(delivery["responseStatus"] as? Int == 200 && delivery["responseBody"] as? String == "answer 2")
                #expect(delivery["messageId"] as? String == requests[0].id && delivery["event"] as? String == "record.created")
            }
        }
    }

    @Test func goneDisablesTheEndpoint() async throws {
        let receiver = WebhookReceiver { _, _ in .init(status: .gone) }
        try await receiver.serve { base in
            try await Self.live { client in
                let ann = try await client.signUp("ann@example.com", tenant: "Acme")
                try await client.createTasks(ann.accessToken)
                let hookID = try #require(try await client.call(.post, "/v1/webhooks", token: ann.accessToken, json: ["url": base + "/hooks/a"]).string("id"))
                _ = try await client.createRecord(ann.accessToken, ["title": "One"])
                let deliveries = try await Self.settled(client, ann.accessToken, hookID, count: 1)
                #expect(deliveries.first?["status"] as? String == "failed" && deliveries.first?["attempts"] as? Int == 1)
                let hook = try await client.call(.get, "/v1/webhooks/\(hookID)", token: ann.accessToken)
                #expect(hook["enabled"] as? Bool == false)
                #expect(hook.string("disabledReason")?.contains("410") == true)
                // Nothing more is made or sent for it.
                _ = try await client.createRecord(ann.accessToken, ["title": "Two"])
                try await Task.sleep(for: .milliseconds(600))
                #expect(receiver.requests.count == 1)
                #expect(try await Self.deliveries(client, ann.accessToken, hookID).count == 1)
            }
        }
    }

    @Test func retriesRunOutThenAManualRetrySendsAgain() async throws {
        let receiver = WebhookReceiver { index, _ in .init(status: index < 2 ? .badGateway : .noContent) }
        try await receiver.serve { base in
            try await Self.live(Self.fast { $0.retrySchedule = [.milliseconds(100)] }) { client in
                let ann = try await client.signUp("ann@example.com", tenant: "Acme")
                let hookID = try #require(try await client.call(.post, "/v1/webhooks", token: ann.accessToken, json: ["url": base + "/hooks/a"]).string("id"))
                let test = try await client.call(.post, "/v1/webhooks/\(hookID)/test", token: ann.accessToken)
                #expect(test.status == .accepted && test.string("status") == "pending")
                let deliveryID = try #require(test.string("id"))
                var deliveries = try await Self.settled(client, ann.accessToken, hookID, count: 1)
                #expect(deliveries.first?["status"] as? String == "failed" && deliveries.first?["attempts"] as? Int == 2)
                #expect(deliveries.first?["responseStatus"] as? Int == 502)
                #expect(try await client.call(.get, "/v1/webhooks/\(hookID)/deliveries?status=failed", token: ann.accessToken).dataIDs == [deliveryID])
                #expect(try await client.call(.get, "/v1/webhooks/\(hookID)/deliveries?status=succeeded", token: ann.accessToken).dataIDs.isEmpty)

                let retried = try await client.call(.post, "/v1/webhooks/\(hookID)/deliveries/\(deliveryID)/retry", token: ann.accessToken)
                #expect(retried.status == .accepted)
                deliveries = try await Self.settled(client, ann.accessToken, hookID, count: 1)
                #expect(deliveries.first?["status"] as? String == "succeeded" && deliveries.first?["attempts"] as? Int == 3)
                #expect(receiver.requests.map { $0.json["type"] as? String } == Array(repeating: "webhook.test", count: 3))
                #expect(try await client.call(.post, "/v1/webhooks/\(hookID)/deliveries/\(UUID())/retry", token: ann.accessToken).status == .notFound)
                #expect(try await client.call(.get, "/v1/webhooks/\(hookID)/deliveries?status=lost", token: ann.accessToken).status == .badRequest)
            }
        }
    }

    @Test func aRotationSignsWithBothSecretsUntilTheOverlapEnds() async throws {
        let receiver = WebhookReceiver()
        try await receiver.serve { base in
            try await Self.live { client in
                let ann = try await client.signUp("ann@example.com", tenant: "Acme")
                let hook = try await client.call(.post, "/v1/webhooks", token: ann.accessToken, json: ["url": base + "/hooks/a"])
                let (hookID, first) = (try #require(hook.string("id")), try #require(hook.string("secret")))
                let second = try #require(try await client.call(.post, "/v1/webhooks/\(hookID)/rotate-secret", token: ann.accessToken).string("secret"))
                _ = try await client.call(.post, "/v1/webhooks/\(hookID)/test", token: ann.accessToken)
                var requests = await receiver.wait { $0.count >= 1 }
                try #require(requests.count == 1)
                #expect(requests[0].signature.split(separator: " ").count == 2)
                #expect(signatureVerifies(requests[0], secret: first) && signatureVerifies(requests[0], secret: second))
                #expect(requests[0].data["webhookId"] as? String == hookID)

                let third = try #require(try await client.call(.post, "/v1/webhooks/\(hookID)/rotate-secret", token: ann.accessToken, json: ["overlapSeconds": 0]).string("secret"))
                _ = try await client.call(.post, "/v1/webhooks/\(hookID)/test", token: ann.accessToken)
                requests = await receiver.wait { $0.count >= 2 }
                try #require(requests.count == 2)
                #expect(signatureVerifies(requests[1], secret: third))
                #expect(!signatureVerifies(requests[1], secret: second) && !signatureVerifies(requests[1], secret: first))
                #expect(try await client.call(.post, "/v1/webhooks/\(hookID)/rotate-secret", token: ann.accessToken, json: ["overlapSeconds": -1]).status
                    == .unprocessableContent)
            }
        }
    }

    @Test func redirectsAreNotFollowed() async throws {
        let receiver = WebhookReceiver { _, path in path.hasSuffix("/a") ? .init(status: .temporaryRedirect, location: "/hooks/b") : .init() }
        try await receiver.serve { base in
            try await Self.live(Self.fast { $0.retrySchedule = [] }) { client in
                let ann = try await client.signUp("ann@example.com", tenant: "Acme")
                let hookID = try #require(try await client.call(.post, "/v1/webhooks", token: ann.accessToken, json: ["url": base + "/hooks/a"]).string("id"))
                _ = try await client.call(.post, "/v1/webhooks/\(hookID)/test", token: ann.accessToken)
                let deliveries = try await Self.settled(client, ann.accessToken, hookID, count: 1)
                #expect(deliveries.first?["status"] as? String == "failed" && deliveries.first?["responseStatus"] as? Int == 307)
                #expect((deliveries.first?["error"] as? String)?.contains("redirect") == true)
                #expect(receiver.requests.map(\.path) == ["/hooks/a"])
            }
        }
    }

    /// Certificates are checked: an endpoint whose certificate no authority vouches for gets
    /// nothing (a sender that did not check would reach the route and record its 405).
    @Test func anEndpointWithAnUntrustedCertificateGetsNothing() async throws {
        try await Self.withUntrustedTLSListener { tlsPort in
            try await Self.live(Self.fast { $0.retrySchedule = [] }) { client in
                let ann = try await client.signUp("ann@example.com", tenant: "Acme")
                let hook = try await client.call(.post, "/v1/webhooks", token: ann.accessToken, json: ["url": "https://127.0.0.1:\(tlsPort)/healthz"])
                let hookID = try #require(hook.string("id"))
                #expect(try await client.call(.post, "/v1/webhooks/\(hookID)/test", token: ann.accessToken).status == .accepted)
                let delivery = try #require(try await Self.settled(client, ann.accessToken, hookID, count: 1).first)
                #expect(delivery["status"] as? String == "failed")
                #expect(delivery["responseStatus"] == nil, "the request went through: \(delivery)")
                let error = (delivery["error"] as? String ?? "").lowercased()
                #expect(error.contains("certificate") || error.contains("handshake"), "\(error)")
            }
        }
    }

    /// A TLS listener with a self-signed certificate and nothing behind it: a handshake is all it
    /// does. (Not a whole HTTPS application: its graceful shutdown could wait on the connection
    /// the refused handshake left behind.)
    static func withUntrustedTLSListener(_ body: @escaping @Sendable (Int) async throws -> Void) async throws {
        let certificate = try SelfSignedCertificate.make()
        let context = try NIOSSLContext(configuration: .makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(certificate.certificatePEM.utf8)).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(certificate.keyPEM.utf8), format: .pem))
        ))
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        do {
            try await body(try #require(listener.localAddress?.port))
        } catch {
            try? await listener.close()
            throw error
        }
        try? await listener.close()
    }

    @Test func endpointsGetTheirTenantsChangesOfTheEventsAndCollectionsChosen() async throws {
        let receiver = WebhookReceiver()
        try await receiver.serve { base in
            try await Self.live { client in
                let ann = try await client.signUp("ann@example.com", tenant: "Acme")
                let bob = try await client.signUp("bob@example.com", tenant: "Globex")
                for user in [ann, bob] {
                    try await client.createTasks(user.accessToken)
                    _ = try await client.call(.post, "/v1/collections", token: user.accessToken, json: ["name": "notes", "fields": ["text": ["type": "string"]]])
                }
                let hook = try await client.call(.post, "/v1/webhooks", token: ann.accessToken, json: [
                    "url": base + "/hooks/ann", "events": ["record.deleted", "record.updated"], "collections": ["tasks"],
                ])
                #expect(hook.status == .created)
                for user in [bob, ann] {
                    let task = try #require(try await client.createRecord(user.accessToken, ["title": "Task"]).string("id"))
                    let note = try #require(try await client.createRecord(user.accessToken, ["text": "Note"], collection: "notes").string("id"))
                    _ = try await client.call(.delete, "/v1/collections/notes/records/\(note)", token: user.accessToken)
                    _ = try await client.call(.delete, "/v1/collections/tasks/records/\(task)", token: user.accessToken)
                }
                let requests = await receiver.wait { $0.count >= 1 }
                try await Task.sleep(for: .milliseconds(500))
                #expect(receiver.requests.count == 1)
                #expect(requests.first?.json["type"] as? String == "record.deleted")
                #expect(requests.first?.data["collection"] as? String == "tasks")
                #expect((requests.first?.data["actor"] as? [String: Any])?["id"] as? String == ann.userID)
            }
        }
    }

    // MARK: - Helpers

    static func deliveries(_ client: any TestClientProtocol, _ token: String, _ hook: String) async throws -> [[String: Any]] {
        let response = try await client.call(.get, "/v1/webhooks/\(hook)/deliveries", token: token)
        return response["data"] as? [[String: Any]] ?? []
    }

    /// The endpoint's deliveries once `count` of them have finished (succeeded or failed).
    static func settled(_ client: any TestClientProtocol, _ token: String, _ hook: String, count: Int) async throws -> [[String: Any]] {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let deliveries = try await Self.deliveries(client, token, hook)
            if deliveries.filter({ ["succeeded", "failed"].contains($0["status"] as? String) }).count >= count { return deliveries }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("the deliveries of \(hook) did not finish: \(try await Self.deliveries(client, token, hook))")
    }
}
