public import Foundation
import Synchronization

/// Sessions ended recently, held in memory so checking an access token costs no query.
///
/// Filled at start and after every listener reconnect from `atrium.auth_revoked_sessions()`,
/// and kept current by NOTIFY `atrium_revocations`. An entry is dropped once no access token of
/// that session can still be unexpired.
public final class RevocationSet: Sendable {
    private let state = Mutex<State>(State())

    private struct State {
        var sessions: [UUID: Date] = [:]
        var nextPrune = Date.distantPast
    }

    /// How long an entry must be kept: at least the access token lifetime.
    let retention: TimeInterval

    public init(retention: Duration) {
        self.retention = retention.seconds + 60
    }

    public func contains(_ session: UUID) -> Bool {
        self.state.withLock { $0.sessions[session] != nil }
    }

    public var count: Int {
        self.state.withLock { $0.sessions.count }
    }

    /// Adds a session revoked now.
    public func insert(_ session: UUID, now: Date = Date()) {
        self.insert(session, keepUntil: now.addingTimeInterval(self.retention), now: now)
    }

    /// Adds a session to keep until `keepUntil`.
    public func insert(_ session: UUID, keepUntil: Date, now: Date = Date()) {
        self.state.withLock { state in
            state.sessions[session] = max(state.sessions[session] ?? .distantPast, keepUntil)
            if now >= state.nextPrune {
                state.sessions = state.sessions.filter { $0.value > now }
                state.nextPrune = now.addingTimeInterval(60)
            }
        }
    }
}
