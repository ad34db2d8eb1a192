import Foundation

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
}
