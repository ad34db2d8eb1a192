import Foundation
import Journal
import KubeAPI
import RepaveCore
import RepaveTestSupport
import Synchronization
import Testing

/// Repave's promise, tried at every point it can be stopped: the devpod run is killed at each
/// failpoint an uninterrupted run reaches (taken from that run's trace, so none is forgotten), and
/// by real SIGKILLs at seeded moments; each is resumed and must end in exactly the state an
/// uninterrupted run leaves, checked against the API server's own audit log.
///
/// `make test` crashes once at every point. `make proof` (REPAVE_PROOF=1) also crashes each
/// resume once more, inside it, before a last resume, and kills at more moments.
@Suite("crash matrix: the devpod run stopped at every point, then resumed")
struct CrashMatrixTests: DevpodTesting {
    let lab: Lab
    let client: KubeClient
    static let proof = ProcessInfo.processInfo.environment["REPAVE_PROOF"] == "1"

    init() throws {
        lab = try Lab.current()
        client = try lab.adminClient(userAgent: "repave-test/crash-matrix")
    }

    /// A fresh devpod world, the run crashed at `point`, resumed (crashed again at `second`
    /// inside the resume, and resumed again), and what differs from the converged state.
    func crashCase(_ point: String, second: String?) async throws -> CrashOutcome {
        var outcome = CrashOutcome()
        try await withDevpod(claimAnnotations: Self.provisionDelay) { world in
            let mark = try lab.auditMark()
            outcome = try await crashAndResume(world, at: point, second: second) { run in try await divergence(world, run: run, since: mark) }
        }
        return outcome
    }

    /// The new claim binds a moment after it is created, and its volume heals a moment after it
    /// attaches (the annotations are copied to it), so the bind wait's and verify's wait's points
    /// are reached in every run, not only when the lab happens to be slow.
    static let provisionDelay = ["lab.repave/provision-delay": "300ms", "lab.repave/healthy-delay": "1s"]

    @Test("every failpoint of the devpod run: crash there, resume (under make proof: crash again inside the resume, resume), converged")
    func everyFailpoint() async throws {
        var points: [String] = []
        try await withDevpod(claimAnnotations: Self.provisionDelay) { world in
            let mark = try lab.auditMark()
            let trace = world.scratch.file("trace")
            let result = try await start(world, trace: trace)
            #expect(result.status == 0, "\(result.standardError)")
            points = try failpoints(inTrace: trace)
            let problems = try await divergence(world, run: try world.runDirectory(), since: mark)
            #expect(problems.isEmpty, "uninterrupted: \(problems)")
        }
        // The run's shape: lock, 11 steps, 8 requests, release; a trace much shorter means the
        // failpoints are not where they should be.
        #expect(points.count >= 80, "\(points)")
        #expect(Set(points).count == points.count)

        // Each point once; under make proof also a second time with a crash inside the resume.
        let cases = points.enumerated().flatMap { index, point in (Self.proof ? [false, true] : [false]).map { (index, point, $0) } }
        let converged = Mutex(0), secondCrashes = Mutex(0)
        await concurrently(cases, width: 3) { _, item in
            let (index, point, crashResume) = item
            let second = crashResume ? "@\(3 + index % 6)" : nil
            let label = point + (second.map { " then \($0) in the resume" } ?? "")
            do {
                // A few points depend on timing (whether a claim is already Bound when looked
                // at): a run that passes one without reaching it is tried once more.
                var outcome = try await crashCase(point, second: second)
                if !outcome.reached { outcome = try await crashCase(point, second: second) }
                if outcome.secondCrashed { secondCrashes.withLock { $0 += 1 } }
                if !outcome.reached { outcome.problems.insert("the run never stopped at the point, in two tries", at: 0) }
                if outcome.problems.isEmpty {
                    converged.withLock { $0 += 1 }
                } else {
                    Issue.record("\(label): \(outcome.problems.joined(separator: "; "))")
                }
            } catch {
                Issue.record("\(label): \(error)")
            }
        }
        let total = converged.withLock { $0 }
        print("crash matrix: \(points.count) crash points × \(Self.proof ? 2 : 1) = \(cases.count) runs, \(total) converged"
              + (Self.proof ? " (\(secondCrashes.withLock { $0 }) of the second resumes crashed inside)" : ""))
        #expect(total == cases.count)
    }

    @Test("the check can fail: a run stopped at the point of no return and not resumed is not converged")
    func divergenceSeen() async throws {
        try await withDevpod { world in
            let mark = try lab.auditMark()
            #expect(try await start(world, failpoints: "after-outcome:delete-claim").status == 137)
            let problems = try await divergence(world, run: try world.runDirectory(), since: mark)
            #expect(problems.contains { $0.hasPrefix("journal ends with outcome") }, "\(problems)")
            #expect(problems.contains { $0.hasPrefix("claim creates reaching the server: []") }, "\(problems)")
            #expect(problems.contains { $0.hasPrefix("lease left") }, "\(problems)")
        }
    }

