import AtriumFuzzTargets
import Foundation
#if FUZZING
import CLibFuzzer
#endif

/// Runs one input through the target named by ATRIUM_FUZZ_TARGET. Also libFuzzer's entry
/// point by name, for when its own main is linked in.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    selectedTarget.run(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

let selectedTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["ATRIUM_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTarget.named(name) else {
        fatalError("set ATRIUM_FUZZ_TARGET to one of \(FuzzTarget.all.map(\.name).joined(separator: ", "))")
    }
    return target
}()

/// Built with `ATRIUM_FUZZ=1` (see .ci/fuzz), this is a libFuzzer fuzzer taking libFuzzer's
/// arguments. Built normally, it replays inputs instead — every file given, or every file in a
/// directory given — to reproduce what the fuzzer found.
@main
struct Fuzz {
    static func main() throws {
        #if FUZZING
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) })
        #else
        var count = 0
        for path in CommandLine.arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: path])
            }
            let files = isDirectory.boolValue ? try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { path + "/" + $0 } : [path]
            for file in files {
                let input = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
                _ = input.withUnsafeBufferPointer { fuzzOneInput($0.baseAddress, $0.count) }
                count += 1
            }
        }
        print("replayed \(count) inputs through \(selectedTarget.name)")
        #endif
    }
}
