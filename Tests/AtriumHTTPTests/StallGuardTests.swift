@testable import AtriumHTTP
import NIOEmbedded
import NIOCore
import Testing

/// The guard on streamed responses: a step that does not move within the timeout ends the
/// stream (the parts of it that need a client or a database are in ExportFaultTests).
@Suite struct StallGuardTests {
    @Test func aReadThatDoesNotComeInTimeIsGivenUpOn() async throws {
        let guarded = StallGuard(timeout: .milliseconds(200), channel: NIOAsyncTestingChannel())
        let started = ContinuousClock.now
        await #expect(throws: StallGuard.ReadTimedOut.self) {
            // A database that never answers: cancelled when given up on.
            _ = try await guarded.read { try await Task.sleep(for: .seconds(30)); return 1 }
        }
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(try await guarded.read { 7 } == 7)
    }

    @Test func aWriteThatWaitsTooLongClosesTheChannel() async throws {
        let channel = NIOAsyncTestingChannel()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1))
        let guarded = StallGuard(timeout: .milliseconds(200), channel: channel)
        try await guarded.run {
            // A client that stops reading: the write waits until the channel is closed under it.
            try await guarded.write {
                while channel.isActive { try await Task.sleep(for: .milliseconds(20)) }
            }
        }
        #expect(!channel.isActive)
    }
}
