import Foundation
import KubeAPI

/// How one crash case ended: whether the run stopped at the failpoint, whether the resume
/// crashed too (at the second point), and what differs from the converged state.
public struct CrashOutcome: Sendable {
    public var reached = true
    public var secondCrashed = false
    public var problems: [String] = []

    public init() {}
}

/// `repave resume RUN`; for a run stopped before its first change and before the operator's
/// consent was journaled (resume then asks again), `repave resume RUN --yes`, as the operator
/// would. Any suite's world (the real node's too) resumes through this.
public func resumeRun(_ run: String, kubeconfig: String, environment: [String: String?] = [:]) async throws -> ProcessResult {
    let resumed = try await runProcess(try repaveBinary(), ["resume", run, "--kubeconfig", kubeconfig], environment: environment)
    guard resumed.status == 2, resumed.standardError.contains("error[run.no-terminal]: ") else { return resumed }
    return try await runProcess(try repaveBinary(), ["resume", run, "--yes", "--kubeconfig", kubeconfig], environment: environment)
}

/// Running the `repave` binary against the lab, crashed at failpoints and resumed: what the
/// crash suites of every strategy share.
extension DevpodTesting {
    public func repave(_ world: World, _ arguments: [String], failpoints: String? = nil, trace: String? = nil) async throws -> ProcessResult {
        var environment: [String: String?] = ["REPAVE_FAILPOINTS": failpoints]
        if let trace { environment["REPAVE_FAILPOINT_TRACE"] = trace }
        return try await runProcess(try repaveBinary(), arguments + ["--kubeconfig", lab.adminKubeconfig], environment: environment)
    }

    /// `repave resume RUN` (``resumeRun(_:kubeconfig:environment:)``), crashed at `failpoints`.
    public func resume(_ world: World, _ run: String, failpoints: String? = nil) async throws -> ProcessResult {
        try await resumeRun(run, kubeconfig: lab.adminKubeconfig, environment: ["REPAVE_FAILPOINTS": failpoints])
    }

    /// `repave run PLAN --yes` (the world's recreate plan unless `plan` names another file).
    public func start(_ world: World, plan: String? = nil, failpoints: String? = nil, trace: String? = nil) async throws -> ProcessResult {
        try await repave(world, ["run", plan ?? world.planFile, "--yes", "--state-dir", world.scratch.file("runs")], failpoints: failpoints, trace: trace)
    }

    /// The failpoints a traced run passed, in order. A Lease renewal falls every 20 s whatever
    /// the run does: a slow machine's trace may hold one, a replay may not reach it (renewals are
    /// tested by ClusterLockTests).
    public func failpoints(inTrace trace: String) throws -> [String] {
        try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n").map(String.init).filter { !$0.contains(":lease-renewal") }   // also its later passes, `…:lease-renewal#2`
    }

    /// The run of `plan` crashed at `point`, resumed (crashed again at `second` inside the
    /// resume, and resumed again), and what `divergence` finds in the run directory.
    public func crashAndResume(_ world: World, plan: String? = nil, at point: String, second: String?,
                               divergence: (String) async throws -> [String]) async throws -> CrashOutcome {
        var outcome = CrashOutcome()
        let crashed = try await start(world, plan: plan, failpoints: point)
        guard crashed.status == 137 && crashed.standardError.contains("failpoint \(point):") else {
            outcome.reached = false
            if crashed.status != 0 { outcome.problems.append("the run failed (exit \(crashed.status)): \(crashed.standardError)") }
            return outcome
        }
        var run = try world.runDirectory()
        // The second crash: the resume's n-th failpoint, early in it (the lock, the settling of
        // what was in flight, the first step it redoes).
        var resumed = try await resume(world, run, failpoints: second)
        if resumed.status == 137 {
            outcome.secondCrashed = true
            resumed = try await resume(world, run)
        }
        if point == "after-header:run" {
            // Stopped before anything: resume says so, and a new run does the work.
            if resumed.status != 4 || !resumed.standardError.contains("error[run.not-started]: ") {
                outcome.problems.append("resume of a run stopped before it started: exit \(resumed.status): \(resumed.standardError)")
            }
            let again = try await repave(world, ["run", plan ?? world.planFile, "--yes", "--state-dir", world.scratch.file("again")])
            if again.status != 0 { outcome.problems.append("the new run: exit \(again.status): \(again.standardError)") }
            run = world.scratch.file("again/" + (try FileManager.default.contentsOfDirectory(atPath: world.scratch.file("again"))[0]))
        } else if resumed.status != 0 {
            outcome.problems.append("resume: exit \(resumed.status): \(resumed.standardError)")
        }
        outcome.problems += try await divergence(run)
        return outcome
    }
}
