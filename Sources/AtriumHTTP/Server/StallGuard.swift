import NIOCore
import Synchronization

/// Ends a streamed response whose client stops reading. A write waits while the client's
/// receive window is full; if one waits longer than `timeout`, the connection (over HTTP/2, the
/// stream) is closed, which fails the write and ends the response — freeing what the stream
/// held instead of holding it for as long as the client likes.
final class StallGuard: Sendable {
    let timeout: Duration
    let channel: any Channel
    /// When the write now waiting began, if one is.
    private let waitingSince = Mutex<ContinuousClock.Instant?>(nil)

    init(timeout: Duration, channel: any Channel) {
        self.timeout = timeout
        self.channel = channel
    }

    /// Runs `body`, watching each `write` it makes through this guard.
    func run(_ body: () async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await self.watch() }
            defer { group.cancelAll() }
            try await body()
        }
    }

    /// One write to the client, watched.
    func write(_ write: () async throws -> Void) async throws {
        self.waitingSince.withLock { $0 = .now }
        defer { self.waitingSince.withLock { $0 = nil } }
        try await write()
    }

    private func watch() async {
        let tick = min(self.timeout / 4, .seconds(1))
        while !Task.isCancelled {
            try? await Task.sleep(for: tick)
            if let since = self.waitingSince.withLock({ $0 }), ContinuousClock.now - since > self.timeout {
                self.channel.close(promise: nil)
                return
            }
        }
    }
}
