/// Where and how the HTTP server listens.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// Trusted reverse proxies in front of Atrium; the client address is read from
    /// `X-Forwarded-For` accordingly. 0: use the socket's peer address.
    public var proxyHops: Int

    public init(host: String = "127.0.0.1", port: Int = 8080, proxyHops: Int = 0) {
        self.host = host
        self.port = port
        self.proxyHops = proxyHops
    }
}
