/// A stored password hash in the PHC string format: `$scrypt$ln=17,r=8,p=1$<salt>$<hash>`
/// (salt and hash in unpadded standard base64). The parameters travel with the hash, so they
/// can be raised later and old hashes still verify (and get upgraded at the next login).
public struct PasswordHash: Sendable, Hashable {
    public let parameters: Scrypt.Parameters
    public let salt: [UInt8]
    public let hash: [UInt8]

    public init(parameters: Scrypt.Parameters, salt: [UInt8], hash: [UInt8]) {
        self.parameters = parameters
        self.salt = salt
        self.hash = hash
    }

    /// Parses a PHC string; nil for anything malformed or not scrypt.
    public init?(phc: String) {
        let fields = phc.split(separator: "$", omittingEmptySubsequences: false)
        guard fields.count == 5, fields[0].isEmpty, fields[1] == "scrypt" else { return nil }
        guard let parameters = Scrypt.Parameters(phc: fields[2]),
              let salt = Base64.decode(fields[3], alphabet: .standard), salt.count >= 8,
              let hash = Base64.decode(fields[4], alphabet: .standard), hash.count >= 16
        else { return nil }
        self.init(parameters: parameters, salt: salt, hash: hash)
    }

    public var phcString: String {
        "$scrypt$\(self.parameters)$\(Base64.encode(self.salt, alphabet: .standard))$\(Base64.encode(self.hash, alphabet: .standard))"
    }
}
