import AtriumCrypto
import Foundation
import Testing

@Suite struct RandomUUIDTests {
    /// Version 4, RFC 9562 variant, and random elsewhere: the estimated count reads the first
    /// 48 bits of record ids as uniform over their range.
    @Test func idsAreVersion4WithRandomBits() {
        let ids = (0..<4096).map { _ in SecureRandom.uuid() }
        #expect(Set(ids).count == ids.count)
        for id in ids {
            #expect(id.uuid.6 >> 4 == 4, "\(id) is not version 4")
            #expect(id.uuid.8 >> 6 == 0b10, "\(id) has the wrong variant")
            #expect(UUID(uuidString: id.uuidString) == id)
        }
        // Each bit of the first six bytes is set in about half the ids: 4096 draws have a standard
        // deviation of 32, so 2048 ± 160 is five (a chance of about 3 in 100,000 that one of the
        // 48 bits falls outside by luck); a stuck bit (0 or 4096) or a biased one is far outside.
        for byte in 0..<6 {
            for bit in 0..<8 {
                let set = ids.filter { id in withUnsafeBytes(of: id.uuid) { $0[byte] } >> bit & 1 == 1 }.count
                #expect((1888...2208).contains(set), "byte \(byte) bit \(bit) set in \(set) of 4096 ids")
            }
        }
    }
}
