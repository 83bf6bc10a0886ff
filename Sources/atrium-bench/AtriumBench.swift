import ArgumentParser

/// Benchmarks that measure Atrium against a baseline taken in the same run.
@main
struct AtriumBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "atrium-bench",
        abstract: "Measure Atrium against same-run baselines (build with -c release).",
        subcommands: [PoolBenchmark.self, HTTPBenchmark.self, EventsBenchmark.self]
    )
}
