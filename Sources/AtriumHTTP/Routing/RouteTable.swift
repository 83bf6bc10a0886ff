public import HTTPTypes
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
    /// Templates by segment count: each segment's bytes (nil for a `{parameter}`), and a mask
    /// with a bit per literal segment, the first segment highest, so that comparing masks
    /// compares specificity left to right.
    private var templates: [Int: [Template]] = [:]

    private struct Template {
        let segments: [[UInt8]?]
        let literals: UInt64
        let method: HTTPRequest.Method
    }

    mutating func add(_ method: HTTPRequest.Method, _ path: RouterPath) {
        let route = Route(method: method, path: path.description)
        self.routes.append(route)
        let segments: [[UInt8]?] = route.path.utf8.split(separator: UInt8(ascii: "/")).map { $0.first == UInt8(ascii: "{") ? nil : Array($0) }
        precondition(segments.count <= 64, "route templates have at most 64 segments")
        var literals: UInt64 = 0
        for (index, segment) in segments.enumerated() where segment != nil {
            literals |= 1 << UInt64(63 - index)
        }
        self.templates[segments.count, default: []].append(Template(segments: segments, literals: literals, method: method))
    }

    /// The methods the route serving this concrete path allows, or nil when no template
    /// matches it. As in the router, a literal segment beats a parameter: `/v1/invitations/accept`
    /// is the accept route (POST), not `/v1/invitations/{id}` (DELETE).
    public func allowedMethods(for path: String) -> [HTTPRequest.Method]? {
        let segments = path.utf8.split(separator: UInt8(ascii: "/"))
        guard let candidates = self.templates[segments.count] else { return nil }
        var best: UInt64 = 0
        var methods: [HTTPRequest.Method] = []
        for candidate in candidates {
            guard zip(candidate.segments, segments).allSatisfy({ template, segment in template.map { $0.elementsEqual(segment) } ?? true }) else { continue }
            if methods.isEmpty || candidate.literals > best {
                best = candidate.literals
                methods = [candidate.method]
            } else if candidate.literals == best, !methods.contains(candidate.method) {
                methods.append(candidate.method)
            }
        }
        if methods.contains(.get) { methods.append(.head) }
        return methods.isEmpty ? nil : methods
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

    /// `RouteTable.allowedMethods(for:)` without copying the table.
    func allowedMethods(for path: String) -> [HTTPRequest.Method]? {
        self.storage.withLock { $0.allowedMethods(for: path) }
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
