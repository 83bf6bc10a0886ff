import AtriumCore
import Foundation
import Testing

/// Event ids: a position sealed to its tenant. Every way an id can be wrong must decode to nil.
@Suite struct ChangePositionCodecTests {
    let codec = ChangePositionCodec(key: Array(repeating: 7, count: 32))
    let tenant = UUID(uuidString: "0f8e7d6c-5b4a-4938-8271-605f4e3d2c1b")!
    let other = UUID(uuidString: "0f8e7d6c-5b4a-4938-8271-605f4e3d2c1c")!

    @Test(arguments: [Int64(0), 1, 2, 255, 256, 1 << 32, Int64.max])
    func roundTrips(position: Int64) {
        let id = self.codec.encode(position, tenant: self.tenant)
        #expect(id.utf8.count == 22)
        #expect(self.codec.decode(id, tenant: self.tenant) == position)
    }

    @Test func idsSayNothingAboutNeighbouringPositions() {
        let ids = (1...64).map { self.codec.encode(Int64($0), tenant: self.tenant) }
        #expect(Set(ids).count == 64)
        // No shared prefix gives away the order (one AES block: every bit depends on every bit).
        let prefixes = Set(ids.map { $0.prefix(3) })
        #expect(prefixes.count > 56)
    }

    @Test func anotherTenantsIdIsRefused() {
        let id = self.codec.encode(42, tenant: self.tenant)
        #expect(self.codec.decode(id, tenant: self.other) == nil)
    }

    @Test func anIdUnderAnotherKeyIsRefused() {
        let id = ChangePositionCodec(key: Array(repeating: 8, count: 32)).encode(42, tenant: self.tenant)
        #expect(self.codec.decode(id, tenant: self.tenant) == nil)
    }

    @Test func everyTamperedCharacterIsRefused() {
        let id = Array(self.codec.encode(42, tenant: self.tenant))
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        for index in 0..<(id.count - 1) {
            var tampered = id
            tampered[index] = alphabet.first { $0 != id[index] }!
            #expect(self.codec.decode(String(tampered), tenant: self.tenant) == nil, "changed at \(index)")
        }
    }

    @Test(arguments: ["", "a", "AAAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAA", "!!!!!!!!!!!!!!!!!!!!!!", "é", String(repeating: "A", count: 4000), "42"])
    func malformedIdsAreRefused(id: String) {
        #expect(self.codec.decode(id, tenant: self.tenant) == nil)
    }
}
