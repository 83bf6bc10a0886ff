import Hummingbird
import Logging

/// Per-request state: Hummingbird's core context plus the request id.
public struct AtriumRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The request id echoed in `X-Request-ID` and in every problem document and log line.
    public var requestID: String

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.requestID = RequestIdentifier.generate()
    }
}
