// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

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
            name: "PostgresPool",
            dependencies: [
                "CLibPQ",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
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
            swiftSettings: swiftSettings
        ),
        .target(
            name: "AtriumCore",
            dependencies: [
                "PostgresPool",
                "AtriumCrypto",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings,
            plugins: ["EmbedMigrations"]
        ),
        .target(
            name: "AtriumHTTP",
            dependencies: [
                "AtriumCore",
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "atrium",
            dependencies: [
                "AtriumHTTP",
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
                "PostgresPool",
                "AtriumCore",
                "EmbeddedPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
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
                "PostgresPool",
                "EmbeddedPostgres",
                "AtriumCore",
            ],
            path: "Tests/AtriumTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PostgresPoolTests",
            dependencies: ["PostgresPool", "AtriumTestSupport"],
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
            dependencies: ["AtriumCore", "AtriumTestSupport"],
            swiftSettings: testSettings
        ),
        .testTarget(
            name: "AtriumHTTPTests",
            dependencies: [
                "AtriumHTTP",
                "AtriumTestSupport",
                "AtriumCrypto",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: testSettings
        ),
    ]
)
