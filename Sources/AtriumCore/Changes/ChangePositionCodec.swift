import AtriumCrypto
public import Foundation

/// Event ids: a change position bound to its tenant and encrypted (one AES block), so an id
/// is short, cannot be forged or moved to another tenant, and — positions being shared by all
/// tenants — says nothing about how much other tenants write.
public struct ChangePositionCodec: Sendable {
    let cipher: AESBlock

    public init(key: [UInt8]) {
        self.cipher = AESBlock(key: key)
    }

    public func encode(_ position: Int64, tenant: UUID) -> String {
        var block = [UInt8](repeating: 0, count: 16)
        withUnsafeBytes(of: UInt64(bitPattern: position).bigEndian) { block.replaceSubrange(0..<8, with: $0) }
        withUnsafeBytes(of: tenant.uuid) { block.replaceSubrange(8..<16, with: $0.prefix(8)) }
        return Base64.encode(self.cipher.encrypt(block))
    }

    /// The position of an id made by `encode` for `tenant`, or nil (malformed, tampered with,
    /// another tenant's, or made under another key).
    public func decode(_ id: some StringProtocol, tenant: UUID) -> Int64? {
        guard id.utf8.count == 22, let bytes = Base64.decode(id), bytes.count == 16 else { return nil }
        let block = self.cipher.decrypt(bytes)
        let matches = withUnsafeBytes(of: tenant.uuid) { Array($0.prefix(8)) == Array(block[8..<16]) }
        guard matches else { return nil }
        let position = block[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard position <= UInt64(Int64.max) else { return nil }
        return Int64(position)
    }
}
