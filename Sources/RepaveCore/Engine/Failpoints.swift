import Foundation

/// Named crash points for the crash tests: `REPAVE_FAILPOINTS=before-intent:scale-down,in-wait:delete-claim`
/// makes the process exit at once (as if killed: no cleanup, no journal record) when it reaches
/// one of them. Compiled into debug builds only; a release build ignores the variable.
public enum Failpoints {
    #if DEBUG
    private static let enabled: Set<String> = {
        let value = ProcessInfo.processInfo.environment["REPAVE_FAILPOINTS"] ?? ""
        return Set(value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    }()
    #endif

    /// Exit code of a failpoint crash: 137, what `kill -9` gives.
    public static let exitCode: Int32 = 137

    /// Crashes the process if `name` is enabled.
    public static func hit(_ name: String) {
        #if DEBUG
        if enabled.contains(name) {
            FileHandle.standardError.write(Data("repave: failpoint \(name): exiting as if killed\n".utf8))
            _exit(exitCode)
        }
        #endif
    }
}
