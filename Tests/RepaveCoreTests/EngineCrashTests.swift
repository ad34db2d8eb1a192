import Foundation
import Journal
import KubeAPI
import RepaveTestSupport
import Testing

/// The engine on the lab with three ConfigMap steps (`repave-lab engine-demo`): killed at every
/// failpoint, or with SIGKILL, then resumed; the end state is the same as an uninterrupted run.
@Suite("engine crash and resume", .serialized)
struct EngineCrashTests {
    let lab: Lab
    let client: KubeClient

    init() throws {
        lab = try Lab.current()
        client = try lab.adminClient(userAgent: "repave-test/engine")
    }

    static let failpoints: [String] = ["create", "patch", "delete"].flatMap { step in
        ["before-intent", "after-intent", "before-request", "after-request", "after-outcome"].map { "\($0):\(step)" }
    } + ["in-wait:delete"]

    func demo(_ namespace: String, _ runDirectory: String, resume: Bool, failpoint: String? = nil) async throws -> ProcessResult {
        var arguments = ["engine-demo", "--kubeconfig", lab.adminKubeconfig, "--namespace", namespace, "--run-dir", runDirectory, "--yes"]
        if resume { arguments.append("--resume") }
        return try await runProcess(try labBinary(), arguments, environment: ["REPAVE_FAILPOINTS": failpoint])
    }

    /// The converged state: the ConfigMap this run created (its uid in the journal) is gone, and
    /// the journal verifies end to end and says finished.
    func expectConverged(_ namespace: String, _ runDirectory: String, _ comment: Comment) async throws {
        #expect(try await client.getIfPresent(.configMaps, named: "engine-demo", in: namespace) == nil, comment)
        let (records, torn) = try Journal.read(directory: runDirectory)
        #expect(torn == 0, comment)
        #expect(records.last?.kind == "finished", comment)
        #expect(Set(records.filter { $0.kind == "step_done" }.compactMap(\.step)) == ["create", "patch", "delete"], comment)
        // Each step's work was done once: at most one intent per step reached a successful outcome.
        for step in ["create", "patch", "delete"] {
            let outcomes = records.filter { $0.kind == "outcome" && $0.step == step }
            #expect(outcomes.count <= 1, "\(step): \(outcomes.count) outcomes; \(comment)")
        }
    }

    @Test("a crash at every failpoint, then one resume, converges", arguments: failpoints)
    func crashAndResume(_ failpoint: String) async throws {
        let scratch = try ScratchDirectory()
        try await withTestNamespace(client, prefix: "engine") { namespace in
            let run = scratch.file("runs/demo")
            let crashed = try await demo(namespace, run, resume: false, failpoint: failpoint)
            #expect(crashed.status == 137, "\(failpoint): \(crashed.standardError)")
            #expect(crashed.standardError.contains("failpoint \(failpoint)"))
            let resumed = try await demo(namespace, run, resume: true)
            #expect(resumed.status == 0, "\(failpoint): \(resumed.standardError)")
            try await expectConverged(namespace, run, "\(failpoint)")
        }
    }

    /// Starts a run whose delete step waits 5 s, sends `signal` once the process is inside that
    /// wait, and returns the run directory and how the process ended.
    /// `stopped`: from the signal to the process's end.
    func interruptInWait(_ signal: String, namespace: String, scratch: ScratchDirectory) async throws -> (run: String, result: ProcessResult, stopped: Duration) {
        let run = scratch.file("runs/demo")
        let process = Task {
            try await runProcess(try labBinary(), ["engine-demo", "--kubeconfig", lab.adminKubeconfig, "--namespace", namespace,
                                                   "--run-dir", run, "--wait-delay", "5", "--yes"])
        }
        // The delete's outcome is journaled: the process is then inside its wait.
        var inWait = false
        for _ in 0..<100 where !inWait {
            try await Task.sleep(for: .milliseconds(100))
            inWait = (try? Journal.read(directory: run).records.contains { $0.kind == "outcome" && $0.step == "delete" }) ?? false
        }
        #expect(inWait)
        let clock = ContinuousClock(), signalled = clock.now
        #expect(try await runProcess("pkill", ["-\(signal)", "-f", "engine-demo.*\(run)"]).status == 0)
        let result = try await process.value
        return (run, result, clock.now - signalled)
    }

    @Test("kill -9 in the middle of a wait, then resume")
    func sigkill() async throws {
        let scratch = try ScratchDirectory()
        try await withTestNamespace(client, prefix: "engine") { namespace in
            let (run, result, _) = try await interruptInWait("KILL", namespace: namespace, scratch: scratch)
            #expect(result.status == 137)
            #expect(try Journal.read(directory: run).records.last?.kind == "applied")   // killed inside the wait that follows
            let resumed = try await demo(namespace, run, resume: true)
            #expect(resumed.status == 0, "\(resumed.standardError)")
            try await expectConverged(namespace, run, "sigkill")
        }
    }

