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
    /// Templates split into segments (nil for a `{parameter}`), by segment count.
    private var templates: [Int: [(segments: [Substring?], method: HTTPRequest.Method)]] = [:]

    mutating func add(_ method: HTTPRequest.Method, _ path: RouterPath) {
        let route = Route(method: method, path: path.description)
        self.routes.append(route)
        let segments: [Substring?] = route.path.split(separator: "/").map { $0.hasPrefix("{") ? nil : $0 }
        self.templates[segments.count, default: []].append((segments, method))
    }

    /// The methods the route serving this concrete path allows, or nil when no template
    /// matches it. As in the router, a literal segment beats a parameter: `/v1/invitations/accept`
    /// is the accept route (POST), not `/v1/invitations/{id}` (DELETE).
    public func allowedMethods(for path: String) -> [HTTPRequest.Method]? {
        let segments = path.split(separator: "/")
        guard let candidates = self.templates[segments.count] else { return nil }
        var best: [Bool] = []
        var methods: [HTTPRequest.Method] = []
        for candidate in candidates {
            guard zip(candidate.segments, segments).allSatisfy({ template, segment in template == nil || template == segment }) else { continue }
            let literals = candidate.segments.map { $0 != nil }
            if methods.isEmpty || Self.moreSpecific(literals, than: best) {
                best = literals
                methods = [candidate.method]
            } else if literals == best, !methods.contains(candidate.method) {
                methods.append(candidate.method)
            }
        }
        if methods.contains(.get) { methods.append(.head) }
        return methods.isEmpty ? nil : methods
    }

    /// Whether `a` has a literal where `b` first differs from it (segments compared left to right).
    static func moreSpecific(_ a: [Bool], than b: [Bool]) -> Bool {
        for (x, y) in zip(a, b) where x != y { return x }
        return false
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
