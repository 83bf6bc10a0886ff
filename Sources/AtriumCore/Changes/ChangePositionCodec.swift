import AtriumCrypto
public import Foundation

/// Event ids: a change position bound to its tenant and encrypted (one AES block), so an id
/// is short, cannot be forged or moved to another tenant (any other tenant id, even one that
/// differs in a single byte, fails the check), and — positions being shared by all
/// tenants — says nothing about how much other tenants write.
public struct ChangePositionCodec: Sendable {
    let cipher: AESBlock

    public init(key: [UInt8]) {
        self.cipher = AESBlock(key: key)
    }

    public func encode(_ position: Int64, tenant: UUID) -> String {
        var block = [UInt8](repeating: 0, count: 16)
        withUnsafeBytes(of: UInt64(bitPattern: position).bigEndian) { block.replaceSubrange(0..<8, with: $0) }
        block.replaceSubrange(8..<16, with: Self.check(tenant))
        return Base64.encode(self.cipher.encrypt(block))
    }

    /// Eight bytes that depend on every byte of the tenant id: its halves folded together.
    private static func check(_ tenant: UUID) -> [UInt8] {
        withUnsafeBytes(of: tenant.uuid) { bytes in (0..<8).map { bytes[$0] ^ bytes[$0 + 8] } }
    }

    /// The position of an id made by `encode` for `tenant`, or nil (malformed, tampered with,
    /// another tenant's, or made under another key).
    public func decode(_ id: some StringProtocol, tenant: UUID) -> Int64? {
        guard id.utf8.count == 22, let bytes = Base64.decode(id), bytes.count == 16 else { return nil }
        let block = self.cipher.decrypt(bytes)
        guard Array(block[8..<16]) == Self.check(tenant) else { return nil }
        let position = block[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard position <= UInt64(Int64.max) else { return nil }
        return Int64(position)
    }
}
