import Foundation
import Journal
import KubeAPI
import RepaveTestSupport
import Synchronization
import Testing

/// Migrate's matrices on the real node (issue 14): crashed at failpoints, killed with a real
/// `kill -9`, run under seeded API faults, each then resumed (or left to finish) and checked
/// against the converged state (`migrateDivergence`: the same claim name, Bound to the copy, one
/// claim, no copy pod, the marker file read back by the workspace, the old volume retained, the
/// journal ending `finished`, the Lease gone); and the final copy's exit 23 refused with nothing
/// changed. `make test` runs a seeded sample of each; `REPAVE_PROOF=1` the full size.
///
/// The data is proven by a marker file, not by the fidelity manifest: `migrateKeepsEveryFile`
/// compares the manifest once; here every case is a whole world on the real node.
extension RealNodeTests {
    static var proof: Bool { ProcessInfo.processInfo.environment["REPAVE_PROOF"] == "1" }

    /// The steps whose points are sampled around the swap (`preflight` and the run's own points
    /// are left to `make proof`, which crashes every point).
    static let beforeSwap = ["save-manifests", "ensure-storage-class", "retain-old-volume", "create-staging-claim", "retain-staging-volume",
                             "warm-copy", "scale-down", "await-detach", "final-copy", "verify-copy"]
    static let afterSwap = ["scale-up", "verify", "keep-old-volume"]

    /// The step a failpoint belongs to: `after-intent:delete-claim#2` → `delete-claim`.
    static func step(ofPoint point: String) -> String {
        String(point.split(separator: ":", maxSplits: 1).last?.split(separator: "#").first ?? "")
    }

    /// `make test`'s crash points, at most `limit`, in the run's order: the points from
    /// `delete-staging-claim` to `await-bound` (the swap, where a claim is missing or pre-bound)
    /// first, then points of the steps before and after it, each drawn with `seed`. The issue
    /// asks for every point of the swap within 20, but a migrate's swap has 42 (each a journal
    /// append's before and after, and the waits), about 20 minutes on the real node two at a
    /// time: when the swap alone is over the limit, `make test` crashes a seeded sample of it,
    /// and `make proof` every point.
    static func crashSample(_ all: [String], limit: Int, seed: UInt64) -> (swap: [String], chosen: [String]) {
        let first = all.firstIndex { step(ofPoint: $0) == "delete-staging-claim" } ?? all.endIndex
        let last = all.lastIndex { step(ofPoint: $0) == "await-bound" } ?? all.startIndex
        let swap = first <= last ? Array(all[first...last]) : []
        let others = all.filter { (beforeSwap + afterSwap).contains(step(ofPoint: $0)) && !swap.contains($0) }
        var generator = SplitMix64(seed: seed)
        let fromSwap = swap.count <= limit ? swap : Array(swap.shuffled(using: &generator).prefix(limit))
        let fromOthers = others.shuffled(using: &generator).prefix(max(0, limit - fromSwap.count))
        let chosen = Set(fromSwap).union(fromOthers)
        return (swap, all.filter { chosen.contains($0) })
    }

