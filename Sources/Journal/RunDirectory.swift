import Blocking
import Foundation
import Glibc

/// Where runs live: `$XDG_STATE_HOME/repave/runs/<plan>-<utc time>/` (default
/// `~/.local/state/repave/runs/`).
public enum RunDirectory {
    public static func root(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let state = environment["XDG_STATE_HOME"], state.hasPrefix("/") { return state + "/repave/runs" }
        return (environment["HOME"] ?? NSHomeDirectory()) + "/.local/state/repave/runs"
    }

    /// `devpod-home-20261128T020000Z`: sortable, and names the plan.
    public static func name(plan: String, at date: Date = Date()) -> String {
        plan + "-" + Journal.compactTimestamp(date)
    }

    /// Writes a file of a run directory whole or not at all: a temporary file (0600), synced,
    /// renamed into place, the directory synced. A crash leaves the old file or none, never half.
    public static func writeAtomically(_ data: Data, to path: String) throws(JournalError) {
        assertOffPool("run directory write and fsync")
        let temporary = path + ".tmp"
        unlink(temporary)
        let fd = Glibc.open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .cannotCreate(path: temporary, problem: String(cString: strerror(errno))) }
        defer { close(fd) }
        try Journal.writeAll(fd, [UInt8](data), path: temporary, sync: { fsync($0) })
        guard rename(temporary, path) == 0 else { throw .writeFailed(path: path, operation: "rename", errno: errno) }
        try Journal.syncDirectory((path as NSString).deletingLastPathComponent)
    }
}
