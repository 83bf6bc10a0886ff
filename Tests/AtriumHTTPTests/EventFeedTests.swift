import AsyncHTTPClient
import AtriumCore
import AtriumTestSupport
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import Testing

/// `GET /v1/events` on a live server: what a subscriber gets, resuming, who sees what, and
/// when a stream ends.
@Suite struct EventFeedTests {
    /// Runs `body` against a live server.
    static func live(
        _ app: TestApp? = nil, changeFeed: ChangeFeedConfiguration = ChangeFeedConfiguration(),
        _ body: @escaping @Sendable (any TestClientProtocol, Int) async throws -> Void
    ) async throws {
        var served: TestApp
        if let app {
            served = app
        } else {
            served = try await TestApp.make(changeFeed: changeFeed)
        }
        served.server.port = 0
        try await served.test(.live) { client in
            try await body(client, try #require(client.port))
        }
    }

    @Test func writesArriveAsEventsWithTheRecordAndChangedFields() async throws {
        try await Self.live { client, port in
            let ann = try await client.signUp("ann@example.com", tenant: "Acme")
            try await client.createTasks(ann.accessToken)
            let stream = try await EventStream.open(port: port, token: ann.accessToken)
            defer { stream.close() }
            #expect(stream.status == .ok)
            #expect(stream.headers["Content-Type"].first == "text/event-stream")
            // The stream starts with a resume point before any event.
            let start = try #require(await stream.next())
            #expect(start.id != nil && start.event == nil && start.data == nil)

            let created = try await client.createRecord(ann.accessToken, ["title": "Write the feed", "priority": 2])
            let id = try #require(created.string("id"))
            let updated = try await client.call(.patch, "/v1/collections/tasks/records/\(id)", token: ann.accessToken, json: ["priority": 3])
            #expect(updated.status == .ok)
            #expect(try await client.call(.delete, "/v1/collections/tasks/records/\(id)", token: ann.accessToken).status == .noContent)

            let events = await stream.events(3)
            try #require(events.count == 3)
            #expect(events.map(\.event) == ["record.created", "record.updated", "record.deleted"])
            #expect(Set(events.compactMap(\.id)).count == 3)
            let first = events[0].json
            #expect(first["collection"] as? String == "tasks")
            #expect(first["id"] as? String == id)
            #expect(first["version"] as? Int == 1)
            #expect((first["actor"] as? [String: Any])?["id"] as? String == ann.userID)
            #expect(((first["record"] as? [String: Any])?["data"] as? [String: Any])?["title"] as? String == "Write the feed")
            // The record in the event is the record as GET returned it after the write.
            let second = events[1].json
            #expect(second["changedFields"] as? [String] == ["priority"])
            #expect(JSONResponse.object(of: try JSONSerialization.data(withJSONObject: second["record"] as Any).string) as NSDictionary == updated.object as NSDictionary)
            let third = events[2].json
            #expect(third["version"] as? Int == 2)
            #expect(third["record"] == nil)
            #expect(Set(third["changedFields"] as? [String] ?? []) == ["title", "priority", "status"])
        }
    }

    @Test func resumingReplaysWhatWasMissedWithNoGapAndNoDuplicate() async throws {
        try await Self.live { client, port in
            let ann = try await client.signUp("ann@example.com", tenant: "Acme")
            try await client.createTasks(ann.accessToken)
            // A writer keeps creating records while the subscriber disconnects and resumes
            // three times; across all connections every record arrives once, in order. The
            // subscriber takes its starting point first: what was written before it is not its.
            let total = 60
            let first = try await EventStream.open(port: port, token: ann.accessToken)
            var lastID = try #require(await first.next()?.id)
            await first.closeAndWait()
            let writer = Task {
                var ids: [String] = []
                for index in 0..<total {
                    let response = try await client.createRecord(ann.accessToken, ["title": "record \(index)"])
                    ids.append(try #require(response.string("id")))
                }
                return ids
            }
            var seen: [String] = []
            for _ in 0..<4 {
                let stream = try await EventStream.open(port: port, token: ann.accessToken, lastEventID: lastID)
                #expect(stream.status == .ok)
                for event in await stream.events(total / 4 - 2, timeout: .seconds(20)) {
                    #expect(event.event == "record.created")
                    seen.append(try #require(event.json["id"] as? String))
                    lastID = try #require(event.id)
                }
                stream.close()
            }
            let written = try await writer.value
            let stream = try await EventStream.open(port: port, token: ann.accessToken, lastEventID: lastID)
            defer { stream.close() }
            for event in await stream.events(total - seen.count, timeout: .seconds(20)) {
                seen.append(try #require(event.json["id"] as? String))
            }
            let missing = written.filter { !seen.contains($0) }
            let repeated = seen.count - Set(seen).count
            #expect(seen == written, "\(missing.count) missing (at \(missing.compactMap { written.firstIndex(of: $0) })), \(repeated) repeated, \(seen.count) seen of \(written.count)")
            // And nothing more.
            #expect(await stream.nextEvent(timeout: .milliseconds(300)) == nil)
        }
    }

    @Test func subscribersGetOnlyTheRecordsTheyCouldRead() async throws {
        try await Self.live { client, port in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            let ann = try await client.addMember("ann@example.com", role: "member", by: owner)
            let bob = try await client.addMember("bob@example.com", role: "member", by: owner)
            // Members read only their own tasks; notes are for admins only.
            try await client.createTasks(owner.accessToken, rules: ["read": ["role": "viewer", "own": true]])
            let notes = try await client.call(.post, "/v1/collections", token: owner.accessToken, json: [
                "name": "notes", "fields": ["text": ["type": "string"]], "rules": ["read": ["role": "admin"], "create": ["role": "member"]],
            ])
            #expect(notes.status == .created)
            let annStream = try await EventStream.open(port: port, token: ann.accessToken)
            let bobStream = try await EventStream.open(port: port, token: bob.accessToken)
            let ownerStream = try await EventStream.open(port: port, token: owner.accessToken)
            defer { [annStream, bobStream, ownerStream].forEach { $0.close() } }

            let annTask = try #require(try await client.createRecord(ann.accessToken, ["title": "ann's"]).string("id"))
            #expect(try await client.createRecord(ann.accessToken, ["text": "for admins"], collection: "notes").status == .created)
            #expect(try await client.call(.delete, "/v1/collections/tasks/records/\(annTask)", token: ann.accessToken).status == .noContent)
            let bobTask = try #require(try await client.createRecord(bob.accessToken, ["title": "bob's"]).string("id"))

            // Ann: her task created and deleted; not the note, not Bob's task.
            let annEvents = await annStream.events(3, timeout: .seconds(3))
            #expect(annEvents.map(\.event) == ["record.created", "record.deleted"])
            #expect(annEvents.allSatisfy { $0.json["id"] as? String == annTask })
            // Bob: only his own task — not even the id of Ann's deleted one.
            let bobEvents = await bobStream.events(2, timeout: .seconds(3))
            #expect(bobEvents.map { $0.json["id"] as? String } == [bobTask])
            // The owner sees everything.
            let ownerEvents = await ownerStream.events(4)
            #expect(ownerEvents.map(\.event) == ["record.created", "record.created", "record.deleted", "record.created"])
            #expect(ownerEvents[1].json["collection"] as? String == "notes")
        }
    }

    @Test func aResumedStreamReplaysOnlyWhatTheSubscriberCouldRead() async throws {
        try await Self.live { client, port in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            let ann = try await client.addMember("ann@example.com", role: "member", by: owner)
            let bob = try await client.addMember("bob@example.com", role: "member", by: owner)
            try await client.createTasks(owner.accessToken, rules: ["read": ["role": "viewer", "own": true]])
            // Bob takes a resume point, then goes away.
            let first = try await EventStream.open(port: port, token: bob.accessToken)
            let resumeAt = try #require(await first.next()?.id)
            await first.closeAndWait()
            let annTask = try #require(try await client.createRecord(ann.accessToken, ["title": "ann's"]).string("id"))
            let bobTask = try #require(try await client.createRecord(bob.accessToken, ["title": "bob's"]).string("id"))
            #expect(try await client.call(.delete, "/v1/collections/tasks/records/\(annTask)", token: ann.accessToken).status == .noContent)
            let lastBob = try #require(try await client.createRecord(bob.accessToken, ["title": "bob's last"]).string("id"))
            // Replayed from the log: his two records, nothing of Ann's (not even her delete).
            let resumed = try await EventStream.open(port: port, token: bob.accessToken, lastEventID: resumeAt)
            defer { resumed.close() }
            let replayed = await resumed.events(3, timeout: .seconds(3))
            #expect(replayed.map { $0.json["id"] as? String } == [bobTask, lastBob])
        }
    }

    @Test func tenantsNeverSeeEachOthersEventsOrIds() async throws {
        try await Self.live { client, port in
            let ann = try await client.signUp("ann@example.com", tenant: "Acme")
            let eve = try await client.signUp("eve@example.com", tenant: "Evil")
            try await client.createTasks(ann.accessToken)
            try await client.createTasks(eve.accessToken)
            let eveStream = try await EventStream.open(port: port, token: eve.accessToken)
            defer { eveStream.close() }
            let annStream = try await EventStream.open(port: port, token: ann.accessToken)
            defer { annStream.close() }
            _ = try await client.createRecord(ann.accessToken, ["title": "secret"])
            let eveRecord = try #require(try await client.createRecord(eve.accessToken, ["title": "mine"]).string("id"))
            let annEvent = try #require(await annStream.nextEvent())
            // Eve's first event is her own record: Ann's write, committed before it, was not sent.
            let eveEvent = try #require(await eveStream.nextEvent())
            #expect(eveEvent.json["id"] as? String == eveRecord)

            // An id from Ann's stream means nothing in Eve's tenant: Eve is told to reload.
            let replayed = try await EventStream.open(port: port, token: eve.accessToken, lastEventID: annEvent.id)
            defer { replayed.close() }
            let reset = try #require(await replayed.nextEvent())
            #expect(reset.event == "reset")
            #expect(reset.json["reason"] as? String == "position_unknown")
            #expect(await replayed.nextEvent(timeout: .milliseconds(300)) == nil)
        }
    }

    @Test func aRevokedSessionEndsItsStream() async throws {
        try await Self.live { client, port in
            let ann = try await client.signUp("ann@example.com", tenant: "Acme")
            let stream = try await EventStream.open(port: port, token: ann.accessToken)
            defer { stream.close() }
            _ = await stream.next()
            #expect(try await client.call(.post, "/v1/auth/logout", token: ann.accessToken).status == .noContent)
            let close = try #require(await stream.nextEvent(timeout: .seconds(2)))
            #expect(close.event == "close")
            #expect(close.json["reason"] as? String == "session_revoked")
            #expect(await stream.waitForEnd(timeout: .seconds(2)))
            // And the token cannot open another.
            let again = try await EventStream.open(port: port, token: ann.accessToken)
            #expect(again.status == .unauthorized)
        }
    }

    @Test func aStreamEndsWhenItsAccessTokenExpires() async throws {
        // Long enough for sign-up and opening the stream on a loaded machine (the whole suite
        // runs at once: in CI that took over 6 s); the stream must then end by itself.
        let app = try await TestApp.make { $0.accessTokenLifetime = .seconds(30) }
        try await Self.live(app) { client, port in
            let ann = try await client.signUp("ann@example.com", tenant: "Acme")
            let stream = try await EventStream.open(port: port, token: ann.accessToken)
            defer { stream.close() }
            #expect(stream.status == .ok)
            let close = try #require(await stream.nextEvent(timeout: .seconds(60)))
            #expect(close.event == "close")
            #expect(close.json["reason"] as? String == "credential_expired")
            #expect(await stream.waitForEnd(timeout: .seconds(2)))
        }
    }

    @Test func aRevokedAPIKeyEndsItsStream() async throws {
        var feed = ChangeFeedConfiguration()
        feed.keyCheckInterval = .seconds(1)
        try await Self.live(changeFeed: feed) { client, port in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            let created = try await client.call(.post, "/v1/api-keys", token: owner.accessToken, json: ["name": "sync", "role": "viewer"])
            let key = try #require(created.string("secret"))
            let id = try #require(created.string("id"))
            let stream = try await EventStream.open(port: port, token: key)
            defer { stream.close() }
            #expect(stream.status == .ok)
            _ = await stream.next()
            #expect(try await client.call(.delete, "/v1/api-keys/\(id)", token: owner.accessToken).status == .noContent)
            let close = try #require(await stream.nextEvent(timeout: .seconds(5)))
            #expect(close.event == "close")
            #expect(close.json["reason"] as? String == "key_revoked")
        }
    }

    @Test func ticketsOpenOneStreamOnce() async throws {
        try await Self.live { client, port in
            let ann = try await client.signUp("ann@example.com", tenant: "Acme")
            try await client.createTasks(ann.accessToken)
            #expect(try await client.call(.post, "/v1/events/tickets").status == .unauthorized)
            let issued = try await client.call(.post, "/v1/events/tickets", token: ann.accessToken)
            #expect(issued.status == .created)
            let ticket = try #require(issued.string("ticket"))
            #expect(ticket.hasPrefix("evt_"))

            let stream = try await EventStream.open(port: port, path: "/v1/events?ticket=\(ticket)&collections=tasks")
            defer { stream.close() }
            #expect(stream.status == .ok)
            _ = try await client.createRecord(ann.accessToken, ["title": "seen through a ticket"])
            #expect(await stream.nextEvent()?.event == "record.created")

            // A ticket of a session that has ended since opens nothing.
            let other = try #require(try await client.call(.post, "/v1/events/tickets", token: ann.accessToken).string("ticket"))
            #expect(try await client.call(.post, "/v1/auth/logout", token: ann.accessToken).status == .noContent)
            #expect(try await EventStream.open(port: port, path: "/v1/events?ticket=\(other)").status == .unauthorized)

            let reused = try await EventStream.open(port: port, path: "/v1/events?ticket=\(ticket)")
            #expect(reused.status == .unauthorized)
            #expect((JSONResponse.object(of: reused.body)["detail"] as? String)?.contains("ticket") == true)
            let forged = try await EventStream.open(port: port, path: "/v1/events?ticket=evt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            #expect(forged.status == .unauthorized)
            #expect(try await EventStream.open(port: port).status == .unauthorized)
        }
    }

    @Test func collectionsNarrowTheStreamAndBadInputIsRefused() async throws {
        try await Self.live { client, port in
            let ann = try await client.signUp("ann@example.com", tenant: "Acme")
            try await client.createTasks(ann.accessToken)
            #expect(try await client.call(.post, "/v1/collections", token: ann.accessToken, json: ["name": "notes", "fields": ["text": ["type": "string"]]]).status == .created)
            let stream = try await EventStream.open(port: port, path: "/v1/events?collections=notes", token: ann.accessToken)
            defer { stream.close() }
            _ = try await client.createRecord(ann.accessToken, ["title": "not wanted"])
            _ = try await client.createRecord(ann.accessToken, ["text": "wanted"], collection: "notes")
            let event = try #require(await stream.nextEvent())
            #expect(event.json["collection"] as? String == "notes")

            for bad in ["", "Not%20A%20Name", String(repeating: "a,", count: 51) + "a"] {
                let refused = try await EventStream.open(port: port, path: "/v1/events?collections=\(bad)", token: ann.accessToken)
                #expect(refused.status == .badRequest, "collections=\(bad.prefix(20))")
            }
        }
    }

    @Test func deletingACollectionWithItsRecordsSendsTheirDeletion() async throws {
        try await Self.live { client, port in
            let ann = try await client.signUp("ann@example.com", tenant: "Acme")
            try await client.createTasks(ann.accessToken)
            let stream = try await EventStream.open(port: port, token: ann.accessToken)
            defer { stream.close() }
            let ids = try await (0..<3).asyncMap { try #require(try await client.createRecord(ann.accessToken, ["title": "t\($0)"]).string("id")) }
            #expect(await stream.events(3).count == 3)
            #expect(try await client.call(.delete, "/v1/collections/tasks?force=true", token: ann.accessToken).status == .noContent)
            let events = await stream.events(3)
            #expect(events.allSatisfy { $0.event == "record.deleted" })
            #expect(Set(events.compactMap { $0.json["id"] as? String }) == Set(ids))
        }
    }

    @Test func subscriberLimitsAnswer503WithRetryAfter() async throws {
        var feed = ChangeFeedConfiguration()
        feed.maximumSubscribersPerTenant = 2
        try await Self.live(changeFeed: feed) { client, port in
            let ann = try await client.signUp("ann@example.com", tenant: "Acme")
            let bob = try await client.signUp("bob@example.com", tenant: "Other")
            let first = try await EventStream.open(port: port, token: ann.accessToken)
            let second = try await EventStream.open(port: port, token: ann.accessToken)
            let third = try await EventStream.open(port: port, token: ann.accessToken)
            #expect(third.status == .serviceUnavailable)
            #expect(third.headers["Retry-After"].first != nil)
            // Another tenant is not held to Acme's count.
            let other = try await EventStream.open(port: port, token: bob.accessToken)
            #expect(other.status == .ok)
            // A closed stream frees its place.
            await first.closeAndWait()
            var reopened = try await EventStream.open(port: port, token: ann.accessToken)
            let deadline = ContinuousClock.now + .seconds(5)
            while reopened.status != .ok, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                reopened = try await EventStream.open(port: port, token: ann.accessToken)
            }
            #expect(reopened.status == .ok)
            [second, other, reopened].forEach { $0.close() }
        }
    }

    @Test func idleStreamsGetHeartbeats() async throws {
        var feed = ChangeFeedConfiguration()
        feed.heartbeat = .seconds(1)
        try await Self.live(changeFeed: feed) { client, port in
            let ann = try await client.signUp("ann@example.com", tenant: "Acme")
            let stream = try await EventStream.open(port: port, token: ann.accessToken)
            defer { stream.close() }
            _ = await stream.next()
            let heartbeat = try #require(await stream.next(timeout: .seconds(5)))
            #expect(heartbeat.comment == "heartbeat")
        }
    }

    @Test func aWriteOnOneServerReachesASubscriberOnAnother() async throws {
        let first = try await TestApp.make()
        let second = try await TestApp.make(on: first.database)
        let token = Locked("")
        let portOfSecond = Locked(0)
        try await second.serve { port in
            portOfSecond.withLock { $0 = port }
            try await Self.live(first) { client, _ in
                let ann = try await client.signUp("ann@example.com", tenant: "Acme")
                try await client.createTasks(ann.accessToken)
                token.withLock { $0 = ann.accessToken }
                let stream = try await EventStream.open(port: portOfSecond.value, token: ann.accessToken)
                defer { stream.close() }
                #expect(stream.status == .ok)
                let id = try #require(try await client.createRecord(ann.accessToken, ["title": "from the first server"]).string("id"))
                let event = try #require(await stream.nextEvent())
                #expect(event.json["id"] as? String == id)
            }
        }
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}

extension Data {
    var string: String { String(decoding: self, as: UTF8.self) }
}