    @Test("the crash sample: the swap's points first (all of them when they fit, else drawn by the seed), the others drawn by the seed, at most the limit, in the run's order")
    func crashSampleChoice() {
        let all = ["before-step_start:preflight", "after-intent:save-manifests", "after-outcome:warm-copy", "in-wait:verify-copy",
                   "before-intent:delete-staging-claim", "after-outcome:delete-claim", "in-wait:await-bound", "after-step_done:await-bound",
                   "after-intent:scale-up", "before-step_done:keep-old-volume", "after-finished:run"]
        let swap = ["before-intent:delete-staging-claim", "after-outcome:delete-claim", "in-wait:await-bound", "after-step_done:await-bound"]
        let six = Self.crashSample(all, limit: 6, seed: 7)
        #expect(six.swap == swap)
        #expect(six.chosen.count == 6 && swap.allSatisfy(six.chosen.contains), "\(six.chosen)")
        #expect(six.chosen.allSatisfy { !$0.hasSuffix(":preflight") && !$0.hasSuffix(":run") }, "\(six.chosen)")
        #expect(six.chosen == all.filter(six.chosen.contains), "in the run's order")
        #expect(Self.crashSample(all, limit: 6, seed: 7).chosen == six.chosen, "a seed replays its sample")
        // A swap over the limit: only swap points, drawn by the seed.
        let three = Self.crashSample(all, limit: 3, seed: 7)
        #expect(three.chosen.count == 3 && three.chosen.allSatisfy(swap.contains), "\(three.chosen)")
        #expect(Self.step(ofPoint: "after-intent:delete-claim#2") == "delete-claim")
    }

    /// A world crashed at `point` (or killed after `kill`), then resumed, and what differs from
    /// a converged migrate. A run stopped before its journal existed (or before its plan copy)
    /// is started again, as an operator would.
    func migrateCrashCase(point: String? = nil, kill: Duration? = nil) async throws -> (stopped: Bool, problems: [String]) {
        var outcome = (stopped: false, problems: [String]())
        try await withRealWorkspace(on: lab) { _, world in
            let marker = try await writeMarker(world)
            let plan = try migratePlan(world)
            let arguments = ["run", plan, "--yes", "--kubeconfig", lab.adminKubeconfig, "--state-dir", world.scratch.file("runs")]
            let first: ProcessResult
            if let kill {
                first = try await runProcessKilled(after: kill, try repaveBinary(), arguments)
            } else {
                first = try await runProcess(try repaveBinary(), arguments, environment: ["REPAVE_FAILPOINTS": point])
            }
            var run = (try? runDirectory(world)) ?? ""
            switch first.status {
            case 0:
                break
            case 137 where point == nil || first.standardError.contains("failpoint \(point ?? ""):"):
                outcome.stopped = true
                let resumed = run.isEmpty ? nil : try await resumeRun(run, kubeconfig: lab.adminKubeconfig)
                if resumed == nil || !FileManager.default.fileExists(atPath: run + "/plan.json")
                    || resumed.map({ $0.status == 4 && $0.standardError.contains("error[run.not-started]: ") }) == true {
                    let again = try await runProcess(try repaveBinary(), ["run", plan, "--yes", "--kubeconfig", lab.adminKubeconfig,
                                                                          "--state-dir", world.scratch.file("again")])
                    if again.status != 0 { outcome.problems.append("the new run: exit \(again.status): \(again.standardError.suffix(800))") }
                    run = world.scratch.file("again/" + (try FileManager.default.contentsOfDirectory(atPath: world.scratch.file("again"))[0]))
                } else if let resumed, resumed.status != 0 {
                    outcome.problems.append("resume: exit \(resumed.status): \(resumed.standardError.suffix(800))")
                }
            default:
                outcome.problems.append("the run: exit \(first.status): \(first.standardError.suffix(800))")
            }
            outcome.problems += try await migrateDivergence(world, marker: marker, run: run)
        }
        return outcome
    }

