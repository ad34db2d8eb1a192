import Foundation
import Subprocess
import SystemPackage

public struct ProcessResult: Sendable {
    public let status: Int32
    public let standardOutput: String
    public let standardError: String
}

/// Runs a program to completion and collects its output. swift-subprocess, not Foundation's
/// Process: children of Process started from a Swift task inherit a mask that blocks SIGTERM.
public func runProcess(
    _ executable: String,
    _ arguments: [String],
    environment: [String: String?] = [:],
    workingDirectory: String? = nil
) async throws -> ProcessResult {
    let resolved: Executable = executable.contains("/") ? .path(FilePath(executable)) : .name(executable)
    var updates: [Environment.Key: String?] = [:]
    for (key, value) in environment {
        if let key = Environment.Key(rawValue: key) { updates[key] = value }
    }
    let result = try await run(
        resolved,
        arguments: Arguments(arguments),
        environment: .inherit.updating(updates),
        workingDirectory: workingDirectory.map { FilePath($0) },
        output: .string(limit: 16 << 20),
        error: .string(limit: 16 << 20))
    let status: Int32
    switch result.terminationStatus {
    case .exited(let code): status = code
    case .signaled(let signal): status = 128 + signal
    }
    return ProcessResult(status: status, standardOutput: result.standardOutput, standardError: result.standardError)
}

/// The built `repave` binary: beside the test bundle in SwiftPM's build directory, or
/// `REPAVE_BIN`.
public func repaveBinary() throws -> String {
    try builtBinary("repave", override: "REPAVE_BIN")
}

/// The built `repave-lab` binary (the lab agent and the engine demo).
public func labBinary() throws -> String {
    try builtBinary("repave-lab", override: "REPAVE_LAB_BIN")
}

func builtBinary(_ name: String, override: String) throws -> String {
    if let path = ProcessInfo.processInfo.environment[override] { return path }
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<3 {
        let candidate = directory.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        directory.deleteLastPathComponent()
    }
    throw BinaryNotFound()
}

public struct BinaryNotFound: Error, CustomStringConvertible {
    public var description: String { "the repave binaries are not built next to the tests: run `swift build` first" }
}

/// Checks `condition` every `interval` until it holds, at most `attempts` times; returns whether
/// it held. (A `for … where` loop would keep evaluating the condition after it held.)
@discardableResult
public func poll(attempts: Int, every interval: Duration, until condition: () async throws -> Bool) async throws -> Bool {
    for attempt in 0..<attempts {
        if try await condition() { return true }
        if attempt < attempts - 1 { try await Task.sleep(for: interval) }
    }
    return false
}

/// How long `body` takes.
public func elapsed(_ body: () throws -> Void) rethrows -> Duration {
    func cpu() -> Duration {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return .seconds(time.tv_sec) + .nanoseconds(time.tv_nsec)
    }
    // The CPU time of this thread (the body is synchronous, so it runs here): a guard against a
    // pathological input's blow-up that a loaded machine (CI, parallel suites) does not trip.
    let start = cpu()
    try body()
    return cpu() - start
}

/// A seed of the repository's fuzz corpus (`fuzz/corpus/TARGET/NAME`): each fuzz finding stays a
/// seed there and a regression test that reads it.
public func fuzzSeed(_ name: String) throws -> Data {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return try Data(contentsOf: root.appendingPathComponent("fuzz/corpus/" + name))
}

/// Runs a program and kills it with SIGKILL after `delay` unless it exited before: coreutils'
/// `timeout -s KILL`, which signals the one child it started (and its own process group), never
/// a process found by name. Status 137 means it was killed; otherwise it is the program's own.
public func runProcessKilled(
    after delay: Duration, _ executable: String, _ arguments: [String], environment: [String: String?] = [:]
) async throws -> ProcessResult {
    let seconds = Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18
    return try await runProcess("timeout", ["-s", "KILL", String(format: "%.3f", seconds), executable] + arguments, environment: environment)
}

/// The seed of a sampled test: `REPAVE_SEED=N` replays a sample; otherwise a fresh one, which
/// the test prints so that a failure can be replayed.
public func sampleSeed() -> UInt64 {
    ProcessInfo.processInfo.environment["REPAVE_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...999_999)
}
