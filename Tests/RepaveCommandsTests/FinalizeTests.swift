import Foundation
import Journal
import KubeAPI
import RepaveTestSupport
import Testing

/// `repave finalize RUN` on the lab: after a devpod recreate that kept its old volume, the old PV
/// and its Longhorn volume go (uid-guarded), never a Bound one, and a crash converges on re-run.
@Suite("finalize", .serialized)
struct FinalizeTests: DevpodTesting {
    let lab: Lab
    let client: KubeClient

    init() throws {
        lab = try Lab.current()
        client = try lab.adminClient(userAgent: "repave-test/finalize")
    }

    /// The devpod recreate, finished; its run directory.
    func recreated(_ world: World) async throws -> String {
        let run = try await start(world)
        #expect(run.status == 0, "\(run.standardError)")
        #expect(run.standardOutput.contains("retained (delete it later: repave finalize "), "\(run.standardOutput)")
        return try world.runDirectory()
    }

    func finalize(_ world: World, _ run: String, yes: Bool = true, failpoints: String? = nil) async throws -> ProcessResult {
        try await repave(world, ["finalize", run] + (yes ? ["--yes"] : []), failpoints: failpoints)
    }

    /// The old PV and its Longhorn volume as the cluster has them (nil: gone).
    func oldVolume(_ world: World) async throws -> (pv: PersistentVolume?, longhorn: LonghornVolume?) {
        (try await client.getIfPresent(.persistentVolumes, named: world.oldVolume).map(PersistentVolume.init),
         try await client.getIfPresent(.longhornVolumes, named: world.oldVolume, in: "longhorn-system").map(LonghornVolume.init))
    }