    @Test("SIGTERM inside a wait: the run stops cleanly (exit 143, journal ends 'stopped'), and resume finishes it")
    func sigterm() async throws {
        let scratch = try ScratchDirectory()
        try await withTestNamespace(client, prefix: "engine") { namespace in
            let (run, result, stopped) = try await interruptInWait("TERM", namespace: namespace, scratch: scratch)
            // Stopped inside the 5 s wait (a run left to finish exits 0), and promptly: measured
            // from the signal, not from the process's start, which a loaded machine stretches.
            #expect(result.status == 143, "\(result.standardError)")
            #expect(stopped < .seconds(5), "stopped \(stopped) after the signal")
            let records = try Journal.read(directory: run).records
            #expect(records.last?.kind == "stopped")
            let reason = String(decoding: records.last?.data ?? Data(), as: UTF8.self)
            #expect(reason.contains("signal 15"))
            let resumed = try await demo(namespace, run, resume: true)
            #expect(resumed.status == 0, "\(resumed.standardError)")
            try await expectConverged(namespace, run, "sigterm")
        }
    }

    @Test("the window: too short or not open refuses before any change; a resume outside it warns and finishes")
    func window() async throws {
        let scratch = try ScratchDirectory()
        try await withTestNamespace(client, prefix: "engine") { namespace in
            let base = ["engine-demo", "--kubeconfig", lab.adminKubeconfig, "--namespace", namespace, "--yes"]
            // The three steps may take 20 s (their estimates); a 2 s window cannot hold them.
            let short = try await runProcess(try labBinary(), base + ["--run-dir", scratch.file("short"), "--window-start", "now", "--window-duration", "2"])
            #expect(short.status == 2)
            #expect(short.standardError.hasPrefix("error[run.refused]: "), "\(short.standardError)")
            #expect(short.standardError.contains("not starting create: the window has"))
            #expect(try await client.getIfPresent(.configMaps, named: "engine-demo", in: namespace) == nil)
            let later = try await runProcess(try labBinary(), base + ["--run-dir", scratch.file("later"), "--window-start", "2099-01-01T00:00:00Z"])
            #expect(later.status == 2)
            #expect(later.standardError.hasPrefix("error[run.refused]: "), "\(later.standardError)")
            #expect(later.standardError.contains("the maintenance window opens in"))

            let run = scratch.file("resumed")
            let crashed = try await runProcess(try labBinary(), base + ["--run-dir", run], environment: ["REPAVE_FAILPOINTS": "before-request:patch"])
            #expect(crashed.status == 137)
            let resumed = try await runProcess(try labBinary(), base + ["--run-dir", run, "--resume", "--window-start", "2020-01-01T00:00:00Z", "--window-duration", "60"])
            #expect(resumed.status == 0, "\(resumed.standardError)")
            let records = try Journal.read(directory: run).records
            #expect(records.contains { $0.kind == "note" && String(decoding: $0.data, as: UTF8.self).contains("window closed") })
            try await expectConverged(namespace, run, "resume outside the window")
        }
    }

    @Test("confirmation: refused without a terminal; on a terminal the typed name decides")
    func confirmation() async throws {
        let scratch = try ScratchDirectory()
        try await withTestNamespace(client, prefix: "engine") { namespace in
            let command = "\(try labBinary()) engine-demo --kubeconfig \(lab.adminKubeconfig) --namespace \(namespace)"
            let piped = try await runProcess("bash", ["-c", "echo \(namespace)/engine-demo | \(command) --run-dir \(scratch.file("pipe"))"])
            #expect(piped.status == 2)
            #expect(piped.standardError.hasPrefix("error[run.no-terminal]: "), "\(piped.standardError)")

            // script(1) gives the process a pseudo-terminal; the answer arrives on it.
            let wrong = try await runProcess("bash", ["-c", "printf 'devpod/home\\n' | script -qec '\(command) --run-dir \(scratch.file("wrong"))' /dev/null"])
            #expect(wrong.standardOutput.contains("Type \(namespace)/engine-demo to continue"), "\(wrong.standardOutput)")
            #expect(wrong.standardOutput.contains("delete: delete configmap \(namespace)/engine-demo (uid-guarded)  <- point of no return"))
            #expect(wrong.status == 2, "\(wrong.standardOutput)")
            #expect(try await client.getIfPresent(.configMaps, named: "engine-demo", in: namespace) == nil)

            let right = try await runProcess("bash", ["-c", "printf '\(namespace)/engine-demo\\n' | script -qec '\(command) --run-dir \(scratch.file("right"))' /dev/null"])
            #expect(right.status == 0, "\(right.standardOutput)")
            #expect(right.standardOutput.contains("finished"))
            try await expectConverged(namespace, scratch.file("right"), "confirmed")
        }
    }

