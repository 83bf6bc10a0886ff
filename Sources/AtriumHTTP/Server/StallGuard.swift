import NIOCore
import Synchronization

/// Ends a streamed response that stops moving. A write waits while the client's receive
/// window is full; if one waits longer than `timeout`, the connection (over HTTP/2, the stream)
/// is closed, which fails the write and ends the response — freeing what the stream held
/// instead of holding it for as long as the client likes. A read for the next part (from the
/// database, which may be frozen) is given up on after the same time.
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

    /// Thrown when reading the next part took longer than the timeout.
    struct ReadTimedOut: Error, CustomStringConvertible {
        let timeout: Duration
        var description: String { "reading the next part took longer than \(self.timeout)" }
    }

    /// Produces the next part within the timeout, or cancels it and throws `ReadTimedOut`.
    func read<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try? await Task.sleep(for: self.timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else { throw ReadTimedOut(timeout: self.timeout) }
            return value
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
