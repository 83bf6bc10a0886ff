import AtriumCore
import AtriumTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import PostgresPool
import Testing

/// Read-your-writes tokens and the choice of where a read goes. The streaming replica itself
/// (replay paused and resumed) is exercised by `.ci/scale read_replica`; here the "replica" is
/// a second pool on the primary, which is not in recovery and so must never be read from.
@Suite struct ReadReplicaTests {
    @Test func writesCarryAConsistencyTokenAndAServerThatIsNotInRecoveryIsNeverRead() async throws {
        let app = try await TestApp.make(primaryAsReplica: true)
        let replicas = try #require(app.services.database.replicas)
        try await app.test(.live) { client in
            let owner = try await client.signUp("reader@example.com", tenant: "Readers")
            _ = try await client.call(.post, "/v1/collections", token: owner.accessToken, json: ["name": "notes", "fields": ["title": ["type": "text"]]])
            let created = try await client.call(.post, "/v1/collections/notes/records", token: owner.accessToken, json: ["title": "one"])
            #expect(created.status == .created)
            let token = try #require(created.headers[.init("Atrium-Consistency")!])
            let position = try #require(WALPosition(token))
            #expect(position.value > 0)
            let id = try #require(created.string("id"))
            // Polled a few times by now: reachable, but not in recovery — never usable.
            try await Task.sleep(for: .milliseconds(300))
            #expect(replicas.statistics.replicas[0].usable == false)
            for headers in [[:], [.init("Atrium-Consistency")!: token]] as [HTTPFields] {
                let read = try await client.call(.get, "/v1/collections/notes/records/\(id)", token: owner.accessToken, headers: headers)
                #expect(read.status == .ok)
            }
            #expect(replicas.statistics.primaryReads == 2)
            #expect(replicas.statistics.replicas[0].reads == 0)
            // A later write has a later position; a read-only request gets no token.
            let updated = try await client.call(.patch, "/v1/collections/notes/records/\(id)", token: owner.accessToken, json: ["title": "two"])
            #expect(try #require(WALPosition(updated.headers[.init("Atrium-Consistency")!] ?? "")) > position)
            let list = try await client.call(.get, "/v1/collections/notes/records", token: owner.accessToken)
            #expect(list.headers[.init("Atrium-Consistency")!] == nil)
            // A token that is not one is refused, not ignored.
            let forged = try await client.call(.get, "/v1/collections/notes/records/\(id)", token: owner.accessToken, headers: [.init("Atrium-Consistency")!: "tomorrow"])
            #expect(forged.status == .badRequest)
        }
    }

    @Test func withoutReplicasWritesCarryNoTokenButAMalformedOneIsStillRefused() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("plain@example.com", tenant: "Plain")
            _ = try await client.call(.post, "/v1/collections", token: owner.accessToken, json: ["name": "notes", "fields": ["title": ["type": "text"]]])
            let created = try await client.call(.post, "/v1/collections/notes/records", token: owner.accessToken, json: ["title": "one"])
            #expect(created.status == .created)
            #expect(created.headers[.init("Atrium-Consistency")!] == nil)
            let id = try #require(created.string("id"))
            let path = "/v1/collections/notes/records/\(id)"
            #expect(try await client.call(.get, path, token: owner.accessToken, headers: [.init("Atrium-Consistency")!: "0/16B3748"]).status == .ok)
            for bad in ["", "tomorrow", "0/123456789"] {
                #expect(try await client.call(.get, path, token: owner.accessToken, headers: [.init("Atrium-Consistency")!: bad]).status == .badRequest, "\(bad)")
            }
        }
    }

    @Test func walPositionsParseAndPrintAsPostgreSQLDoes() {
        #expect(WALPosition("0/16B3748")?.value == 0x16B_3748)
        #expect(WALPosition("16/B374D848")?.value == 0x16_B374_D848)
        #expect(WALPosition("16/B374D848")?.description == "16/B374D848")
        #expect(WALPosition("1/0")! > WALPosition("0/FFFFFFFF")!)
        for bad in ["", "/", "0/", "/1", "0/123456789", "g/1", "0/1/2", " 0/1", "-1/1"] {
            #expect(WALPosition(bad) == nil, "\(bad)")
        }
    }
}
