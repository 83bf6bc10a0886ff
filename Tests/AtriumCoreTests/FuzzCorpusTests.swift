import AtriumFuzzTargets
import Foundation
import Testing

/// Every input of the fuzzing corpus (seeds and the inputs that once crashed a target) goes
/// through its target on every test run, so a fixed crash stays fixed without libFuzzer.
@Suite struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/corpus")

    @Test(arguments: FuzzTarget.all.map(\.name))
    func theCorpusPassesItsTarget(name: String) throws {
        let target = try #require(FuzzTarget.named(name))
        let directory = Self.corpus.appendingPathComponent(name)
        let files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
        #expect(!files.isEmpty, "no seeds for \(name)")
        for file in files {
            target.run(try [UInt8](Data(contentsOf: file)))
        }
    }
}
