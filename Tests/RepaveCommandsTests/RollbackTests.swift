import Foundation
import Journal
import KubeAPI
import RepaveCore
import RepaveTestSupport
import Synchronization
import Testing

/// `repave rollback RUN` on the simulated lab, after a devpod recreate that kept its old volume:
/// the claim goes back to the old PV and class, the workload comes back, finalize then deletes
/// exactly the new volume, and a rollback crashed inside its swap converges when run again. (The
/// data itself is proven after a migrate on the real node: `RealNodeTests.migrateRollback`.)
@Suite("rollback", .serialized)
struct RollbackTests: DevpodTesting {
    let lab: Lab
    let client: KubeClient
    static let proof = ProcessInfo.processInfo.environment["REPAVE_PROOF"] == "1"

    init() throws {
        lab = try Lab.current()
        client = try lab.adminClient(userAgent: "repave-test/rollback")
    }

    func rollback(_ world: World, _ run: String, yes: Bool = true, failpoints: String? = nil, trace: String? = nil) async throws -> ProcessResult {
        try await repave(world, ["rollback", run] + (yes ? ["--yes"] : []), failpoints: failpoints, trace: trace)
    }

    /// The devpod recreate, finished; its run directory and the new volume's name.
    func recreated(_ world: World) async throws -> (run: String, newVolume: String) {
        let run = try await start(world)
        #expect(run.status == 0, "\(run.standardError)")
        let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: world.original.name, in: world.namespace))
        return (try world.runDirectory(), try #require(claim.volumeName))
    }

    /// The new volume a failed test leaves behind (rollback retains it): deleted with its Longhorn volume.
    func cleanUp(newVolume: String) async {
        if let pv = try? await client.getIfPresent(.persistentVolumes, named: newVolume) {
            _ = try? await client.patch(.persistentVolumes, named: newVolume, .merge(["spec": ["claimRef": .null]]))
            _ = try? await client.delete(.persistentVolumes, named: newVolume, uid: PersistentVolume(pv).uid)
        }
        if let lh = try? await client.getIfPresent(.longhornVolumes, named: newVolume, in: "longhorn-system") {
            _ = try? await client.delete(.longhornVolumes, named: newVolume, in: "longhorn-system", uid: LonghornVolume(lh).uid)
        }
    }

    /// What differs from a finished rollback: the claim (a new object, this run's) Bound to the
    /// old PV on the old class, whose claimRef names it; the workload back at 1 replica and
    /// available; the new volume Retain, annotated, no longer Bound; the journal ending
    /// `rolled_back` once; every rollback DELETE guarded by the uid of the claim it moved off;
    /// the Lease gone.
    func rollbackDivergence(_ world: World, run: String, newVolume: String) async throws -> [String] {
        var problems: [String] = []
        func check(_ holds: Bool, _ problem: @autoclosure () -> String) { if !holds { problems.append(problem()) } }
        let records = try Journal.read(directory: run).records
        check(records.last?.kind == "rolled_back" && records.filter { $0.kind == "rolled_back" }.count == 1, "journal ends \(records.suffix(3).map(\.kind))")
        guard let claim = try await client.getIfPresent(.persistentVolumeClaims, named: world.original.name, in: world.namespace).map(PersistentVolumeClaim.init) else {
            return problems + ["no claim"]
        }
        check(claim.isBound && claim.volumeName == world.oldVolume && claim.storageClassName == "longhorn-1r-\(world.id)",
              "claim \(claim.phase) on \(claim.volumeName ?? "-") class \(claim.storageClassName ?? "-")")
        check(claim.uid != world.original.uid && claim.metadata.annotations["repave/run-id"] == records.first?.run, "the claim is not rollback's")
        let old = try await client.getIfPresent(.persistentVolumes, named: world.oldVolume).map(PersistentVolume.init)
        check(old?.phase == "Bound" && old?.claimRef?.uid == claim.uid, "old PV \(old?.phase ?? "gone") claimRef \(old?.claimRef?.uid ?? "-")")
        let new = try await client.getIfPresent(.persistentVolumes, named: newVolume).map(PersistentVolume.init)
        check(new?.reclaimPolicy == "Retain" && new?.phase != "Bound" && new?.metadata.annotations["repave/run-id"] == records.first?.run,
              "new PV \(new.map { "\($0.phase) \($0.reclaimPolicy) \($0.metadata.annotations.filter { $0.key.hasPrefix("repave/") })" } ?? "gone")")
        let deployment = Deployment(try await client.get(.deployments, named: "coder-jeda-codespace", in: world.namespace))
        check(deployment.replicas == 1 && deployment.availableReplicas == 1 && deployment.metadata.annotations["repave/original-replicas"] == nil,
              "deployment at \(deployment.replicas) replicas, \(deployment.availableReplicas) available")
        let facts = Dictionary(records.filter { $0.kind == "fact" }.compactMap { try? $0.decode([String: String].self) }.compactMap { f in f["key"].map { ($0, f["value"] ?? "") } }) { $1 }
        check(facts[RollbackFact.volume.key] == newVolume, "rollback.pv.name \(facts[RollbackFact.volume.key] ?? "-")")
        check(facts[RollbackFact.claimCreated.key] == claim.uid, "rollback's new claim uid \(facts[RollbackFact.claimCreated.key] ?? "-")")
        let deletes = try records.filter { $0.kind == "intent" && $0.step?.hasPrefix("rollback") == true }.map { try $0.decode(Intent.self) }.filter { $0.verb == "DELETE" }
        check(!deletes.isEmpty && deletes.allSatisfy { $0.precondition == facts[RollbackFact.claimUID.key] && $0.path.hasSuffix("/persistentvolumeclaims/\(world.original.name)") },
              "rollback deletes \(deletes)")
        check(try await client.getIfPresent(.leases, named: "repave-coder-jeda-codespace-home", in: world.namespace) == nil, "lease left")
        return problems
    }

    struct Intent: Decodable {
        let verb: String
        let path: String
        let precondition: String?
    }

    @Test("after a devpod recreate: status allows rollback; without --yes and a terminal it refuses; --yes puts the claim back on the old PV and class and says where the data since the swap is; again: already rolled back; resume refused; finalize then deletes exactly the new volume")
    func rollsBackAfterRecreate() async throws {
        var newVolume = ""
        do { try await withDevpod { world in
            let (run, new) = try await recreated(world)
            newVolume = new
            let status = try await repave(world, ["status", run, "-o", "json"])
            let state = try #require(try JSONSerialization.jsonObject(with: Data(status.standardOutput.utf8)) as? [String: Any])
            #expect(state["allows"] as? [String] == ["rollback", "finalize"], "\(state)")

            let records = try Journal.read(directory: run).records.count
            let refused = try await rollback(world, run, yes: false)
            #expect(refused.status == 2 && refused.standardError.hasPrefix("error[run.no-terminal]: "), "\(refused.standardError)")
            #expect(refused.standardError.contains("stays on the new volume \(new)"), "\(refused.standardError)")
            #expect(try Journal.read(directory: run).records.count == records, "a refusal writes nothing")

            let rolled = try await rollback(world, run)
            #expect(rolled.status == 0, "\(rolled.standardOutput)\(rolled.standardError)")
            #expect(rolled.standardOutput.contains("rolled back: \(world.namespace)/\(world.original.name) is on its old volume \(world.oldVolume)"), "\(rolled.standardOutput)")
            #expect(rolled.standardOutput.contains("it stays on the new volume \(new)"), "\(rolled.standardOutput)")
            #expect(try await rollbackDivergence(world, run: run, newVolume: new) == [])

            let after = try await repave(world, ["status", run, "-o", "json"])
            let done = try #require(try JSONSerialization.jsonObject(with: Data(after.standardOutput.utf8)) as? [String: Any])
            #expect(done["state"] as? String == "rolled_back" && done["allows"] as? [String] == ["finalize"], "\(done)")
            let count = try Journal.read(directory: run).records.count
            let again = try await repave(world, ["rollback", run, "--yes", "-o", "json"])
            let json = try #require(try JSONSerialization.jsonObject(with: Data(again.standardOutput.utf8)) as? [String: Any], "\(again.standardOutput)\(again.standardError)")
            #expect(again.status == 0 && json["result"] as? String == "already-rolled-back" && json["claim"] as? String == "\(world.namespace)/\(world.original.name)", "\(json)")
            #expect(try Journal.read(directory: run).records.count == count, "a second rollback writes nothing")
            let resumed = try await repave(world, ["resume", run])
            #expect(resumed.status == 4 && resumed.standardError.hasPrefix("error[resume.rolled-back]: "), "\(resumed.standardError)")
            let aborted = try await repave(world, ["abort", run])
            #expect(aborted.status == 4 && aborted.standardError.hasPrefix("error[abort.past-pnr]: ") && aborted.standardError.contains("repave finalize \(run)"),
                    "\(aborted.standardError)")

            // finalize: the new volume, never the old one now Bound.
            let newUID = try #require(try await client.getIfPresent(.persistentVolumes, named: new).map(PersistentVolume.init)?.uid)
            let finalized = try await repave(world, ["finalize", run, "--yes"])
            #expect(finalized.status == 0 && finalized.standardOutput.contains("finalized: \(new) deleted"), "\(finalized.standardOutput)\(finalized.standardError)")
            let gone = try await poll(attempts: 60, every: .milliseconds(250)) {
                let pv = try await client.getIfPresent(.persistentVolumes, named: new)
                let longhorn = try await client.getIfPresent(.longhornVolumes, named: new, in: "longhorn-system")
                return pv == nil && longhorn == nil
            }
            #expect(gone, "the new volume is left")
            let old = try await client.getIfPresent(.persistentVolumes, named: world.oldVolume).map(PersistentVolume.init)
            #expect(old?.phase == "Bound" && old?.reclaimPolicy == "Retain", "old PV \(String(describing: old?.phase))")
            #expect(try await client.getIfPresent(.longhornVolumes, named: world.oldVolume, in: "longhorn-system") != nil, "the old Longhorn volume stays")
            let journal = try Journal.read(directory: run).records
            #expect(journal.last?.kind == "finalized" && String(decoding: journal.last!.data, as: UTF8.self).contains(newUID), "\(journal.last.map { String(decoding: $0.data, as: UTF8.self) } ?? "")")
            let rollbackAfter = try await rollback(world, run)
            #expect(rollbackAfter.status == 0 && rollbackAfter.standardOutput.contains("already rolled back"), "\(rollbackAfter.standardError)")
        } } catch {
            await cleanUp(newVolume: newVolume)
            throw error
        }
        await cleanUp(newVolume: newVolume)
    }

    @Test("rollback refuses before the point of no return (exit 2, names abort), inside the swap (exit 2, names resume) and after finalize (exit 2), writing nothing")
    func refusals() async throws {
        try await withDevpod { world in
            let early = try await start(world, failpoints: "after-intent:scale-down")
            #expect(early.status == 137, "\(early.standardError)")
            let run = try world.runDirectory()
            var records = try Journal.read(directory: run).records.count
            let before = try await rollback(world, run)
            #expect(before.status == 2 && before.standardError.hasPrefix("error[rollback.before-pnr]: ") && before.standardError.contains("repave abort \(run)"), "\(before.standardError)")
            #expect(try Journal.read(directory: run).records.count == records)

            // Stopped inside the swap: the old claim deleted, the new one not yet made.
            let resumed = try await repave(world, ["resume", run], failpoints: "after-outcome:delete-claim")
            #expect(resumed.status == 137, "\(resumed.standardError)")
            records = try Journal.read(directory: run).records.count
            let inside = try await rollback(world, run)
            #expect(inside.status == 2 && inside.standardError.hasPrefix("error[rollback.not-swapped]: ") && inside.standardError.contains("repave resume \(run)"), "\(inside.standardError)")
            #expect(try Journal.read(directory: run).records.count == records)

            let finished = try await repave(world, ["resume", run])
            #expect(finished.status == 0, "\(finished.standardError)")
            let finalized = try await repave(world, ["finalize", run, "--yes"])
            #expect(finalized.status == 0, "\(finalized.standardError)")
            records = try Journal.read(directory: run).records.count
            let after = try await rollback(world, run)
            #expect(after.status == 2 && after.standardError.hasPrefix("error[rollback.finalized]: "), "\(after.standardError)")
            #expect(try Journal.read(directory: run).records.count == records)
        }
    }

    @Test("on a terminal, rollback names the new volume it leaves and asks for namespace/claim: a wrong answer changes and journals nothing, the right one rolls back")
    func typedName() async throws {
        var newVolume = ""
        do { try await withDevpod { world in
            let (run, new) = try await recreated(world)
            newVolume = new
            // On a terminal (script(1)), the operator types the claim's name; stdin is the typed line.
            func typed(_ answer: String) async throws -> ProcessResult {
                let command = [try repaveBinary(), "rollback", run, "--kubeconfig", lab.adminKubeconfig].joined(separator: " ")
                return try await runProcess("sh", ["-c", "printf '\(answer)\\n' | script -qec '\(command)' /dev/null"])
            }
            let records = try Journal.read(directory: run).records.count
            let wrong = try await typed(world.oldVolume)
            #expect(wrong.status == 2 && wrong.standardOutput.contains("error[rollback.declined]: "), "\(wrong.standardOutput)")
            #expect(wrong.standardOutput.contains("stays on the new volume \(new)") && wrong.standardOutput.contains("Type \(world.namespace)/\(world.original.name) to continue"),
                    "\(wrong.standardOutput)")
            #expect(try Journal.read(directory: run).records.count == records, "nothing journaled")
            let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: world.original.name, in: world.namespace))
            #expect(claim.volumeName == new, "nothing changed")

            let right = try await typed("\(world.namespace)/\(world.original.name)")
            #expect(right.status == 0 && right.standardOutput.contains("rolled back: "), "\(right.standardOutput)")
            #expect(try await rollbackDivergence(world, run: run, newVolume: new) == [])
        } } catch {
            await cleanUp(newVolume: newVolume)
            throw error
        }
        await cleanUp(newVolume: newVolume)
    }

    @Test("rollback crashed at its failpoints from delete-claim to await-bound, run again: converged (make test: a seeded sample; REPAVE_PROOF=1: every one)")
    func crashesInTheSwap() async throws {
        var points: [String] = []
        var newVolume = ""
        try await withDevpod { world in
            let (run, new) = try await recreated(world)
            newVolume = new
            let trace = world.scratch.file("trace")
            let rolled = try await rollback(world, run, trace: trace)
            #expect(rolled.status == 0, "\(rolled.standardError)")
            let all = try failpoints(inTrace: trace)
            let first = all.firstIndex { $0.hasSuffix(":rollback-delete-claim") } ?? all.endIndex
            let last = all.lastIndex { $0.hasSuffix(":rollback-await-bound") } ?? all.startIndex
            points = first <= last ? Array(all[first...last]) : []
            #expect(try await rollbackDivergence(world, run: run, newVolume: new) == [], "uninterrupted")
        }
        await cleanUp(newVolume: newVolume)
        #expect(points.count >= 12, "\(points)")
        print("rollback crash points in the swap: \(points.count): \(points.joined(separator: " "))")
        let environment = ProcessInfo.processInfo.environment
        if !Self.proof {
            let seed = environment["REPAVE_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...999_999)
            var generator = SplitMix64(seed: seed)
            points = Array(points.shuffled(using: &generator).prefix(4))
            print("rollback crash matrix (swap): seed \(seed) (REPAVE_SEED=\(seed) repeats it), sample: \(points.joined(separator: " "))")
        }
        let converged = Mutex(0), unreached = Mutex<[String]>([])
        await concurrently(points, width: 3) { _, point in
            // A second pass of a wait (`in-wait:…#2`: the new PV still Bound when delete-claim
            // looks) depends on the controllers' timing: such a point not reached is tried again,
            // up to three times, and then reported, not failed.
            let timed = point.contains("#")
            var reached = false
            for _ in 1...(timed ? 3 : 1) where !reached {
                let outcome = await crashCase(point)
                reached = outcome.reached
                if outcome.converged { converged.withLock { $0 += 1 } }
            }
            if !reached && timed { unreached.withLock { $0.append(point) } }
        }
        print("rollback crash matrix (swap): \(converged.withLock { $0 }) of \(points.count) points converged"
              + (unreached.withLock { $0 }.isEmpty ? "" : "; not reached in 3 tries (timing): \(unreached.withLock { $0 }.joined(separator: " "))"))
    }

    /// A fresh world, recreated, rollback crashed at `point` and run again; false when the
    /// rollback did not stop there (a failure unless the point depends on timing).
    func crashCase(_ point: String) async -> (reached: Bool, converged: Bool) {
        var left = "", reached = true, converged = false
        do {
            try await withDevpod { world in
                let (run, new) = try await recreated(world)
                left = new
                let crashed = try await rollback(world, run, failpoints: point)
                guard crashed.status == 137, crashed.standardError.contains("failpoint \(point):") else {
                    reached = false
                    if crashed.status != 0 || !point.contains("#") { Issue.record("\(point): rollback did not stop there (exit \(crashed.status)): \(crashed.standardError)") }
                    return
                }
                let again = try await rollback(world, run)
                let problems = (again.status == 0 ? [] : ["rollback again: exit \(again.status): \(again.standardError)"])
                    + (try await rollbackDivergence(world, run: run, newVolume: new))
                if problems.isEmpty { converged = true } else { Issue.record("\(point): \(problems.joined(separator: "; "))") }
            }
        } catch {
            Issue.record("\(point): \(error)")
        }
        await cleanUp(newVolume: left)
        return (reached, converged)
    }
}
