import ArgumentParser
import AtriumCrypto

/// `atrium keygen`: prints a new access-token signing key for `ATRIUM_TOKEN_KEYS`.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Print a new access-token signing key (kid:secret) for ATRIUM_TOKEN_KEYS.",
        discussion: """
            ATRIUM_TOKEN_KEYS is a comma-separated list of such keys: the first signs, all verify.
            To rotate: put the new key first, deploy, and drop the old one 15 minutes later.
            """
    )

    func run() {
        print(TokenKeyRing.generateKey())
    }
}
