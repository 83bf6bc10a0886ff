import AtriumCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

/// Webhooks shared out: order, catching up, two servers, and one tenant's hanging endpoint
/// against the others.
extension WebhookTests {
    @Test func anOrderedEndpointGetsChangesOneAtATimeInOrder() async throws {
        let receiver = WebhookReceiver { index, _ in .init(status: index == 0 ? .serviceUnavailable : .ok) }
        try await receiver.serve { base in
            try await Self.live { client in
                let ann = try await client.signUp("ann@example.com", tenant: "Acme")
                try await client.createTasks(ann.accessToken)
                _ = try await client.call(.post, "/v1/webhooks", token: ann.accessToken, json: ["url": base + "/hooks/a", "ordered": true])
                var ids: [String] = []
                for index in 0..<6 {
                    ids.append(try #require(try await client.createRecord(ann.accessToken, ["title": "Task \(index)"]).string("id")))
                }
                let requests = await receiver.wait { $0.count >= 7 }
                #expect(requests.compactMap { $0.data["id"] as? String } == [ids[0]] + ids)
            }
        }
    }

    /// One fan-out call covers a bounded span of the log; a server behind takes several.
    @Test func fanOutCatchesUpSpanBySpan() async throws {
        let receiver = WebhookReceiver()
        try await receiver.serve { base in
            try await Self.live(Self.fast { $0.fanoutBatch = 2 }) { client in
                let ann = try await client.signUp("ann@example.com", tenant: "Acme")
                try await client.createTasks(ann.accessToken)
                _ = try await client.call(.post, "/v1/webhooks", token: ann.accessToken, json: ["url": base + "/hooks/a"])
                let batch = try await client.call(.post, "/v1/collections/tasks/records/batch", token: ann.accessToken, json: [
                    "records": (0..<9).map { ["title": "Task \($0)"] },
                ])
                #expect(batch.status == .created)
                let requests = await receiver.wait { $0.count >= 9 }
                try await Task.sleep(for: .milliseconds(300))
                #expect(receiver.requests.count == 9)
                #expect(Set(requests.compactMap { $0.data["id"] as? String }) == Set(batch.dataIDs))
            }
        }
    }

    @Test func twoServersShareTheDeliveriesWithoutSendingOneTwice() async throws {
        let receiver = WebhookReceiver()
        try await receiver.serve { base in
            var first = try await TestApp.make(webhooks: Self.fast())
            first.server.port = 0
            var other = try await TestApp.make(on: first.database, webhooks: Self.fast())
            other.server.port = 0
            let second = other
            try await first.test(.live) { client in
                try await second.test(.live) { other in
                    let ann = try await client.signUp("ann@example.com", tenant: "Acme")
                    try await client.createTasks(ann.accessToken)
                    _ = try await client.call(.post, "/v1/webhooks", token: ann.accessToken, json: ["url": base + "/hooks/a"])
                    for index in 0..<40 {
                        let writer = index.isMultiple(of: 2) ? client : other
                        #expect(try await writer.createRecord(ann.accessToken, ["title": "Task \(index)"]).status == .created)
                    }
                    let requests = await receiver.wait { $0.count >= 40 }
                    try await Task.sleep(for: .milliseconds(500))
                    #expect(receiver.requests.count == 40)
                    #expect(Set(requests.map(\.id)).count == 40)
                    #expect(Set(requests.compactMap { $0.data["id"] as? String }).count == 40)
                }
            }
        }
    }

    /// A greedy tenant whose endpoint hangs holds its share of the slots, not all of them:
    /// another tenant's delivery goes out while the greedy one's attempts are still in flight.
    @Test func aHangingEndpointDoesNotHoldUpOtherTenants() async throws {
        let slow = WebhookReceiver { _, _ in .init(hold: true) }
        let quick = WebhookReceiver()
        try await slow.serve { slowBase in
            try await quick.serve { quickBase in
                // Attempts to the slow endpoint stay in flight for the whole test (20 s timeout).
                let configuration = Self.fast { $0.concurrency = 4; $0.perTenant = 2; $0.perEndpoint = 4; $0.timeout = .seconds(20) }
                try await Self.live(configuration) { client in
                    let ann = try await client.signUp("ann@example.com", tenant: "Acme")
                    let bob = try await client.signUp("bob@example.com", tenant: "Globex")
                    let annHook = try #require(try await client.call(.post, "/v1/webhooks", token: ann.accessToken, json: ["url": slowBase + "/hooks/slow"]).string("id"))
                    let bobHook = try #require(try await client.call(.post, "/v1/webhooks", token: bob.accessToken, json: ["url": quickBase + "/hooks/quick"]).string("id"))
                    for _ in 0..<8 {
                        #expect(try await client.call(.post, "/v1/webhooks/\(annHook)/test", token: ann.accessToken).status == .accepted)
                    }
                    _ = await slow.wait { $0.count >= 2 }
                    #expect(try await client.call(.post, "/v1/webhooks/\(bobHook)/test", token: bob.accessToken).status == .accepted)
                    let arrived = await quick.wait(timeout: .seconds(10)) { $0.count >= 1 }
                    #expect(arrived.count == 1, "the other tenant's delivery waited behind the hanging endpoint")
                    #expect(slow.requests.count == 2, "the hanging tenant had \(slow.requests.count) attempts in flight")
                }
            }
        }
    }
}
