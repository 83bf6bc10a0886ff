import AtriumCrypto
import Foundation
import Testing

@Suite struct RandomUUIDTests {
    /// Version 4, RFC 9562 variant, and random elsewhere (the ids of tenants, users, sessions,
    /// and of records written before ids were time-ordered).
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

@Suite struct TimeOrderedUUIDTests {
    /// Version 7: the first six bytes are the time in milliseconds, so ids made later sort
    /// after (a btree keyed by them grows at its end); the rest is random.
    @Test func idsAreVersion7WithTheTimeFirst() {
        let before = SecureRandom.unixMilliseconds()
        let ids = (0..<4096).map { _ in SecureRandom.uuidV7() }
        let after = SecureRandom.unixMilliseconds()
        #expect(Set(ids).count == ids.count)
        var previous: UInt64 = 0
        for id in ids {
            #expect(id.uuid.6 >> 4 == 7, "\(id) is not version 7")
            #expect(id.uuid.8 >> 6 == 0b10, "\(id) has the wrong variant")
            let time = withUnsafeBytes(of: id.uuid) { $0.prefix(6).reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
            #expect((before...after).contains(time), "\(id): \(time) outside \(before)...\(after)")
            #expect(time >= previous, "ids made later carry a later time")
            previous = time
        }
        let early = SecureRandom.uuidV7(milliseconds: 1_000)
        let late = SecureRandom.uuidV7(milliseconds: 1_001)
        #expect(early.uuidString < late.uuidString)
        #expect(early.uuidString.hasPrefix("00000000-03E8-7"))
    }

    /// `count=estimated` reads bytes 9 to 14 of an id as uniform over their range, in ids of
    /// both versions: each of their bits is set in about half the ids (bounds as above).
    @Test func theLastBytesAreRandomInBothVersions() {
        for ids in [(0..<4096).map { _ in SecureRandom.uuidV7() }, (0..<4096).map { _ in SecureRandom.uuid() }] {
            for byte in 9..<15 {
                for bit in 0..<8 {
                    let set = ids.filter { id in withUnsafeBytes(of: id.uuid) { $0[byte] } >> bit & 1 == 1 }.count
                    #expect((1888...2208).contains(set), "byte \(byte) bit \(bit) set in \(set) of 4096 ids")
                }
            }
        }
    }
}
