import Foundation
import Synchronization

/// Named crash points for the crash tests, in the style of etcd's gofail: the process stops dead
/// (as if killed: no cleanup, no journal record) when it reaches an enabled one.
///
/// - `REPAVE_FAILPOINTS=after-intent:scale-down,in-wait:delete-claim` enables points. A point
///   reached more than once is named `name#2`, `name#3`… from its second time on (the plain name
///   is its first time); `@N` is the N-th point reached, whatever its name. `name=sleep(MS)`
///   pauses there instead of exiting; `name=hold(FILE)` creates `FILE.reached` and waits (up to
///   two minutes) until FILE exists: a test then plays another actor at a known moment.
/// - `REPAVE_FAILPOINT_TRACE=FILE` appends the name of every point reached to FILE: the crash
///   matrix takes its list of points from one uninterrupted run, so no point is forgotten.
///
/// The points: `before-<kind>:<step>` and `after-<kind>:<step>` around every journal append
/// (`<step>` is `run` for records of no step; `after-header:run` once the journal exists),
/// `in-wait:<step>` when a wait starts. A mutating
/// request sits between `after-intent:<step>` (also called `before-request:<step>`) and
/// `before-outcome:<step>` (also called `after-request:<step>`: the server did it, the outcome
/// is not written).
///
/// Compiled into debug builds only; a release build ignores both variables.
public enum Failpoints {
    /// Exit code of a failpoint crash: 137, what `kill -9` gives.
    public static let exitCode: Int32 = 137

    #if DEBUG
    private enum Action { case exit, sleep(milliseconds: Int), hold(file: String) }

    private static let actions: [String: Action] = {
        var actions: [String: Action] = [:]
        for item in (ProcessInfo.processInfo.environment["REPAVE_FAILPOINTS"] ?? "").split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard let name = parts.first, !name.isEmpty else { continue }
            if parts.count == 2, parts[1].hasPrefix("sleep("), parts[1].hasSuffix(")"),
               let milliseconds = Int(parts[1].dropFirst(6).dropLast()), (0...600_000).contains(milliseconds) {
                actions[name] = .sleep(milliseconds: milliseconds)
            } else if parts.count == 2, parts[1].hasPrefix("hold("), parts[1].hasSuffix(")") {
                actions[name] = .hold(file: String(parts[1].dropFirst(5).dropLast()))
            } else {
                actions[name] = .exit
            }
        }
        return actions
    }()

    private static let trace: Int32? = ProcessInfo.processInfo.environment["REPAVE_FAILPOINT_TRACE"].map {
        open($0, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
    }

    private static let reached = Mutex<(total: Int, names: [String: Int])>((0, [:]))

    private static let aliases = [("after-intent:", "before-request:"), ("before-outcome:", "after-request:")]
    #endif

    /// Stops (or pauses) the process if `name` is enabled for this time it is reached.
    public static func hit(_ name: String) {
        #if DEBUG
        let (total, count) = reached.withLock { state in
            state.total += 1
            state.names[name, default: 0] += 1
            return (state.total, state.names[name, default: 0])
        }
        let occurrence = count == 1 ? name : "\(name)#\(count)"
        if let trace, trace >= 0 {
            _ = (occurrence + "\n").withCString { write(trace, $0, strlen($0)) }
        }
        if actions.isEmpty { return }
        var names = [occurrence, "@\(total)"]
        for (canonical, alias) in aliases where occurrence.hasPrefix(canonical) {
            names.append(alias + occurrence.dropFirst(canonical.count))
        }
        guard let enabled = names.first(where: { actions[$0] != nil }), let action = actions[enabled] else { return }
        switch action {
        case .exit:
            FileHandle.standardError.write(Data("repave: failpoint \(enabled): exiting as if killed\n".utf8))
            _exit(exitCode)
        case .sleep(let milliseconds):
            FileHandle.standardError.write(Data("repave: failpoint \(enabled): pausing \(milliseconds) ms\n".utf8))
            usleep(useconds_t(milliseconds) * 1000)
        case .hold(let file):
            // A rendezvous with a test: FILE.reached says the point is reached; FILE releases it.
            FileHandle.standardError.write(Data("repave: failpoint \(enabled): holding until \(file) exists\n".utf8))
            _ = FileManager.default.createFile(atPath: file + ".reached", contents: nil)
            var waited = 0
            while !FileManager.default.fileExists(atPath: file) {
                guard waited < 6000 else {
                    FileHandle.standardError.write(Data("repave: failpoint \(enabled): \(file) did not appear within two minutes\n".utf8))
                    _exit(1)
                }
                usleep(20_000)
                waited += 1
            }
        }
        #endif
    }
}
