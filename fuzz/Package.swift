// swift-tools-version: 6.2
import PackageDescription

// libFuzzer targets for Repave's parsers, one executable each. Built apart from the root package
// (whose executables have their own `main`) with sanitizer flags on every module:
//   swift build --package-path fuzz -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address
// and run by scripts/fuzz. Each target's main.swift defines LLVMFuzzerTestOneInput and hands
// control to libFuzzer's driver (CFuzzDriver).
let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]

// The root package's identity is its checkout directory's name, which varies (main, a worktree,
// CI's clone); naming it keeps the product references below stable.
let repave = "Repave"

func fuzzer(_ name: String, _ products: [String]) -> Target {
    .executableTarget(
        name: name,
        dependencies: ["CFuzzDriver"] + products.map { .product(name: $0, package: repave) },
        swiftSettings: strict)
}

let package = Package(
    name: "RepaveFuzz",
    dependencies: [.package(name: repave, path: "..")],
    targets: [
        .target(name: "CFuzzDriver", cSettings: [.unsafeFlags(["-Wall", "-Wextra", "-Werror"])]),
        fuzzer("FuzzPlan", ["RepaveCore"]),
        fuzzer("FuzzKubeconfig", ["KubeAPI"]),
        fuzzer("FuzzJournal", ["Journal"]),
        fuzzer("FuzzWatchLine", ["KubeAPI"]),
        fuzzer("FuzzStatus", ["KubeAPI", "Curl"]),
        fuzzer("FuzzExecCredential", ["KubeAPI"]),
    ]
)
