import Dispatch
import Synchronization
public import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a webhook may be sent: the guard against server-side request forgery.
///
/// A tenant admin chooses the URL, so without a guard an endpoint could point the server at
/// its own database port, the cloud metadata service or the private network. URLs must be
/// `https://`; the host name is resolved and every address it resolves to must be public. The
/// check runs when the endpoint is saved and again before every connection, and the
/// connection then goes to the address that was checked (so a DNS answer that changes between
/// check and connect, "DNS rebinding", reaches nothing private).
public struct WebhookAddresses: Sendable {
    /// Allows `http://` and private, loopback and link-local addresses (local receivers in
    /// development and tests): `ATRIUM_WEBHOOKS_ALLOW_PRIVATE=1`.
    public let allowPrivate: Bool

    public init(allowPrivate: Bool) {
        self.allowPrivate = allowPrivate
    }

    /// A URL's parts as sending needs them.
    public struct Target: Sendable, Hashable {
        public let url: URL
        public let host: String
        public let port: Int
        public let isTLS: Bool
    }

    /// The URL's syntax and scheme; `nil` and a reason when it cannot be an endpoint.
    public func target(_ text: String) -> (target: Target?, problem: String?) {
        guard text.utf8.count <= 2048 else { return (nil, "must be at most 2048 bytes") }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              let host = components.host, !host.isEmpty, let url = components.url
        else { return (nil, "must be an absolute URL like https://example.com/hooks") }
        guard scheme == "https" || (scheme == "http" && self.allowPrivate) else {
            return (nil, self.allowPrivate ? "must be an http:// or https:// URL" : "must be an https:// URL")
        }
        guard components.user == nil, components.password == nil else {
            return (nil, "must not carry a user name or password (they would be logged; use the signature to authenticate)")
        }
        guard components.fragment == nil else { return (nil, "must not have a fragment") }
        let port = components.port ?? (scheme == "https" ? 443 : 80)
        guard (1...65535).contains(port) else { return (nil, "has an invalid port") }
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return (Target(url: url, host: bare.lowercased(), port: port, isTLS: scheme == "https"), nil)
    }

    /// The addresses to connect to for `host`, all of them allowed; throws a reason otherwise.
    public func resolve(_ host: String) async throws -> [IPAddress] {
        let addresses: [IPAddress]
        if let literal = IPAddress(host) {
            addresses = [literal]
        } else {
            addresses = try await Self.lookUp(host)
        }
        guard !addresses.isEmpty else { throw Refusal(reason: "\(host) does not resolve to any address") }
        if !self.allowPrivate, let refused = addresses.first(where: { !$0.isPublic }) {
            let what = IPAddress(host) == nil ? "\(host) resolves to \(refused), which" : "\(host)"
            throw Refusal(reason: "\(what) is not a public address (loopback, private, link-local and reserved addresses are refused)")
        }
        return addresses
    }

    public struct Refusal: Error, Sendable, CustomStringConvertible {
        public let reason: String
        public var description: String { self.reason }
    }

    /// getaddrinfo on a thread of its own queue: it blocks, and must not block the
    /// cooperative pool or an event loop.
    private static let resolverQueue = DispatchQueue(label: "atrium.webhooks.resolver", attributes: .concurrent)

    /// Lookups under way; getaddrinfo cannot be cancelled and holds a thread, so a flood of
    /// endpoint changes or deliveries to slow-resolving names gets a refusal, not more threads.
    private static let lookups = Atomic<Int>(0)
    static let maximumLookups = 16

    private static func lookUp(_ host: String) async throws -> [IPAddress] {
        guard Self.lookups.add(1, ordering: .relaxed).newValue <= Self.maximumLookups else {
            Self.lookups.subtract(1, ordering: .relaxed)
            throw Refusal(reason: "too many address lookups are under way; retry shortly")
        }
        defer { Self.lookups.subtract(1, ordering: .relaxed) }
        return try await withCheckedThrowingContinuation { continuation in
            Self.resolverQueue.async {
                var hints = addrinfo()
                hints.ai_family = AF_UNSPEC
                #if canImport(Glibc)
                hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
                #else
                hints.ai_socktype = SOCK_STREAM
                #endif
                var list: UnsafeMutablePointer<addrinfo>?
                let status = getaddrinfo(host, nil, &hints, &list)
                guard status == 0, let first = list else {
                    continuation.resume(throwing: Refusal(reason: "\(host) could not be resolved"))
                    return
                }
                defer { freeaddrinfo(first) }
                var found: [IPAddress] = []
                var entry: UnsafeMutablePointer<addrinfo>? = first
                while let current = entry {
                    if let address = current.pointee.ai_addr, let parsed = IPAddress(socketAddress: address) , !found.contains(parsed) {
                        found.append(parsed)
                    }
                    entry = current.pointee.ai_next
                }
                continuation.resume(returning: found)
            }
        }
    }
}

