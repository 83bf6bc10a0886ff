import AtriumTestSupport
import Foundation
import PostgresPool
import Testing

@Suite struct ListenerTests {
    @Test func deliversNotificationsAndListensAgainAfterReconnecting() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        var configuration = database.superuser
        configuration.applicationName = "listener-\(UUID().uuidString.prefix(8))"
        let listener = PostgresListener(
            configuration: configuration,
            channels: ["atrium_test"],
            reconnectDelay: .milliseconds(20),
            logger: TestLogger.make("listener")
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await listener.run() }
            var events = listener.events.makeAsyncIterator()
            #expect(await events.next() == .listening)
            try await database.withSuperuser { admin in
                _ = try await admin.query("SELECT pg_notify('atrium_test', \("first"))")
            }
            let first = await events.next()
            guard case .notification(let notification) = first else {
                Issue.record("expected a notification, got \(String(describing: first))")
                group.cancelAll()
                return
            }
            #expect(notification.channel == "atrium_test")
            #expect(notification.payload == "first")

            // Kill the listener's backend: it must reconnect, LISTEN again and say so.
            try await database.withSuperuser { admin in
                _ = try await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = \(configuration.applicationName + "-listener")")
            }
            #expect(await events.next() == .listening)
            try await database.withSuperuser { admin in
                _ = try await admin.query("SELECT pg_notify('atrium_test', \("second"))")
            }
            let second = await events.next()
            guard case .notification(let again) = second else {
                Issue.record("expected a notification after reconnecting, got \(String(describing: second))")
                group.cancelAll()
                return
            }
            #expect(again.payload == "second")
            group.cancelAll()
        }
    }
}
