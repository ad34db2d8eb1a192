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
        var arguments = ["engine-demo", "--kubeconfig", lab.adminKubeconfig, "--namespace", namespace, "--run-dir", runDirectory]
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

    @Test("kill -9 in the middle of a wait, then resume")
    func sigkill() async throws {
        let scratch = try ScratchDirectory()
        try await withTestNamespace(client, prefix: "engine") { namespace in
            let run = scratch.file("runs/demo")
            let process = Task {
                try await runProcess(try labBinary(), ["engine-demo", "--kubeconfig", lab.adminKubeconfig, "--namespace", namespace,
                                                       "--run-dir", run, "--wait-delay", "5"])
            }
            // Wait until the delete's outcome is journaled: the process is then inside its wait.
            var inWait = false
            for _ in 0..<100 where !inWait {
                try await Task.sleep(for: .milliseconds(100))
                inWait = (try? Journal.read(directory: run).records.contains { $0.kind == "outcome" && $0.step == "delete" }) ?? false
            }
            #expect(inWait)
            let killed = try await runProcess("pkill", ["-KILL", "-f", "engine-demo.*\(run)"])
            #expect(killed.status == 0)
            let result = try await process.value
            #expect(result.status == 137)
            let records = try Journal.read(directory: run).records
            #expect(records.last?.kind == "outcome")
            let resumed = try await runProcess(try labBinary(), ["engine-demo", "--kubeconfig", lab.adminKubeconfig, "--namespace", namespace, "--run-dir", run, "--resume"])
            #expect(resumed.status == 0, "\(resumed.standardError)")
            try await expectConverged(namespace, run, "sigkill")
        }
    }

    @Test("SIGTERM inside a wait: the run stops cleanly (exit 143, journal ends 'stopped'), and resume finishes it")
    func sigterm() async throws {
        let scratch = try ScratchDirectory()
        try await withTestNamespace(client, prefix: "engine") { namespace in
            let run = scratch.file("runs/demo")
            let process = Task {
                try await runProcess(try labBinary(), ["engine-demo", "--kubeconfig", lab.adminKubeconfig, "--namespace", namespace,
                                                       "--run-dir", run, "--wait-delay", "5"])
            }
            var inWait = false
            for _ in 0..<100 where !inWait {
                try await Task.sleep(for: .milliseconds(100))
                inWait = (try? Journal.read(directory: run).records.contains { $0.kind == "outcome" && $0.step == "delete" }) ?? false
            }
            #expect(inWait)
            let clock = ContinuousClock()
            let start = clock.now
            #expect(try await runProcess("pkill", ["-TERM", "-f", "engine-demo.*\(run)"]).status == 0)
            let result = try await process.value
            #expect(result.status == 143, "\(result.standardError)")
            #expect(clock.now - start < .seconds(3))
            let records = try Journal.read(directory: run).records
            #expect(records.last?.kind == "stopped")
            let reason = String(decoding: records.last?.data ?? Data(), as: UTF8.self)
            #expect(reason.contains("signal 15"))
            let resumed = try await demo(namespace, run, resume: true)
            #expect(resumed.status == 0, "\(resumed.standardError)")
            try await expectConverged(namespace, run, "sigterm")
        }
    }

    @Test("a second process cannot drive a run that is running")
    func lockedRun() async throws {
        let scratch = try ScratchDirectory()
        try await withTestNamespace(client, prefix: "engine") { namespace in
            let run = scratch.file("runs/demo")
            let first = Task {
                try await runProcess(try labBinary(), ["engine-demo", "--kubeconfig", lab.adminKubeconfig, "--namespace", namespace,
                                                       "--run-dir", run, "--wait-delay", "2"])
            }
            for _ in 0..<50 where (try? Journal.read(directory: run).records.count) ?? 0 < 3 { try await Task.sleep(for: .milliseconds(50)) }
            let second = try await demo(namespace, run, resume: true)
            #expect(second.status != 0)
            #expect(second.standardError.contains("is locked by pid"))
            #expect(try await first.value.status == 0)
        }
    }
}