/// An IPv4 or IPv6 address, and whether it is public.
public enum IPAddress: Sendable, Hashable, CustomStringConvertible {
    case v4([UInt8])
    case v6([UInt8])

    public init?(_ text: String) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self = .v4(withUnsafeBytes(of: &v4) { Array($0) })
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            self = .v6(withUnsafeBytes(of: &v6) { Array($0) })
        } else {
            return nil
        }
    }

    init?(socketAddress: UnsafeMutablePointer<sockaddr>) {
        switch Int32(socketAddress.pointee.sa_family) {
        case AF_INET:
            self = socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                var address = pointer.pointee.sin_addr
                return .v4(withUnsafeBytes(of: &address) { Array($0) })
            }
        case AF_INET6:
            self = socketAddress.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                var address = pointer.pointee.sin6_addr
                return .v6(withUnsafeBytes(of: &address) { Array($0) })
            }
        default:
            return nil
        }
    }

    public var description: String {
        switch self {
        case .v4(let bytes):
            return bytes.map(String.init).joined(separator: ".")
        case .v6(var bytes):
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            _ = inet_ntop(AF_INET6, &bytes, &text, socklen_t(text.count))
            return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// Whether the address is in the public unicast space: not loopback, private (RFC 1918,
    /// unique local), shared (CGNAT), link-local (which holds the cloud metadata address
    /// 169.254.169.254), multicast, documentation, benchmarking or reserved. IPv6 forms that
    /// embed an IPv4 address (mapped, NAT64, 6to4) are judged by that address.
    public var isPublic: Bool {
        switch self {
        case .v4(let b):
            return Self.isPublicV4(b)
        case .v6(let b):
            if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xFF && b[11] == 0xFF { return Self.isPublicV4(Array(b[12...])) }
            if b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xFF && b[3] == 0x9B && b[4..<12].allSatisfy({ $0 == 0 }) {
                return Self.isPublicV4(Array(b[12...]))
            }
            if b[0] == 0x20 && b[1] == 0x02 { return Self.isPublicV4(Array(b[2..<6])) }
            if b[0..<15].allSatisfy({ $0 == 0 }) { return false }  // :: and ::1
            if b[0..<12].allSatisfy({ $0 == 0 }) { return false }  // IPv4-compatible (deprecated)
            if b[0] & 0xFE == 0xFC { return false }  // fc00::/7 unique local
            if b[0] == 0xFE && b[1] & 0xC0 == 0x80 { return false }  // fe80::/10 link-local
            if b[0] == 0xFE && b[1] & 0xC0 == 0xC0 { return false }  // fec0::/10 site-local
            if b[0] == 0xFF { return false }  // multicast
            if b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0D && b[3] == 0xB8 { return false }  // documentation
            if b[0] == 0x01 && b[1] == 0x00 && b[2..<8].allSatisfy({ $0 == 0 }) { return false }  // discard
            if b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x00 && b[3] < 0x02 { return false }  // Teredo, benchmarking, ORCHID
            return b[0] & 0xE0 == 0x20  // 2000::/3, the global unicast space
        }
    }

    private static func isPublicV4(_ b: [UInt8]) -> Bool {
        switch (b[0], b[1], b[2]) {
        case (0, _, _), (10, _, _), (127, _, _): return false
        case (100, 64...127, _): return false
        case (169, 254, _): return false
        case (172, 16...31, _): return false
        case (192, 0, 0), (192, 0, 2), (192, 88, 99), (192, 168, _): return false
        case (198, 18...19, _), (198, 51, 100), (203, 0, 113): return false
        case (224..., _, _): return false
        default: return true
        }
    }
}
