/// Why the embedded PostgreSQL cluster could not be set up, started or stopped.
public struct EmbeddedPostgresError: Error, CustomStringConvertible, Sendable {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { self.message }
}
