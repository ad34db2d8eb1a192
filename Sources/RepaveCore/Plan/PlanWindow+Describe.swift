import Foundation

extension PlanWindow {
    /// `window:        2026-11-28T02:00:00Z for 45m (opens in 2h3m5s)`, as `repave plan` prints
    /// it; `none` when the plan has no window.
    static func describe(_ window: PlanWindow?, none: String, now: Date = Date()) -> String {
        guard let window else { return "window:        \(none)" }
        let state = now < window.start ? "opens in \(PlanDuration.rounded(seconds: window.start.timeIntervalSince(now)))"
            : now < window.end ? "open, \(PlanDuration.rounded(seconds: window.end.timeIntervalSince(now))) left" : "closed"
        return "window:        \(window.start.formatted(.iso8601)) for \(window.duration) (\(state))"
    }
}