    @Test("migrate crashed at failpoints (make test: every point from delete-staging-claim to await-bound and a seeded sample of the others, at most 20; make proof: every point), resumed: the same claim name, Bound to the copy, one claim, the marker there, the old volume retained")
    func migrateCrashSample() async throws {
        var all: [String] = []
        let clock = ContinuousClock(), start = clock.now
        try await withRealWorkspace(on: lab) { _, world in
            let marker = try await writeMarker(world)
            let trace = world.scratch.file("trace")
            let result = try await repave(["run", try migratePlan(world), "--yes"], world, environment: ["REPAVE_FAILPOINT_TRACE": trace])
            #expect(result.status == 0, "\(result.standardError)")
            all = try failpoints(inTrace: trace)
            #expect(try await migrateDivergence(world, marker: marker, run: try runDirectory(world)) == [], "uninterrupted")
        }
        let seed = sampleSeed()
        let (swap, chosen) = Self.crashSample(all, limit: 20, seed: seed)
        #expect(swap.count >= 10, "the swap's points: \(swap)")
        print("migrate crash points: \(all.count) in the run, \(swap.count) in the swap: \(swap.joined(separator: " "))")
        // make test: the sample (each point is a whole world and run on the real node, about a
        // minute, two at a time); REPAVE_PROOF=1: every point of the run.
        let points = Self.proof ? all : chosen
        if !Self.proof {
            print("migrate crash matrix: seed \(seed) (REPAVE_SEED=\(seed) repeats it), \(points.count) points (\(points.filter(swap.contains).count) of the swap's \(swap.count)): \(points.joined(separator: " "))")
        }
        // Two at a time: the real node runs both worlds' pods side by side.
        let converged = Mutex(0)
        await concurrently(points, width: 2) { _, point in
            do {
                // A run that never stopped at the point is tried once more, and says so: a point
                // reached only when the lab is slow (a claim not yet Bound when looked at), or a
                // run that failed before it. So is one the lab's kubelet kept attached
                // (`keptAttached`), before or after the point.
                var outcome = try await migrateCrashCase(point: point)
                if !outcome.stopped || Self.keptAttached(outcome) {
                    if !outcome.problems.isEmpty { print("migrate crash matrix: \(point): tried again after: \(outcome.problems.joined(separator: "; ").prefix(600))") }
                    outcome = try await migrateCrashCase(point: point)
                }
                if !outcome.stopped { outcome.problems.insert("the run never stopped at the point, in two tries", at: 0) }
                if outcome.problems.isEmpty { converged.withLock { $0 += 1 } } else { Issue.record("\(point): \(outcome.problems.joined(separator: "; "))") }
            } catch {
                Issue.record("\(point): \(error)")
            }
        }
        print("migrate crash matrix: \(points.count) points, \(converged.withLock { $0 }) converged (\(clock.now - start))")
        #expect(converged.withLock { $0 } == points.count)
        #expect(Self.proof || points.count <= 20, "\(points.count) points")
    }

    /// The lab's kubelet 1.20 kept the old volume's VolumeAttachment, and the run (or its resume)
    /// stopped with `await-detach.stuck`, as it should. Seen in a few of ~100 worlds on loaded
    /// machines: the kubelet mounts a finished copy pod's volume again moments after tearing it
    /// down, then cannot unmount it ("failed to open volume data file"), so the node keeps the
    /// volume in use. A kubelet defect, not a point of the matrix: such a case runs once more.
    static func keptAttached(_ outcome: (stopped: Bool, problems: [String])) -> Bool {
        outcome.problems.contains { $0.contains("error[await-detach.stuck]") }
    }

    /// A migrate on the real node takes about this long on the shared 2-core machine (warm,
    /// final and verify copies of a small tree; measured with `migrateKeepsEveryFile`): kills
    /// are drawn inside it.
    static let typicalMigrate = Duration.seconds(30)

