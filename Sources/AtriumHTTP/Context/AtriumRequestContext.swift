public import AtriumCore
public import Hummingbird
import Logging
import NIOCore
import Synchronization

/// Per-request state: Hummingbird's core context plus the request id, the client's address
/// and, once authenticated, the principal.
public struct AtriumRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The request id echoed in `X-Request-ID` and in every problem document and log line.
    public var requestID: String
    /// The client's address: the socket peer, or from `X-Forwarded-For` behind trusted proxies.
    public var clientAddress: String
    /// Who is calling, when the request carried a valid credential.
    public var principal: Principal?
    /// The User-Agent header, for session records.
    public var userAgent: String?
    /// The largest request body this request may send (set from the server's limits).
    public var maximumBodySize = 1 << 20
    /// The connection (or HTTP/2 stream) the request came on: closing it ends a streamed
    /// response whose client stopped reading.
    let channel: any Channel
    /// Who the request turned out to be, for the access log. The context is a value handed
    /// inwards through the middleware; this box carries the answer back out.
    let outcome = RequestOutcome()

    public init(source: ApplicationRequestContextSource) {
        let core = CoreRequestContextStorage(source: source)
        self.coreContext = core
        // Hummingbird has already given the request an id (process-random prefix, counter) and
        // put it in the logger's metadata; using it costs no random bytes and no metadata update.
        self.requestID = source.logger[metadataKey: RequestIdentifier.metadataKey]?.description ?? RequestIdentifier.generate()
        self.clientAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
        self.channel = source.channel
    }

    /// Request facts for throttling and the audit trail.
    public var origin: RequestOrigin {
        RequestOrigin(clientAddress: self.clientAddress, requestID: self.requestID, userAgent: self.userAgent)
    }

    /// The principal, or 401. Roles are the services' to check (each states what it needs),
    /// so routes ask only for a caller.
    public func authenticated() throws -> Principal {
        guard let principal else { throw AtriumError.unauthenticated }
        return principal
    }
}

/// What inner middleware learned about a request that outer middleware logs.
final class RequestOutcome: Sendable {
    private let storage = Mutex<Principal?>(nil)

    var principal: Principal? {
        get { self.storage.withLock { $0 } }
        set { self.storage.withLock { $0 = newValue } }
    }
}
