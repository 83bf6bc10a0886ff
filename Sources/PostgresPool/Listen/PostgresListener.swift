import Logging
import ServiceLifecycle

/// Delivers LISTEN/NOTIFY notifications as an async sequence, across reconnects.
///
/// Holds one dedicated connection (outside any pool). When it breaks, the listener reconnects
/// with backoff and LISTENs again, then yields `.listening`: notifications sent while it was
/// away are lost, so a consumer reloads whatever state it derives from them at that point.
public final class PostgresListener: Service, Sendable {
    public enum Event: Sendable, Hashable {
        /// Connected and listening on every channel (first time, and after each reconnect).
        case listening
        case notification(PostgresNotification)
    }

    /// The events; meant for one consumer.
    public let events: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation
    private let configuration: PostgresConfiguration
    private let channels: [String]
    private let reconnectDelay: Duration
    private let maxReconnectDelay: Duration
    private let logger: Logger

    public init(
        configuration: PostgresConfiguration,
        channels: [String],
        reconnectDelay: Duration = .milliseconds(100),
        maxReconnectDelay: Duration = .seconds(5),
        logger: Logger
    ) {
        var configuration = configuration
        configuration.applicationName += "-listener"
        configuration.statementTimeout = nil
        self.configuration = configuration
        self.channels = channels
        self.reconnectDelay = reconnectDelay
        self.maxReconnectDelay = maxReconnectDelay
        self.logger = logger
        (self.events, self.continuation) = AsyncStream.makeStream(of: Event.self)
    }

    /// Listens until graceful shutdown or cancellation, then finishes `events`.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await self.listenUntilCancelled()
        }
        self.continuation.finish()
    }

    private func listenUntilCancelled() async {
        var failures = 0
        while !Task.isCancelled {
            do {
                let connection = try await PostgresConnection.connect(configuration: self.configuration, logger: self.logger)
                let continuation = self.continuation
                connection.onNotification { notification in
                    continuation.yield(.notification(notification))
                }
                for channel in self.channels {
                    try await connection.simpleQuery("LISTEN \(Self.quoteIdentifier(channel))")
                }
                failures = 0
                self.continuation.yield(.listening)
                let error = await withTaskCancellationHandler {
                    await connection.closed()
                } onCancel: {
                    connection.terminate()
                }
                guard !Task.isCancelled else { return }
                self.logger.warning("listener connection lost; reconnecting", metadata: ["db.error": "\(error.message)"])
            } catch {
                failures += 1
                self.logger.warning("listener cannot connect", metadata: ["db.error": "\(error)"])
            }
            let delay = min(self.reconnectDelay * (1 << min(max(failures - 1, 0), 16)), self.maxReconnectDelay)
            try? await Task.sleep(for: delay)
        }
    }

    /// Quotes a channel name as an SQL identifier.
    static func quoteIdentifier(_ name: String) -> String {
        var quoted = "\""
        for character in name {
            if character == "\"" { quoted.append("\"") }
            quoted.append(character)
        }
        return quoted + "\""
    }
}
