import HummingbirdCore
import Synchronization

/// The server's open HTTP connections, counted where they are accepted: for the metrics, and
/// so the cap can be observed rather than guessed at from a client.
public final class HTTPConnections: Sendable {
    private let state = Mutex(State())

    struct State {
        var open = 0
        var accepted = 0
        var mostOpen = 0
        /// Times the server stopped accepting because the cap was reached.
        var pauses = 0
    }

    public struct Snapshot: Sendable, Equatable {
        public let open: Int
        public let accepted: Int
        public let mostOpen: Int
        public let pauses: Int
    }

    public init() {}

    public var snapshot: Snapshot {
        self.state.withLock { Snapshot(open: $0.open, accepted: $0.accepted, mostOpen: $0.mostOpen, pauses: $0.pauses) }
    }

    func opened() {
        self.state.withLock {
            $0.open += 1
            $0.accepted += 1
            $0.mostOpen = max($0.mostOpen, $0.open)
        }
    }

    func closed() {
        self.state.withLock { $0.open -= 1 }
    }

    /// Whether another connection may be accepted; a refusal is a pause of the accept loop,
    /// which resumes when a connection closes.
    func mayAccept(maximum: Int) -> Bool {
        self.state.withLock {
            guard $0.open < maximum else {
                $0.pauses += 1
                return false
            }
            return true
        }
    }
}

/// At most `maximum` connections at once: at the cap the server stops accepting (new clients
/// wait in the kernel's backlog) until one closes.
struct ConnectionCap: AvailableConnectionsDelegate {
    let maximum: Int
    let connections: HTTPConnections

    func connectionOpened() { self.connections.opened() }
    func connectionClosed() { self.connections.closed() }
    func isAcceptingNewConnections() -> Bool { self.connections.mayAccept(maximum: self.maximum) }
}
