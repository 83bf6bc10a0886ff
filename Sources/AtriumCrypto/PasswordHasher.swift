import Synchronization

/// Hashes and verifies passwords with scrypt, on a bounded executor.
public final class PasswordHasher: Sendable {
    /// Parameters for new hashes; older hashes still verify and report that they need rehashing.
    public let parameters: Scrypt.Parameters
    public let executor: BoundedExecutor
    private let dummy: Mutex<String?> = Mutex(nil)

    public static let minimumLength = 8
    public static let maximumLength = 1024

    public init(parameters: Scrypt.Parameters = .recommended, permits: Int, queueLimit: Int) {
        self.parameters = parameters
        self.executor = BoundedExecutor(label: "atrium.password-hasher", permits: permits, queueLimit: queueLimit)
    }

    /// What a verification found.
    public enum Verification: Sendable, Equatable {
        case mismatch
        /// The password matches; `needsRehash` when the stored hash uses other parameters.
        case match(needsRehash: Bool)
    }

    /// Why a password is not acceptable, or nil. Bytes, not characters: no truncation anywhere.
    public static func problem(with password: String) -> String? {
        let length = password.utf8.count
        if length < self.minimumLength { return "must be at least \(self.minimumLength) bytes" }
        if length > self.maximumLength { return "must be at most \(self.maximumLength) bytes" }
        return nil
    }

    /// Jobs hashing and waiting now.
    public var depth: (running: Int, waiting: Int) { self.executor.depth }

    /// A new PHC string for `password` with a fresh 16-byte salt.
    public func hash(_ password: String) async throws -> String {
        let parameters = self.parameters
        let bytes = Array(password.utf8)
        return try await self.executor.run {
            let salt = SecureRandom.bytes(16)
            let hash = try Scrypt.derive(password: bytes, salt: salt, parameters: parameters)
            return PasswordHash(parameters: parameters, salt: salt, hash: hash).phcString
        }
    }

    /// Checks `password` against a stored PHC string in constant time.
    public func verify(_ password: String, against phc: String) async throws -> Verification {
        guard let stored = PasswordHash(phc: phc) else { return .mismatch }
        let bytes = Array(password.utf8)
        let current = self.parameters
        return try await self.executor.run {
            let computed = try Scrypt.derive(password: bytes, salt: stored.salt, parameters: stored.parameters, length: stored.hash.count)
            guard constantTimeEquals(computed, stored.hash) else { return .mismatch }
            return .match(needsRehash: stored.parameters != current || stored.hash.count != 32 || stored.salt.count != 16)
        }
    }

    /// Spends the same work as a real verification, for an account that does not exist, so
    /// answering "no such user" takes as long as "wrong password".
    public func verifyAgainstDummy(_ password: String) async throws {
        let dummy: String
        if let existing = self.dummy.withLock({ $0 }) {
            dummy = existing
        } else {
            dummy = try await self.hash(String(decoding: SecureRandom.bytes(12).map { 0x61 + $0 % 26 }, as: UTF8.self))
            self.dummy.withLock { $0 = $0 ?? dummy }
        }
        _ = try await self.verify(password, against: dummy)
    }
}
