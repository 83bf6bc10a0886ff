// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// `ATRIUM_FUZZ=1` builds the code under test with libFuzzer's coverage and AddressSanitizer,
/// and `atrium-fuzz` as a fuzzer (see `.ci/fuzz`). Scoped to these targets: `-Xswiftc` would
/// reach the build plugin's own tool as well.
let fuzzing = Context.environment["ATRIUM_FUZZ"] == "1"
let fuzzed: [SwiftSetting] = fuzzing ? [.unsafeFlags(["-sanitize=fuzzer,address"]), .define("FUZZING")] : []

/// The library layers also make `import` internal unless marked: a type of a lower layer can
/// only appear in a public API where the file says `public import`.
let layerSettings: [SwiftSetting] = swiftSettings + [.enableUpcomingFeature("InternalImportsByDefault")]

let testSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "atrium",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "atrium", targets: ["atrium"]),
        .executable(name: "atrium-bench", targets: ["atrium-bench"]),
        .library(name: "PostgresPool", targets: ["PostgresPool"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"]), .brew(["libpq"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"]), .brew(["openssl@3"])]
        ),
        .target(
            name: "AtriumText",
            swiftSettings: layerSettings + fuzzed
        ),
        .target(
            name: "PostgresPool",
            dependencies: [
                "CLibPQ",
                "AtriumText",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings + fuzzed
        ),
        .target(
            name: "EmbeddedPostgres",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "AtriumCrypto",
            dependencies: [
                "COpenSSL",
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings + fuzzed
        ),
        .target(
            name: "AtriumCore",
            dependencies: [
                "AtriumText",
                "PostgresPool",
                "AtriumCrypto",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: layerSettings + fuzzed,
            plugins: ["EmbedMigrations"]
        ),
        .target(
            name: "AtriumMail",
            dependencies: [
                "AtriumCore",
                "AtriumCrypto",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: layerSettings
        ),
        .target(
            name: "AtriumWire",
            dependencies: ["AtriumText", "AtriumCore"],
            swiftSettings: layerSettings + fuzzed
        ),
        .target(
            name: "AtriumHTTP",
            dependencies: [
                "AtriumText",
                "AtriumCore",
                "AtriumWire",
                "AtriumCrypto",
                "AtriumMail",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdHTTP2", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTPTypesHTTP2", package: "swift-nio-extras"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            // Compiled into the binary, so an installed server needs no resource bundle.
            resources: [.embedInCode("OpenAPI/openapi.json")],
            swiftSettings: layerSettings
        ),
        .executableTarget(
            name: "atrium",
            dependencies: [
                "AtriumHTTP",
                "AtriumMail",
                "AtriumCore",
                "AtriumCrypto",
                "PostgresPool",
                "EmbeddedPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "atrium-bench",
            dependencies: [
                "AtriumText",
                "PostgresPool",
                "AtriumCore",
                "AtriumCrypto",
                "AtriumHTTP",
                "EmbeddedPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "AtriumFuzzTargets",
            dependencies: ["AtriumText", "AtriumCore", "AtriumWire", "AtriumCrypto", "PostgresPool"],
            path: "Fuzz/AtriumFuzzTargets",
            swiftSettings: swiftSettings + fuzzed
        ),
        .target(name: "CLibFuzzer", path: "Fuzz/CLibFuzzer"),
        // A libFuzzer fuzzer with ATRIUM_FUZZ=1 (see .ci/fuzz); otherwise it replays inputs.
        .executableTarget(
            name: "atrium-fuzz",
            dependencies: ["AtriumFuzzTargets", "CLibFuzzer"],
            path: "Fuzz/atrium-fuzz",
            swiftSettings: swiftSettings + fuzzed,
            linkerSettings: fuzzing ? [.unsafeFlags(["-sanitize=fuzzer,address", "-use-ld=lld"])] : []
        ),
        .executableTarget(
            name: "embed-migrations",
            path: "Plugins/EmbedMigrationsTool"
        ),
        .plugin(
            name: "EmbedMigrations",
            capability: .buildTool(),
            dependencies: ["embed-migrations"]
        ),
        .target(
            name: "AtriumTestSupport",
            dependencies: [
                "AtriumText",
                "PostgresPool",
                "EmbeddedPostgres",
                "AtriumCore",
            ],
            path: "Tests/AtriumTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PostgresPoolTests",
            dependencies: ["AtriumText", "PostgresPool", "AtriumTestSupport"],
            swiftSettings: testSettings
        ),
        .testTarget(
            name: "AtriumCryptoTests",
            dependencies: ["AtriumCrypto"],
            swiftSettings: testSettings
        ),
        .testTarget(
            name: "EmbeddedPostgresTests",
            dependencies: ["EmbeddedPostgres", "AtriumTestSupport"],
            swiftSettings: testSettings
        ),
        .testTarget(
            name: "AtriumCoreTests",
            dependencies: ["AtriumText", "AtriumCore", "AtriumCrypto", "AtriumWire", "AtriumTestSupport", "AtriumFuzzTargets"],
            swiftSettings: testSettings
        ),
        .testTarget(
            name: "AtriumTests",
            dependencies: ["atrium", "AtriumCrypto", "AtriumMail"],
            swiftSettings: testSettings
        ),
        .testTarget(
            name: "AtriumHTTPTests",
            dependencies: [
                "AtriumText",
                "AtriumWire",
                "AtriumHTTP",
                "AtriumMail",
                "AtriumTestSupport",
                "EmbeddedPostgres",
                "AtriumCrypto",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            swiftSettings: testSettings
        ),
    ]
)
