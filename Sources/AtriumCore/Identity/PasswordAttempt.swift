import AtriumCrypto
import Foundation
import PostgresPool

/// One try of a password (sign-in, password change, accepting an invitation as an existing
/// user), throttled per account and address.
///
/// The attempt is reserved as a failure in the same statement that checks the throttle, before
/// any hashing, so concurrent wrong passwords cannot all pass a check that none of them has yet
/// been counted against; a success takes the reservation back.
struct PasswordAttempt {
    let id = SecureRandom.uuid()
    /// The throttling key: the lower-cased email's SHA-256, whether or not the user exists.
    let account: String
    let origin: RequestOrigin

    init(email: String, origin: RequestOrigin) {
        self.account = AuthService.accountKey(email)
        self.origin = origin
    }

    /// Returns the seconds to wait, or 0 once the attempt is reserved.
    var begin: PostgresQuery {
        "SELECT atrium.auth_login_begin(\(self.account), \(self.origin.clientAddress), \(self.id))"
    }

    /// The password was right: the attempt is no failure, and the address becomes recognised.
    var succeeded: PostgresQuery {
        "SELECT atrium.auth_login_succeeded(\(self.account), \(self.origin.clientAddress), \(self.id))"
    }

    /// Throws `throttled` unless the result of `begin` reserved the attempt.
    static func requireReserved(_ rows: PostgresRows, message: String) throws {
        let wait = try rows[0].decode(Int.self, column: 0)
        guard wait == 0 else { throw AtriumError(.throttled, message, retryAfter: wait) }
    }
}