    @Test("real kill -9 of repave run at seeded moments of a migrate (3; 20 under make proof), then resume: converged")
    func migrateKilled() async throws {
        let seed = sampleSeed()
        var generator = SplitMix64(seed: seed)
        let window = UInt64(Self.typicalMigrate.components.seconds * 1000)
        let moments = (0..<(Self.proof ? 20 : 3)).map { _ in Int(generator.next() % window) }
        print("migrate kill -9: seed \(seed) (REPAVE_SEED=\(seed) repeats it), moments \(moments.map { "\($0) ms" }.joined(separator: ", "))")
        let converged = Mutex(0), killed = Mutex(0)
        let clock = ContinuousClock(), start = clock.now
        await concurrently(moments, width: 2) { _, milliseconds in
            do {
                var outcome = try await migrateCrashCase(kill: .milliseconds(milliseconds))
                if Self.keptAttached(outcome) {
                    print("migrate kill -9: killed at \(milliseconds) ms: tried again after: \(outcome.problems.joined(separator: "; ").prefix(600))")
                    outcome = try await migrateCrashCase(kill: .milliseconds(milliseconds))
                }
                if outcome.stopped { killed.withLock { $0 += 1 } }
                if outcome.problems.isEmpty { converged.withLock { $0 += 1 } } else { Issue.record("killed at \(milliseconds) ms: \(outcome.problems.joined(separator: "; "))") }
            } catch {
                Issue.record("killed at \(milliseconds) ms: \(error)")
            }
        }
        print("migrate kill -9: \(moments.count) runs, \(killed.withLock { $0 }) killed mid-run, \(converged.withLock { $0 }) converged (\(clock.now - start))")
        #expect(converged.withLock { $0 } == moments.count)
        #expect(killed.withLock { $0 } >= (moments.count + 1) / 2, "most moments should fall inside the run")
    }

    @Test("migrate under seeded API faults at 1%, 5% and 20% (one seed per rate; 50 under make proof; REPAVE_FAULT_SEEDS replays): each run completes on its own, converged, no write repeated blindly, Retry-After honoured")
    func migrateUnderFaults() async throws {
        let rates = [0.01, 0.05, 0.20], seeds = FaultMatrixTests.seeds(makeTest: 1)
        // Every rate's seeds side by side, two worlds at a time (the rates are not separate test
        // cases: a serialized suite would run them one after the other).
        let cases = rates.flatMap { rate in seeds.map { (rate, $0) } }
        let completed = Mutex([Double: Int]()), totals = Mutex([Double: FaultMatrixTests.Findings]()), onLogs = Mutex([Double: [String: Int]]())
        let clock = ContinuousClock(), start = clock.now
        await concurrently(cases, width: 2) { _, item in
            let (rate, seed) = item
            let label = "rate \(rate) seed \(seed)"
            do {
                try await withRealWorkspace(on: lab) { _, world in
                    let marker = try await writeMarker(world)
                    let log = world.scratch.file("faults.log")
                    let result = try await repave(["run", try migratePlan(world), "--yes"], world,
                                                  environment: ["REPAVE_FAULTS": "seed=\(seed),rate=\(rate)", "REPAVE_FAULT_LOG": log])
                    var problems = result.status == 0 ? [] : ["exit \(result.status): \(result.standardError.suffix(800))"]
                    if result.status == 0 { problems += try await migrateDivergence(world, marker: marker, run: try runDirectory(world)) }
                    let sent = try FaultMatrixTests.readLog(log)
                    let findings = FaultMatrixTests.examine(sent)
                    // The faults the copy steps met on their pods' log streams, counted apart too.
                    onLogs.withLock { counts in
                        for entry in sent where entry.path.hasSuffix("/log") { counts[rate, default: [:]][entry.fault ?? "none", default: 0] += 1 }
                    }
                    problems += findings.blindRepeats
                    if findings.retryAftersHonoured != findings.retryAfters {
                        problems.append("Retry-After honoured \(findings.retryAftersHonoured) of \(findings.retryAfters) times")
                    }
                    totals.withLock { totals in
                        var sum = totals[rate] ?? FaultMatrixTests.Findings()
                        sum.requests += findings.requests
                        sum.faults += findings.faults
                        sum.retryAfters += findings.retryAfters
                        sum.retryAftersHonoured += findings.retryAftersHonoured
                        sum.blindRepeats += findings.blindRepeats
                        sum.byKind.merge(findings.byKind, uniquingKeysWith: +)
                        totals[rate] = sum
                    }
                    if problems.isEmpty { completed.withLock { $0[rate, default: 0] += 1 } } else { Issue.record("\(label): \(problems.joined(separator: "; ")) (fault log \(log))") }
                }
            } catch {
                Issue.record("\(label): \(error)")
            }
        }
        for rate in rates {
            let sum = totals.withLock { $0[rate] } ?? FaultMatrixTests.Findings()
            let logs = onLogs.withLock { $0[rate] ?? [:] }.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            print(String(format: "migrate fault matrix: rate %.0f%%: seeds %@, %d completed and converged; %d faults injected (%@); log reads by fault (%@); requests %.1f per run; Retry-After honoured %d/%d; blind write repeats %d",
                         rate * 100, seeds.map(String.init).joined(separator: ","), completed.withLock { $0[rate] ?? 0 }, sum.faults,
                         sum.byKind.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "), logs,
                         Double(sum.requests) / Double(max(seeds.count, 1)), sum.retryAftersHonoured, sum.retryAfters, sum.blindRepeats.count))
        }
        print("migrate fault matrix: \(cases.count) runs in \(clock.now - start)")
        #expect(rates.allSatisfy { rate in completed.withLock { $0[rate] ?? 0 } == seeds.count })
    }