    @Test("real kill -9 of the repave process at seeded moments of the run, then resume: converged")
    func realKills() async throws {
        // Seeded: the moments are the same on every run of the suite.
        var generator = SplitMix64(seed: 0x5EED_2026)
        let moments = (0..<(Self.proof ? 50 : 5)).map { _ in Int(generator.next() % 1_800) }
        let converged = Mutex(0), killed = Mutex(0)
        await concurrently(moments, width: 3) { _, milliseconds in
            do {
                try await withDevpod { world in
                    let mark = try lab.auditMark()
                    let process = Task { try await start(world) }
                    try await Task.sleep(for: .milliseconds(milliseconds))
                    _ = try await runProcess("pkill", ["-KILL", "-f", "repave run .*\(world.scratch.file("runs"))"])
                    let first = try await process.value
                    var problems: [String] = []
                    var run = (try? world.runDirectory()) ?? ""
                    if first.status == 137 {
                        killed.withLock { $0 += 1 }
                        if run.isEmpty || !FileManager.default.fileExists(atPath: run + "/plan.json") {
                            // Killed before the run existed (or before its plan copy): start again.
                            let again = try await repave(world, ["run", world.planFile, "--yes", "--state-dir", world.scratch.file("again")])
                            if again.status != 0 { problems.append("the new run: exit \(again.status): \(again.standardError)") }
                            run = world.scratch.file("again/" + (try FileManager.default.contentsOfDirectory(atPath: world.scratch.file("again"))[0]))
                        } else {
                            let resumed = try await resume(world, run)
                            if resumed.status != 0 { problems.append("resume: exit \(resumed.status): \(resumed.standardError)") }
                        }
                    } else if first.status != 0 {
                        problems.append("the run: exit \(first.status): \(first.standardError)")
                    }
                    problems += try await divergence(world, run: run, since: mark)
                    if problems.isEmpty { converged.withLock { $0 += 1 } } else { Issue.record("killed at \(milliseconds) ms: \(problems.joined(separator: "; "))") }
                }
            } catch {
                Issue.record("killed at \(milliseconds) ms: \(error)")
            }
        }
        print("real kill -9: \(moments.count) runs, \(killed.withLock { $0 }) killed mid-run, \(converged.withLock { $0 }) converged")
        #expect(converged.withLock { $0 } == moments.count)
        #expect(killed.withLock { $0 } >= moments.count / 2, "most moments should fall inside the run")
    }

    /// What differs from the state a completed `abort` leaves: the original claim untouched, the
    /// workload and the old volume's reclaim policy as they were, the lease gone.
    func abortDivergence(_ world: World, run: String) async throws -> [String] {
        var problems: [String] = []
        let claim = try await client.getIfPresent(.persistentVolumeClaims, named: world.original.name, in: world.namespace).map(PersistentVolumeClaim.init)
        if claim?.uid != world.original.uid { problems.append("the original claim is gone") }
        let deployment = Deployment(try await client.get(.deployments, named: "coder-jeda-codespace", in: world.namespace))
        if deployment.replicas != 1 || deployment.metadata.annotations["repave/original-replicas"] != nil { problems.append("deployment at \(deployment.replicas) replicas") }
        let volume = PersistentVolume(try await client.get(.persistentVolumes, named: world.oldVolume))
        if volume.reclaimPolicy != "Delete" { problems.append("old PV reclaim policy \(volume.reclaimPolicy)") }
        if try await client.getIfPresent(.leases, named: "repave-coder-jeda-codespace-home", in: world.namespace) != nil { problems.append("lease left") }
        let (records, torn) = try Journal.read(directory: run)
        if torn != 0 || records.last?.kind != "aborted" { problems.append("journal ends with \(records.last?.kind ?? "-")") }
        return problems
    }

    @Test("abort stopped at each of its failpoints, then abort again: everything put back")
    func abortAtEveryPoint() async throws {
        // The run is stopped once its workload is down and the old volume set to Retain: the most
        // an abort has to undo.
        let stop = "after-step_done:scale-down"
        var points: [String] = []
        try await withDevpod { world in
            #expect(try await start(world, failpoints: stop).status == 137)
            let trace = world.scratch.file("trace")
            let aborted = try await repave(world, ["abort", try world.runDirectory()], trace: trace)
            #expect(aborted.status == 0, "\(aborted.standardError)")
            points = try failpoints(inTrace: trace)
            let problems = try await abortDivergence(world, run: try world.runDirectory())
            #expect(problems.isEmpty, "uninterrupted abort: \(problems)")
        }
        #expect(points.count >= 6, "\(points)")
        let converged = Mutex(0)
        await concurrently(points, width: 3) { _, point in
            do {
                try await withDevpod { world in
                    #expect(try await start(world, failpoints: stop).status == 137)
                    let run = try world.runDirectory()
                    var problems: [String] = []
                    let crashed = try await repave(world, ["abort", run], failpoints: point)
                    if crashed.status != 137 { problems.append("abort did not stop at the point (exit \(crashed.status))") }
                    let again = try await repave(world, ["abort", run])
                    if again.status != 0 { problems.append("abort again: exit \(again.status): \(again.standardError)") }
                    problems += try await abortDivergence(world, run: run)
                    if problems.isEmpty { converged.withLock { $0 += 1 } } else { Issue.record("abort at \(point): \(problems.joined(separator: "; "))") }
                }
            } catch {
                Issue.record("abort at \(point): \(error)")
            }
        }
        print("abort crash matrix: \(points.count) crash points, \(converged.withLock { $0 }) converged")
        #expect(converged.withLock { $0 } == points.count)
    }
}
