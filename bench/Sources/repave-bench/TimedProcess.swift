import Foundation
import Subprocess
import SystemPackage

/// One child process, run under GNU time (`/usr/bin/time`) for its peak RSS and CPU time, with
/// stdout and stderr merged and every line stamped when it arrives: a tool's progress lines
/// become a timeline of its steps.
struct TimedProcess {
    struct Line: Sendable {
        /// Since the process was started.
        let at: Duration
        let text: String
    }

    struct Result: Sendable {
        let status: TerminationStatus
        let wall: Duration
        let lines: [Line]
        /// The largest resident set of the process or of any child it waited for (GNU time's %M:
        /// the kernel's ru_maxrss, the biggest single process, not a sum).
        let peakRSSKiB: Double
        /// User plus system time of the process and all its waited-for children.
        let cpuSeconds: Double
        /// Wall-clock bounds, to find the run's requests in the API server's audit log.
        let startedAt: Date
        let endedAt: Date

        var output: String { lines.map(\.text).joined(separator: "\n") }
        var succeeded: Bool { status.isSuccess }
    }

    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:], scratch: String) async throws -> Result {
        let timeFile = scratch + "/time-\(UUID().uuidString).txt"
        defer { try? FileManager.default.removeItem(atPath: timeFile) }
        var updates: [Environment.Key: String?] = [:]
        for (key, value) in environment { updates[Environment.Key(stringLiteral: key)] = value }
        let clock = ContinuousClock()
        let startedAt = Date()
        let start = clock.now
        let execution = try await Subprocess.run(
            .path("/usr/bin/time"), arguments: Arguments(["-f", "%e %U %S %M", "-o", timeFile, executable] + arguments),
            environment: .inherit.updating(updates), input: .none, output: .sequence, error: .combinedWithOutput
        ) { execution in
            var lines: [Line] = []
            // One line can be long: `repave audit -A -o json` on 5,000 claims prints one document
            // of several hundred KiB (the default limit of 128 KiB stopped that run).
            for try await text in execution.standardOutput.strings(bufferingPolicy: .maxLineLength(256 << 20)) {
                lines.append(Line(at: clock.now - start, text: text))
            }
            return lines
        }
        let wall = clock.now - start
        let endedAt = Date()
        // GNU time writes "Command exited with non-zero status N" first when the command fails;
        // the figures are on the last line.
        let report = (try? String(contentsOfFile: timeFile, encoding: .utf8)) ?? ""
        let fields = report.split(separator: "\n").last?.split(separator: " ").compactMap { Double($0) } ?? []
        guard fields.count == 4 else {
            throw BenchError("no figures from /usr/bin/time for \(executable) (got '\(report)')")
        }
        return Result(status: execution.terminationStatus, wall: wall, lines: execution.closureResult,
                      peakRSSKiB: fields[3], cpuSeconds: fields[1] + fields[2], startedAt: startedAt, endedAt: endedAt)
    }
}

/// A benchmark that cannot measure what it should: it stops and says why, rather than print a
/// figure it did not measure.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
