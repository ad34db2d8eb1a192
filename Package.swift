// swift-tools-version: 6.2
import PackageDescription

// Our own targets treat warnings as errors; dependencies are left alone.
let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]
let strictC: [CSetting] = [.unsafeFlags(["-Wall", "-Wextra", "-Werror"])]

// The version scripts/package stamps into the installed binary (scripts/version); empty for a plain
// `swift build`. Only CRepaveBuild sees it, so a new stamp rebuilds one C file and relinks.
let buildVersion = Context.environment["REPAVE_BUILD_VERSION"] ?? ""

let package = Package(
    name: "Repave",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "repave", targets: ["repave"]),
        // The parsers' modules, for the fuzz package beside this one (fuzz/Package.swift).
        .library(name: "Curl", targets: ["Curl"]),
        .library(name: "KubeAPI", targets: ["KubeAPI"]),
        .library(name: "Journal", targets: ["Journal"]),
        .library(name: "RepaveCore", targets: ["RepaveCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", exact: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system", exact: "1.8.1"),
    ],
    targets: [
        // C layer: system libraries and the shims that make their variadic calls callable.
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .target(name: "CCurlShim", dependencies: ["CCurl"], cSettings: strictC, linkerSettings: [.linkedLibrary("crypto")]),
        .systemLibrary(name: "CGit2", pkgConfig: "libgit2", providers: [.apt(["libgit2-dev"])]),
        .target(name: "CGit2Shim", dependencies: ["CGit2"], cSettings: strictC),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .target(name: "CRepaveBuild", cSettings: strictC + [.define("REPAVE_BUILD_VERSION", to: "\"\(buildVersion)\"")]),

        // Blocking calls kept off Swift's cooperative pool, and the debug check that they are.
        .target(name: "Blocking", swiftSettings: strict),

        // Safe wrappers.
        .target(name: "Curl", dependencies: [
            "CCurl", "CCurlShim", "Blocking",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),
        .target(name: "Git", dependencies: ["CGit2", "CGit2Shim", "Blocking"], swiftSettings: strict),

        // Kubernetes client, journal, the orchestrator, the CLI.
        .target(name: "KubeAPI", dependencies: [
            "Curl",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Yams", package: "Yams"),
            .product(name: "Subprocess", package: "swift-subprocess"),
            .product(name: "SystemPackage", package: "swift-system"),
        ], swiftSettings: strict),
        .target(name: "Journal", dependencies: [
            "Blocking",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),
        .target(name: "RepaveCore", dependencies: [
            "KubeAPI", "Journal", "Git", "CCrypto", "Blocking",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Yams", package: "Yams"),
        ], swiftSettings: strict),
        .target(name: "RepaveCommands", dependencies: [
            "RepaveCore", "KubeAPI", "Curl", "Git", "Journal", "Blocking", "CRepaveBuild",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),
        .executableTarget(name: "repave", dependencies: ["RepaveCommands"], swiftSettings: strict),

        // The lab agent: kubelets and Longhorn for the local control plane (not shipped).
        .executableTarget(name: "repave-lab", dependencies: [
            "KubeAPI", "RepaveCore", "RepaveCommands", "Journal",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),

        // Benchmarks (bench/run, `make bench`): Repave against the alternatives, one table each.
        .executableTarget(name: "repave-bench", dependencies: [
            "KubeAPI", "Curl",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Subprocess", package: "swift-subprocess"),
            .product(name: "SystemPackage", package: "swift-system"),
        ], path: "bench/Sources/repave-bench", swiftSettings: strict),

        // Test support (not a product): finds the lab, runs child processes, makes scratch dirs.
        .target(name: "RepaveTestSupport", dependencies: [
            "Curl", "KubeAPI", "Journal", "RepaveCore", "Blocking",
            .product(name: "Subprocess", package: "swift-subprocess"),
            .product(name: "SystemPackage", package: "swift-system"),
        ], path: "Tests/RepaveTestSupport", swiftSettings: strict),
        .testTarget(name: "CurlTests", dependencies: ["Curl", "RepaveTestSupport"], swiftSettings: strict),
        .testTarget(name: "KubeAPITests", dependencies: ["KubeAPI", "Curl", "RepaveTestSupport"], swiftSettings: strict),
        .testTarget(name: "LabAgentTests", dependencies: ["KubeAPI", "RepaveTestSupport"], swiftSettings: strict),
        .testTarget(name: "RepaveCoreTests", dependencies: ["RepaveCore", "Git", "Curl", "Blocking", "RepaveTestSupport"],
                    exclude: ["Fixtures"], swiftSettings: strict),
        .testTarget(name: "JournalTests", dependencies: ["Journal", "RepaveTestSupport"], swiftSettings: strict),
        .testTarget(name: "GitTests", dependencies: ["Git", "Blocking", "RepaveTestSupport"], swiftSettings: strict),
        .testTarget(name: "BlockingTests", dependencies: ["Blocking"], swiftSettings: strict),
        .testTarget(name: "RepaveCommandsTests", dependencies: [
            "RepaveCommands", "repave", "RepaveTestSupport", "Journal", "KubeAPI",
        ], swiftSettings: strict),
    ]
)
