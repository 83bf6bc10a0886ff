import HTTPTypes
import Hummingbird
import Synchronization

/// Every route the application serves, as method and path template (`/v1/members/{userId}`).
///
/// Built while the routes are registered, so it cannot drift from the router: the 405 answer
/// (`Allow`) and the OpenAPI coverage test both read it.
public struct RouteTable: Sendable {
    public struct Route: Sendable, Hashable {
        public let method: HTTPRequest.Method
        /// The template in OpenAPI form: `/v1/collections/{name}`.
        public let path: String
    }

    public private(set) var routes: [Route] = []

    mutating func add(_ method: HTTPRequest.Method, _ path: RouterPath) {
        self.routes.append(Route(method: method, path: path.description))
    }

    /// The methods some route allows on this concrete path, or nil when no template matches it.
    public func allowedMethods(for path: String) -> [HTTPRequest.Method]? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        var methods: [HTTPRequest.Method] = []
        for route in self.routes where Self.matches(route.path, segments) && !methods.contains(route.method) {
            methods.append(route.method)
        }
        return methods.isEmpty ? nil : methods
    }

    /// The template a concrete path matches, for metrics and logs of requests no route served.
    static func matches(_ template: String, _ segments: [Substring]) -> Bool {
        let parts = template.split(separator: "/", omittingEmptySubsequences: true)
        guard parts.count == segments.count else { return false }
        return zip(parts, segments).allSatisfy { part, segment in part.hasPrefix("{") || part == segment }
    }
}

/// The table, filled in once the routes are registered; middleware added before the routes
/// (the 405 answer) reads it through this.
final class RouteTableReference: Sendable {
    private let storage = Mutex(RouteTable())

    var table: RouteTable {
        get { self.storage.withLock { $0 } }
        set { self.storage.withLock { $0 = newValue } }
    }
}

/// Registers routes on the Hummingbird router and records each one in a `RouteTable`.
final class RouteRecorder: RouterMethods, @unchecked Sendable {
    typealias Context = AtriumRequestContext
    let router: Router<AtriumRequestContext>
    private(set) var table = RouteTable()

    init(router: Router<AtriumRequestContext>) {
        self.router = router
    }

    @discardableResult
    func on<Responder: HTTPResponder>(_ path: RouterPath, method: HTTPRequest.Method, responder: Responder) -> Self
    where Responder.Context == AtriumRequestContext {
        self.table.add(method, path)
        self.router.on(path, method: method, responder: responder)
        return self
    }

    @discardableResult
    func add(middleware: any MiddlewareProtocol<Request, Response, AtriumRequestContext>) -> Self {
        self.router.add(middleware: middleware)
        return self
    }
}