    @Test("a staging volume published read-only: the warm copy's exit 23 is accepted and journaled, the final copy's exit 23 refused (copy.failed, naming files) before anything is deleted, and abort puts everything back")
    func migrateFinalCopyExit23() async throws {
        try await withRealWorkspace(on: lab) { client, world in
            let marker = try await writeMarker(world)
            // The target class exists before the run, as the plan has it (same provisioner and
            // parameters, so ensure-storage-class adopts it), with the lab's knob: its volumes are
            // published read-only, so rsync's writes fail with EROFS (root ignores file modes:
            // only the mount can make them fail).
            try await client.create(.storageClasses, LabFixtures.storageClass(world.newClass, replicas: 3, annotations: ["lab.repave/publish": "read-only"]))
            let result = try await repave(["run", try migratePlan(world), "--yes"], world)
            #expect(result.status == 3, "\(result.standardOutput)\n\(result.standardError)")
            #expect(result.standardError.contains("error[copy.failed]") && result.standardError.contains("final-copy: rsync exited 23"),
                    "\(result.standardError)")
            #expect(result.standardError.contains("rsync named /dest/"), "the refusal names no file: \(result.standardError)")
            let run = try runDirectory(world)
            let (records, _) = try Journal.read(directory: run)
            let facts = Dictionary(records.filter { $0.kind == "fact" }.compactMap { try? $0.decode([String: String].self) }
                .compactMap { fact in fact["key"].map { ($0, fact["value"] ?? "") } }, uniquingKeysWith: { $1 })
            #expect(facts["copy.warm.exit"] == "23", "the warm copy's exit is not journaled as 23: \(facts)")
            #expect(facts["copy.final.refused-pod"] != nil && facts["copy.final.exit"] == nil, "\(facts)")
            #expect(!records.contains { $0.step == "delete-claim" || $0.step == "delete-staging-claim" }, "the run reached the swap")
            let journal = try String(contentsOfFile: run + "/journal.jsonl", encoding: .utf8)
            #expect(journal.contains("warm-copy: rsync exited 23"), "no note of the warm copy's 23")

            // Nothing was changed that abort cannot put back: the claim is the original, Bound to
            // its volume.
            let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "coder-jeda-codespace-home", in: world.namespace))
            #expect(claim.uid == world.original.uid && claim.volumeName == world.oldVolume && claim.isBound)
            let staging = facts["staging.pv.name"]
            #expect(staging != nil)

            let aborted = try await runProcess(try repaveBinary(), ["abort", run, "--kubeconfig", lab.adminKubeconfig])
            #expect(aborted.status == 0, "\(aborted.standardOutput)\n\(aborted.standardError)")
            try await expectAbortRestored(world, staging: staging, file: "/home/coder/marker", content: marker + "\n")
        }
    }
}