    @Test("resume refuses a run whose binding changed, unless the override is given (and journaled)")
    func binding() async throws {
        let scratch = try ScratchDirectory()
        try await withTestNamespace(client, prefix: "engine") { namespace in
            try await withTestNamespace(client, prefix: "engine") { other in
                let run = scratch.file("run")
                #expect(try await demo(namespace, run, resume: false, failpoint: "after-outcome:create").status == 137)
                let before = try Journal.read(directory: run).records.count
                let refused = try await demo(other, run, resume: true)
                #expect(refused.status == 4)
                #expect(refused.standardError.hasPrefix("error[resume.changed]: "), "\(refused.standardError)")
                #expect(refused.standardError.contains("caused by: the plan changed"), "\(refused.standardError)")
                #expect(try Journal.read(directory: run).records.count == before)
                let resumed = try await demo(namespace, run, resume: true)
                #expect(resumed.status == 0, "\(resumed.standardError)")
                try await expectConverged(namespace, run, "binding")
            }
        }
    }

    @Test("the cluster lock: held while running and released at the end; a live foreign lease refuses; a crashed run's resume renews its own")
    func clusterLock() async throws {
        let scratch = try ScratchDirectory()
        try await withTestNamespace(client, prefix: "engine") { namespace in
            let base = ["engine-demo", "--kubeconfig", lab.adminKubeconfig, "--namespace", namespace, "--yes", "--lease"]
            let first = try await runProcess(try labBinary(), base + ["--run-dir", scratch.file("one")])
            #expect(first.status == 0, "\(first.standardError)")
            #expect(try await client.getIfPresent(.leases, named: "repave-engine-demo", in: namespace) == nil)
            let kinds = try Journal.read(directory: scratch.file("one")).records.filter { $0.kind == "lock" }.map { String(decoding: $0.data, as: UTF8.self) }
            // Each Lease write between its intent and its result.
            #expect(kinds.count == 4 && kinds[0].contains(#""intent":"acquire""#) && kinds[1].contains("created")
                    && kinds[2].contains(#""intent":"release""#) && kinds[3].contains("released"), "\(kinds)")

            // A run that crashed keeps its lease; its own resume renews and finishes.
            let crashed = try await runProcess(try labBinary(), base + ["--run-dir", scratch.file("two")], environment: ["REPAVE_FAILPOINTS": "after-outcome:create"])
            #expect(crashed.status == 137)
            let held = Lease(try await client.get(.leases, named: "repave-engine-demo", in: namespace))
            #expect(held.holderIdentity == (try Journal.read(directory: scratch.file("two")).records.first?.run))
            // Meanwhile another run is refused, naming the holder, and changes nothing.
            let other = try await runProcess(try labBinary(), base + ["--run-dir", scratch.file("three")])
            #expect(other.status == 2, "\(other.standardError)")
            #expect(other.standardError.hasPrefix("error[lock.held]: "), "\(other.standardError)")
            #expect(other.standardError.contains("\(namespace)/repave-engine-demo: \(held.holderIdentity ?? "?")"))
            let resumed = try await runProcess(try labBinary(), base + ["--run-dir", scratch.file("two"), "--resume"])
            #expect(resumed.status == 0, "\(resumed.standardError)")
            #expect(try await client.getIfPresent(.leases, named: "repave-engine-demo", in: namespace) == nil)
            try await expectConverged(namespace, scratch.file("two"), "lease resume")
        }
    }

    @Test("a second process cannot drive a run that is running")
    func lockedRun() async throws {
        let scratch = try ScratchDirectory()
        try await withTestNamespace(client, prefix: "engine") { namespace in
            let run = scratch.file("runs/demo")
            let first = Task {
                try await runProcess(try labBinary(), ["engine-demo", "--kubeconfig", lab.adminKubeconfig, "--namespace", namespace,
                                                       "--run-dir", run, "--wait-delay", "2", "--yes"])
            }
            for _ in 0..<50 where (try? Journal.read(directory: run).records.count) ?? 0 < 3 { try await Task.sleep(for: .milliseconds(50)) }
            let second = try await demo(namespace, run, resume: true)
            #expect(second.status != 0)
            #expect(second.standardError.contains("is locked by pid"))
            #expect(try await first.value.status == 0)
        }
    }

    @Test("the demo strategy through the same session as recreate: killed with -9, resumed; another run aborted before its point of no return; status reads both")
    func sessionCommands() async throws {
        let scratch = try ScratchDirectory()
        try await withTestNamespace(client, prefix: "engine") { namespace in
            let base = ["engine-demo", "--kubeconfig", lab.adminKubeconfig, "--namespace", namespace, "--yes", "--lease"]
            // kill -9 inside the delete step's wait, then resume: finished, and status says so.
            let killed = scratch.file("killed")
            let running = Task { try await runProcess(try labBinary(), base + ["--run-dir", killed, "--wait-delay", "30"]) }
            try await waitUntil("the run waits in delete") { (try? Journal.read(directory: killed).records.contains { $0.kind == "applied" && $0.step == "delete" }) ?? false }
            #expect(try await runProcess("pkill", ["-9", "-f", "engine-demo.*\(killed)"]).status == 0)
            #expect(try await running.value.status == 137)
            let interrupted = try await statusJSON(killed)
            #expect(interrupted["state"] as? String == "interrupted")
            #expect(interrupted["pointOfNoReturnCrossed"] as? Bool == true)
            #expect(try await runProcess(try labBinary(), base + ["--run-dir", killed, "--resume"]).status == 0)
            try await expectConverged(namespace, killed, "kill -9 in the wait")
            #expect(try await statusJSON(killed)["state"] as? String == "finished")

            // Stopped after patch, before the point of no return: abort undoes it, step by step.
            let stopped = scratch.file("stopped")
            #expect(try await runProcess(try labBinary(), base + ["--run-dir", stopped], environment: ["REPAVE_FAILPOINTS": "after-step_done:patch"]).status == 137)
            #expect(try await client.getIfPresent(.configMaps, named: "engine-demo", in: namespace) != nil)
            let aborted = try await runProcess(try labBinary(), base + ["--run-dir", stopped, "--abort"])
            #expect(aborted.status == 0, "\(aborted.standardError)")
            #expect(aborted.standardOutput.contains("configmap \(namespace)/engine-demo deleted"), "\(aborted.standardOutput)")
            #expect(try await client.getIfPresent(.configMaps, named: "engine-demo", in: namespace) == nil)
            #expect(try await client.getIfPresent(.leases, named: "repave-engine-demo", in: namespace) == nil)
            let records = try Journal.read(directory: stopped).records
            #expect(records.last?.kind == "aborted")
            // The undo went through the journal like any change: intent, DELETE, outcome.
            #expect(records.contains { $0.kind == "intent" && $0.step == "abort" && String(decoding: $0.data, as: UTF8.self).contains(#""verb":"DELETE""#) })
            #expect(try await statusJSON(stopped)["state"] as? String == "aborted")
            let resumeAborted = try await runProcess(try labBinary(), base + ["--run-dir", stopped, "--resume"])
            #expect(resumeAborted.status == 4, "\(resumeAborted.standardError)")
        }
    }

    @Test("the confirmation held open on a terminal longer than the Lease lasts: the Lease is renewed meanwhile, and the run finishes")
    func leaseRenewedDuringConfirmation() async throws {
        let scratch = try ScratchDirectory()
        try await withTestNamespace(client, prefix: "engine") { namespace in
            let run = scratch.file("run")
            let command = "\(try labBinary()) engine-demo --kubeconfig \(lab.adminKubeconfig) --namespace \(namespace) --lease --run-dir \(run)"
            // A 6 s Lease, renewed every 2 s; the operator answers after 9 s.
            let result = try await runProcess("bash", ["-c", "(sleep 9; printf '\(namespace)/engine-demo\\n') | script -qec '\(command)' /dev/null"],
                                              environment: ["REPAVE_LEASE_SECONDS": "6"])
            #expect(result.status == 0, "\(result.standardOutput)")
            let records = try Journal.read(directory: run).records
            let confirmed = try #require(records.firstIndex { $0.kind == "confirmed" })
            let renewed = records[..<confirmed].filter { $0.kind == "lock" && $0.step == "lease-renewal" && String(decoding: $0.data, as: UTF8.self).contains(#""result":"renewed""#) }
            #expect(renewed.count >= 3, "\(renewed.count) renewals while the prompt was open")
            try await expectConverged(namespace, run, "after a long confirmation")
        }
    }

    func statusJSON(_ run: String) async throws -> [String: Any] {
        let result = try await runProcess(try repaveBinary(), ["status", run, "-o", "json"], environment: ["KUBECONFIG": "/nonexistent"])
        return try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any], "\(result.standardOutput) \(result.standardError)")
    }

    func waitUntil(_ what: String, timeout: Duration = .seconds(60), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out after \(timeout) waiting until \(what)")
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

