@testable import AtriumCrypto
import Testing

@Suite struct PasswordTests {
    @Test func scryptMatchesRFC7914() throws {
        let empty = try Scrypt.derive(password: [], salt: [], parameters: .init(logN: 4, r: 1, p: 1), length: 64)
        #expect(Hex.encode(empty) == "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906")
        let nacl = try Scrypt.derive(password: Array("password".utf8), salt: Array("NaCl".utf8), parameters: .init(logN: 10, r: 8, p: 16), length: 64)
        #expect(Hex.encode(nacl) == "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640")
    }

    @Test func recommendedParametersNeedMoreThanOpenSSLsDefaultMemory() throws {
        // OpenSSL refuses above 32 MiB unless maxmem is raised; 2^17 · 8 · 128 is 128 MiB.
        #expect(Scrypt.Parameters.recommended.memory > 32 * 1024 * 1024)
        let key = try Scrypt.derive(password: Array("correct horse".utf8), salt: SecureRandom.bytes(16), parameters: .recommended)
        #expect(key.count == 32)
    }

    @Test func hashesArePHCStringsThatVerifyAndReportOldParameters() async throws {
        let old = PasswordHasher(parameters: .init(logN: 10, r: 8, p: 1), permits: 2, queueLimit: 4)
        let current = PasswordHasher(parameters: .init(logN: 11, r: 8, p: 1), permits: 2, queueLimit: 4)
        let phc = try await old.hash("hunter2hunter2")
        #expect(phc.hasPrefix("$scrypt$ln=10,r=8,p=1$"))
        let parsed = try #require(PasswordHash(phc: phc))
        #expect(parsed.salt.count == 16 && parsed.hash.count == 32)
        #expect(try await old.verify("hunter2hunter2", against: phc) == .match(needsRehash: false))
        #expect(try await current.verify("hunter2hunter2", against: phc) == .match(needsRehash: true))
        #expect(try await current.verify("hunter2hunter3", against: phc) == .mismatch)
        #expect(try await current.verify("hunter2hunter2", against: "$scrypt$garbage") == .mismatch)
        // Two hashes of the same password differ (fresh salt each time).
        #expect(try await old.hash("hunter2hunter2") != phc)
    }

    @Test func longPasswordsAreNotTruncated() async throws {
        let hasher = PasswordHasher(parameters: .init(logN: 8, r: 8, p: 1), permits: 1, queueLimit: 1)
        let long = String(repeating: "a", count: 1023)
        let phc = try await hasher.hash(long + "b")
        #expect(try await hasher.verify(long + "c", against: phc) == .mismatch)
        #expect(try await hasher.verify(long + "b", against: phc) == .match(needsRehash: false))
        #expect(PasswordHasher.problem(with: long + "b") == nil)
        #expect(PasswordHasher.problem(with: long + "bc") != nil)
        #expect(PasswordHasher.problem(with: "short") != nil)
        // Bytes, not characters: four 2-byte characters are 8 bytes.
        #expect(PasswordHasher.problem(with: "éééé") == nil)
    }

    @Test func malformedPHCStringsAreRejected() {
        for text in ["", "$scrypt$ln=17,r=8,p=1$c2FsdA$", "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                     "$scrypt$ln=99,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "$scrypt$ln=17,ln=17,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"] {
            #expect(PasswordHash(phc: text) == nil, "\(text)")
        }
    }

    @Test func theExecutorRefusesWorkBeyondItsQueue() async throws {
        let executor = BoundedExecutor(label: "test", permits: 1, queueLimit: 1)
        let gate = Gate()
        async let first: Void = executor.run { gate.wait() }
        while executor.depth.running < 1 { try await Task.sleep(for: .milliseconds(1)) }
        async let second: Void = executor.run {}
        while executor.depth.waiting < 1 { try await Task.sleep(for: .milliseconds(1)) }
        await #expect(throws: BoundedExecutor.Overloaded.self) {
            try await executor.run {}
        }
        gate.open()
        try await first
        try await second
        #expect(executor.depth.running == 0)
    }
}

/// Blocks an executor thread until opened.
final class Gate: @unchecked Sendable {
    private let semaphore = DispatchSemaphoreBox()
    func wait() { self.semaphore.wait() }
    func open() { self.semaphore.signal() }
}

import Dispatch

final class DispatchSemaphoreBox: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    func wait() { self.semaphore.wait() }
    func signal() { self.semaphore.signal() }
}