    /// Finalize's end state: the old PV and Longhorn volume gone, the new claim Bound on its own
    /// volume, the journal ending `finalized`, and a second finalize saying it is done.
    func expectFinalized(_ world: World, _ run: String) async throws {
        let gone = try await poll(attempts: 60, every: .milliseconds(250)) {
            let old = try await oldVolume(world)
            return old.pv == nil && old.longhorn == nil
        }
        let left = try await oldVolume(world)
        #expect(gone, "old volume left: \(left)")
        let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: world.original.name, in: world.namespace))
        #expect(claim.isBound && claim.volumeName != world.oldVolume && claim.storageClassName == world.newClass)
        let records = try Journal.read(directory: run).records
        #expect(records.last?.kind == "finalized", "\(records.map(\.kind))")
        #expect(records.filter { $0.kind == "finalized" }.count == 1)
        // Every DELETE finalize sent carries the uid precondition of the object the run saved.
        for record in records where record.kind == "intent" && record.step?.hasPrefix("finalize") == true {
            let intent = try JSONDecoder().decode(Intent.self, from: record.data)
            if intent.verb == "DELETE" { #expect(intent.precondition?.isEmpty == false, "\(intent)") }
        }
        let again = try await finalize(world, run)
        #expect(again.status == 0 && again.standardOutput.contains("already finalized"), "\(again.standardOutput)\(again.standardError)")
        #expect(try Journal.read(directory: run).records.count == records.count, "a second finalize writes nothing")
    }

    struct Intent: Decodable {
        let verb: String
        let path: String
        let precondition: String?
    }

    /// Replaces the old class by one of the same name that retains its volumes: finalize then
    /// gives the kept PV Retain, the lab's agent does not reclaim it, and finalize's own deletes
    /// are the only ones (each failpoint is reached whatever the agent's timing).
    func oldClassRetains(_ world: World) async throws {
        let name = "longhorn-1r-\(world.id)"
        let old = StorageClass(try await client.get(.storageClasses, named: name))
        try await client.delete(.storageClasses, named: name, uid: old.uid)
        _ = try await poll(attempts: 40, every: .milliseconds(100)) { try await client.getIfPresent(.storageClasses, named: name) == nil }
        try await client.create(.storageClasses, LabFixtures.storageClass(name, replicas: 1, reclaimPolicy: "Retain"))
    }

    @Test("after a devpod recreate: status allows finalize; without --yes and a terminal it refuses; --yes deletes the old PV and Longhorn volume, the claim stays Bound, a second run says done")
    func finalizesAfterRecreate() async throws {
        try await withDevpod { world in
            let run = try await recreated(world)
            let before = try await oldVolume(world)
            let pvUID = try #require(before.pv?.uid), longhornUID = try #require(before.longhorn?.uid)
            #expect(before.pv?.reclaimPolicy == "Retain" && before.pv?.phase == "Released")

            let status = try await repave(world, ["status", run, "-o", "json"])
            let state = try #require(try JSONSerialization.jsonObject(with: Data(status.standardOutput.utf8)) as? [String: Any])
            #expect(state["allows"] as? [String] == ["rollback", "finalize"], "\(state)")
            let text = try await repave(world, ["status", run])
            #expect(text.standardOutput.contains("next:       repave finalize \(run)"), "\(text.standardOutput)")

            let refused = try await finalize(world, run, yes: false)
            #expect(refused.status == 2 && refused.standardError.hasPrefix("error[run.no-terminal]: "), "\(refused.standardError)")
            #expect(try await oldVolume(world).pv?.uid == pvUID)

            let finalized = try await finalize(world, run)
            #expect(finalized.status == 0, "\(finalized.standardError)")
            #expect(finalized.standardOutput.contains("finalized: \(world.oldVolume) deleted"), "\(finalized.standardOutput)")
            try await expectFinalized(world, run)
            #expect(try Journal.read(directory: run).records.contains { $0.kind == "finalized" && String(decoding: $0.data, as: UTF8.self).contains(pvUID) && String(decoding: $0.data, as: UTF8.self).contains(longhornUID) })

            let after = try await repave(world, ["status", run, "-o", "json"])
            let done = try #require(try JSONSerialization.jsonObject(with: Data(after.standardOutput.utf8)) as? [String: Any])
            #expect(done["state"] as? String == "finalized" && done["allows"] as? [String] == [], "\(done)")
            #expect((done["notNow"] as? [String: String])?["rollback"] == "finalize has begun: the old volume is gone or going", "\(done)")
            let resumed = try await repave(world, ["resume", run])
            #expect(resumed.status == 4 && resumed.standardError.hasPrefix("error[resume.finalized]: "), "\(resumed.standardError)")
            let shown = try await repave(world, ["journal", "show", run])
            #expect(shown.status == 0 && shown.standardOutput.contains("finalized "), "\(shown.standardOutput)")
        }
    }

    @Test("a kept PV pre-bound to another claim name, then bound to a live claim, is refused (exit 2) and nothing is changed: a Bound PV is never deleted")
    func refusesBoundVolume() async throws {
        try await withDevpod { world in
            let run = try await recreated(world)
            // Another claim binds the kept volume: pre-bound by name, uid and resourceVersion nulled.
            let pv = try #require(try await oldVolume(world).pv)
            _ = try await client.patch(.persistentVolumes, named: pv.name, .merge([
                "spec": ["claimRef": ["namespace": .string(world.namespace), "name": "squatter", "uid": .null, "resourceVersion": .null]]]))
            // Pre-bound, not yet Bound: Available, waiting for a claim of that name. Also refused.
            let available = try await poll(attempts: 120, every: .milliseconds(250)) { try await oldVolume(world).pv?.phase == "Available" }
            try #require(available, "the pre-bound volume did not become Available")
            let preBound = try await finalize(world, run)
            #expect(preBound.status == 2 && preBound.standardError.hasPrefix("error[finalize.volume-bound]: ")
                    && preBound.standardError.contains("is Available and pre-bound to \(world.namespace)/squatter, not Released"), "\(preBound.standardError)")
            var squatter = LabFixtures.claim("squatter", storageClass: pv.storageClassName ?? "", size: "60Gi")
            squatter["spec"]?["volumeName"] = .string(pv.name)
            let claim = PersistentVolumeClaim(try await client.create(.persistentVolumeClaims, in: world.namespace, squatter))
            let bound = try await poll(attempts: 120, every: .milliseconds(250)) {
                let now = try await oldVolume(world).pv
                return now?.phase == "Bound" && now?.claimRef?.uid == claim.uid
            }
            let seen = try await oldVolume(world).pv?.raw
            try #require(bound, "the squatter claim did not bind: \(String(describing: seen))")
            let records = try Journal.read(directory: run).records.count

            let refused = try await finalize(world, run)
            #expect(refused.status == 2 && refused.standardError.hasPrefix("error[finalize.volume-bound]: "), "\(refused.standardError)")
            #expect(refused.standardError.contains(claim.uid), "\(refused.standardError)")
            let after = try await oldVolume(world)
            #expect(after.pv?.uid == pv.uid && after.pv?.reclaimPolicy == "Retain" && after.pv?.phase == "Bound" && after.longhorn != nil)
            #expect(try Journal.read(directory: run).records.count == records, "a refusal writes nothing")
        }
    }

    @Test("an unfinished run is refused and pointed to resume or abort; a wrong typed name deletes nothing; the right one finalizes")
    func refusesUnfinishedAndWrongName() async throws {
        try await withDevpod { world in
            let crashed = try await start(world, failpoints: "after-intent:scale-down")
            #expect(crashed.status == 137, "\(crashed.standardError)")
            let run = try world.runDirectory()
            let refused = try await finalize(world, run)
            #expect(refused.status == 2 && refused.standardError.hasPrefix("error[finalize.not-finished]: "), "\(refused.standardError)")
            #expect(refused.standardError.contains("repave resume \(run)") && refused.standardError.contains("repave abort \(run)"), "\(refused.standardError)")
            let resumed = try await resume(world, run)
            #expect(resumed.status == 0, "\(resumed.standardError)")
            let pvUID = try #require(try await oldVolume(world).pv?.uid)

            // On a terminal (script(1)), the operator types the PV's name; stdin is the typed line.
            func typed(_ answer: String) async throws -> ProcessResult {
                let command = [try repaveBinary(), "finalize", run, "--kubeconfig", lab.adminKubeconfig].joined(separator: " ")
                return try await runProcess("sh", ["-c", "printf '\(answer)\\n' | script -qec '\(command)' /dev/null"])
            }
            let wrong = try await typed("devpod/coder-jeda-codespace-home")
            #expect(wrong.status == 2 && wrong.standardOutput.contains("error[finalize.declined]: "), "\(wrong.standardOutput)")
            #expect(wrong.standardOutput.contains("Type \(world.oldVolume) to continue"), "\(wrong.standardOutput)")
            let untouched = try await oldVolume(world)
            #expect(untouched.pv?.uid == pvUID && untouched.pv?.reclaimPolicy == "Retain" && untouched.longhorn != nil, "nothing changed")
            #expect(!(try Journal.read(directory: run).records.contains { $0.step?.hasPrefix("finalize") == true }), "nothing journaled")

            let right = try await typed(world.oldVolume)
            #expect(right.status == 0 && right.standardOutput.contains("finalized: \(world.oldVolume) deleted"), "\(right.standardOutput)")
            try await expectFinalized(world, run)
        }
    }

    @Test("a run with oldVolume: delete kept nothing: finalize refuses (exit 2) and status does not offer it")
    func nothingKept() async throws {
        try await withDevpod(planExtra: "oldVolume: delete") { world in
            let run = try await start(world)
            #expect(run.status == 0, "\(run.standardError)")
            let directory = try world.runDirectory()
            let records = try Journal.read(directory: directory).records.count
            let refused = try await finalize(world, directory)
            #expect(refused.status == 2 && refused.standardError.hasPrefix("error[finalize.nothing-kept]: "), "\(refused.standardError)")
            #expect(try Journal.read(directory: directory).records.count == records)
            let status = try await repave(world, ["status", directory, "-o", "json"])
            let state = try #require(try JSONSerialization.jsonObject(with: Data(status.standardOutput.utf8)) as? [String: Any])
            #expect(state["allows"] as? [String] == [] && (state["notNow"] as? [String: String])?["finalize"] == "the run kept no volume", "\(state)")
        }
    }

    @Test("crashed at a failpoint inside finalize (before and after each delete, before its last record), the same command converges",
          arguments: ["after-confirmed:finalize", "before-outcome:finalize-reclaim-policy", "after-intent:finalize-delete-longhorn-volume",
                      "before-outcome:finalize-delete-longhorn-volume", "after-intent:finalize-delete-volume", "before-outcome:finalize-delete-volume",
                      "before-finalized:run"])
    func crashConverges(point: String) async throws {
        try await withDevpod { world in
            let run = try await recreated(world)
            // The reclaim-policy point crashes with the class's Delete (the agent may reclaim the
            // volume meanwhile); the others with a class that retains, so each delete is finalize's own.
            if point != "before-outcome:finalize-reclaim-policy" { try await oldClassRetains(world) }
            let crashed = try await finalize(world, run, failpoints: point)
            #expect(crashed.status == 137 && crashed.standardError.contains("failpoint \(point):"), "\(crashed.status): \(crashed.standardError)")
            let status = try await repave(world, ["status", run, "-o", "json"])
            let state = try #require(try JSONSerialization.jsonObject(with: Data(status.standardOutput.utf8)) as? [String: Any])
            #expect(state["allows"] as? [String] == ["finalize"], "\(state)")
            let again = try await finalize(world, run)
            #expect(again.status == 0, "\(again.standardError)")
            try await expectFinalized(world, run)
        }
    }
}
