import Foundation
import Journal
import KubeAPI
import RepaveTestSupport
import Synchronization
import Testing

/// `strategy: migrate` on the real node: real rsync pods copy the workspace's volume onto the
/// new class, and the claim's name moves onto the copy.
extension RealNodeTests {
    /// The migrate plan for the world's claim, written beside its recreate plan.
    func migratePlan(_ world: World, timeouts: String = "warmCopy: 300s, finalCopy: 300s, verifyCopy: 300s") throws -> String {
        let file = world.scratch.file("migrate.yaml")
        try migratePlanText(namespace: world.namespace, newClass: world.newClass, copy: "{image: lab/mover:1, imagePullPolicy: Never}",
                            timeouts: "scaleDown: 180s, claimDeletion: 180s, bind: 120s, rollout: 180s, verify: 60s, \(timeouts)")
            .write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    func repave(_ arguments: [String], _ world: World, environment: [String: String?] = [:]) async throws -> ProcessResult {
        try await runProcess(try repaveBinary(), arguments + ["--kubeconfig", lab.adminKubeconfig, "--state-dir", world.scratch.file("runs")], environment: environment)
    }

    /// The manifest of the tree at `path` in the running workspace pod.
    func workspaceManifest(_ pod: String, _ world: World) async throws -> FidelityManifest {
        let result = try await kubectl(["-n", world.namespace, "exec", pod, "--", "sh", "-c", DataFidelity.manifestScript, "sh", "/home/coder"])
        #expect(result.status == 0, "manifest: \(result.standardError)")
        return try FidelityManifest(log: result.standardOutput)
    }

    func runDirectory(_ world: World) throws -> String {
        let runs = try FileManager.default.contentsOfDirectory(atPath: world.scratch.file("runs")).sorted()
        return world.scratch.file("runs") + "/" + (try #require(runs.first))
    }

    /// The data-fidelity tree (`megabytes` in its large file) written through the running
    /// workspace pod into its home, and that pod and the tree's manifest, read back through it.
    func writeTree(_ world: World, megabytes: Int) async throws -> (pod: Pod, manifest: FidelityManifest) {
        let pod = try #require(try await runningPods(world.namespace).first)
        let write = try await kubectl(["-n", world.namespace, "exec", pod.name, "--", "sh", "-c", DataFidelity.treeScript, "sh", "/home/coder", String(megabytes)])
        #expect(write.status == 0, "tree: \(write.standardError)")
        let manifest = try await workspaceManifest(pod.name, world)
        #expect(manifest.entries["./large"]?.size == Int64(megabytes) << 20)
        return (pod, manifest)
    }

    /// What the run left in the namespace: the claims and copy pods.
    func leftovers(_ world: World) async throws -> (claims: [String], pods: [String]) {
        let claims = try await client.list(.persistentVolumeClaims, in: world.namespace).items.map { PersistentVolumeClaim($0).name }
        let pods = try await client.list(.pods, in: world.namespace, labelSelector: "repave/copy").items.map { Pod($0).name }
        return (claims.sorted(), pods)
    }

    /// After `repave abort` of a run stopped before the point of no return: the original claim
    /// Bound to its volume again, that PV back to Delete and unannotated, the workload up, no
    /// other claim, no copy pod, the staging volume gone with its Longhorn volume, and `file`
    /// read back through the workspace as `content`.
    func expectAbortRestored(_ world: World, staging: String?, file: String, content: String) async throws {
        let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "coder-jeda-codespace-home", in: world.namespace))
        #expect(claim.uid == world.original.uid && claim.volumeName == world.oldVolume && claim.isBound)
        let old = PersistentVolume(try await client.get(.persistentVolumes, named: world.oldVolume))
        #expect(old.reclaimPolicy == "Delete" && old.metadata.annotations["repave/run-id"] == nil)
        try await client.waitAvailable("coder-jeda-codespace", in: world.namespace, describedAs: "workspace available")
        let left = try await leftovers(world)
        #expect(left.claims == ["coder-jeda-codespace-home"] && left.pods.isEmpty, "\(left)")
        if let staging {
            #expect(try await client.getIfPresent(.persistentVolumes, named: staging) == nil)
            #expect(try await client.getIfPresent(.longhornVolumes, named: staging, in: "longhorn-system") == nil)
        }
        let pod = try #require(try await runningPods(world.namespace).first)
        let read = try await kubectl(["-n", world.namespace, "exec", pod.name, "--", "cat", file])
        #expect(read.standardOutput == content)
    }

    @Test("migrate on the real node: the tree written through the workspace comes back identical on the new class, under the same claim name, bound to the copied volume; the old volume is retained and annotated")
    func migrateKeepsEveryFile() async throws {
        try await withRealWorkspace(on: lab) { client, world in
            let (pod, before) = try await writeTree(world, megabytes: 20)

            let planFile = try migratePlan(world)
            let offline = try await runProcess(try repaveBinary(), ["plan", planFile, "--offline"])
            #expect(offline.status == 0, "\(offline.standardError)")
            let clock = ContinuousClock(), start = clock.now
            let result = try await repave(["run", planFile, "--yes"], world)
            #expect(result.status == 0, "\(result.standardOutput)\n\(result.standardError)")
            print("migrate on the real node: \(clock.now - start)")

            let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "coder-jeda-codespace-home", in: world.namespace))
            #expect(claim.uid != world.original.uid && claim.storageClassName == world.newClass && claim.isBound)
            let volume = try #require(claim.volumeName)
            #expect(volume != world.oldVolume)
            let pv = PersistentVolume(try await client.get(.persistentVolumes, named: volume))
            #expect(pv.claimRef?.uid == claim.uid && pv.storageClassName == world.newClass && pv.reclaimPolicy == "Retain")
            #expect(pv.metadata.annotations["repave/claim"] == "\(world.namespace)/coder-jeda-codespace-home")
            // Exactly one claim, no copy pod left.
            let left = try await leftovers(world)
            #expect(left.claims == ["coder-jeda-codespace-home"] && left.pods.isEmpty, "\(left)")

            // The workload runs on the copy, and sees the same tree.
            let newPod = try #require(try await runningPods(world.namespace).first)
            #expect(newPod.uid != pod.uid)
            let after = try await workspaceManifest(newPod.name, world)
            #expect(after.differences(from: before) == [])
            #expect(after.entries["./sparse"].map { $0.allocated <= before.entries["./sparse"]!.allocated } == true)

            // The old volume: retained, annotated with the run and the claim, its data still there.
            let old = PersistentVolume(try await client.get(.persistentVolumes, named: world.oldVolume))
            #expect(old.reclaimPolicy == "Retain" && old.metadata.annotations["repave/run-id"] != nil)
            #expect(old.metadata.annotations["repave/claim"] == "\(world.namespace)/coder-jeda-codespace-home")
            let oldDirectory = (try lab.value("VOLUME_DIR")) + "/" + world.oldVolume
            #expect(FileManager.default.fileExists(atPath: oldDirectory + "/large"))

            // The journal holds the copies' facts, and the summary says what they did.
            let journal = try String(contentsOfFile: try runDirectory(world) + "/journal.jsonl", encoding: .utf8)
            for key in ["staging.claim.uid", "staging.pv.uid", "staging.longhorn.uid", "rsync.version", "copy.warm.exit", "copy.final.exit",
                        "copy.verify.exit", "copy.warm.bytesPerSecond", "copy.final.files"] {
                #expect(journal.contains("\"\(key)\""), "the journal lacks \(key)")
            }
            #expect(result.standardOutput.contains("warm copy: exit 0"), "\(result.standardOutput)")
            #expect(result.standardOutput.contains("verify copy: exit 0, no differences"), "\(result.standardOutput)")
        }
    }

    @Test("migrate aborted after the copies, before the point of no return: the original claim is bound to its volume again, the workload up, no staging claim, volume, Longhorn volume or copy pod left")
    func migrateAbort() async throws {
        try await withRealWorkspace(on: lab) { client, world in
            let write = try await kubectl(["-n", world.namespace, "exec", try #require(try await runningPods(world.namespace).first).name, "--",
                                           "sh", "-c", "echo kept > /home/coder/notes"])
            #expect(write.status == 0, "\(write.standardError)")
            let planFile = try migratePlan(world)
            // Stopped dead right before the staging claim's deletion.
            let crashed = try await repave(["run", planFile, "--yes"], world, environment: ["REPAVE_FAILPOINTS": "after-intent:delete-staging-claim"])
            #expect(crashed.status == 137, "\(crashed.standardError)")
            let journal = try String(contentsOfFile: try runDirectory(world) + "/journal.jsonl", encoding: .utf8)
            let staging = try #require(journal.firstMatch(of: /"staging\.pv\.name","value":"([^"]+)"/).map { String($0.1) }
                ?? journal.firstMatch(of: /"key":"staging\.pv\.name"[^}]*"value":"([^"]+)"/).map { String($0.1) }, "\(journal)")

            let aborted = try await runProcess(try repaveBinary(), ["abort", try runDirectory(world), "--kubeconfig", lab.adminKubeconfig])
            #expect(aborted.status == 0, "\(aborted.standardOutput)\n\(aborted.standardError)")

            try await expectAbortRestored(world, staging: staging, file: "/home/coder/notes", content: "kept\n")
        }
    }

    @Test("a copy image the node cannot start stops the warm copy at once with copy.image-unsuitable, and abort puts everything back")
    func migrateImageMissing() async throws {
        try await withRealWorkspace(on: lab) { client, world in
            let file = world.scratch.file("missing-image.yaml")
            try migratePlanText(namespace: world.namespace, newClass: world.newClass, copy: "{image: lab/nothing:1, imagePullPolicy: Never}",
                                timeouts: "scaleDown: 180s, claimDeletion: 180s, bind: 120s, rollout: 180s, verify: 60s")
                .write(toFile: file, atomically: true, encoding: .utf8)
            let clock = ContinuousClock(), start = clock.now
            let result = try await repave(["run", file, "--yes"], world)
            #expect(result.status == 3 && result.standardError.contains("error[copy.image-unsuitable]") && result.standardError.contains("ErrImageNeverPull"),
                    "\(result.standardError)")
            #expect(clock.now - start < .seconds(120), "stopped only after \(clock.now - start)")
            let aborted = try await runProcess(try repaveBinary(), ["abort", try runDirectory(world), "--kubeconfig", lab.adminKubeconfig])
            #expect(aborted.status == 0, "\(aborted.standardError)")
            let left = try await leftovers(world)
            #expect(left.claims == ["coder-jeda-codespace-home"] && left.pods.isEmpty, "\(left)")
            let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "coder-jeda-codespace-home", in: world.namespace))
            #expect(claim.uid == world.original.uid && claim.volumeName == world.oldVolume)
        }
    }

    /// What differs from a converged migrate: the claim Bound on the new class to a copied
    /// volume whose claimRef names it, exactly one claim, no copy pod, the workload running and
    /// reading the file written before, the old volume retained.
    func migrateDivergence(_ world: World, marker: String, run: String? = nil) async throws -> [String] {
        var problems: [String] = []
        if let run {
            let (records, torn) = try Journal.read(directory: run)
            if torn != 0 || records.last?.kind != "finished" { problems.append("journal ends with \(records.last?.kind ?? "-"), \(torn) torn bytes") }
        }
        if try await client.getIfPresent(.leases, named: "repave-coder-jeda-codespace-home", in: world.namespace) != nil { problems.append("lease left") }
        guard let object = try await client.getIfPresent(.persistentVolumeClaims, named: "coder-jeda-codespace-home", in: world.namespace) else {
            return ["the claim is gone"]
        }
        let claim = PersistentVolumeClaim(object)
        if !(claim.isBound && claim.storageClassName == world.newClass && claim.uid != world.original.uid) {
            problems.append("claim: \(claim.phase), class \(claim.storageClassName ?? "-"), uid \(claim.uid == world.original.uid ? "old" : "new")")
        }
        if let volume = claim.volumeName, let pv = try await client.getIfPresent(.persistentVolumes, named: volume).map(PersistentVolume.init) {
            if volume == world.oldVolume || pv.claimRef?.uid != claim.uid { problems.append("volume \(volume): claimRef uid \(pv.claimRef?.uid ?? "none")") }
        } else {
            problems.append("the claim has no volume")
        }
        let left = try await leftovers(world)
        if left.claims != ["coder-jeda-codespace-home"] || !left.pods.isEmpty { problems.append("left: \(left)") }
        let old = try await client.getIfPresent(.persistentVolumes, named: world.oldVolume).map(PersistentVolume.init)
        if old?.reclaimPolicy != "Retain" { problems.append("old volume: \(old?.reclaimPolicy ?? "gone")") }
        if let pod = try await runningPods(world.namespace).first {
            let read = try await kubectl(["-n", world.namespace, "exec", pod.name, "--", "cat", "/home/coder/marker"])
            if read.standardOutput != marker + "\n" { problems.append("the workspace reads \(read.standardOutput.debugDescription) \(read.standardError)") }
        } else {
            problems.append("no workspace pod running")
        }
        return problems
    }

    /// A world with a marker file in the workspace's home; returns the marker.
    func writeMarker(_ world: World) async throws -> String {
        let marker = "marker-\(suffix())"
        let pod = try #require(try await runningPods(world.namespace).first)
        let write = try await kubectl(["-n", world.namespace, "exec", pod.name, "--", "sh", "-c", "echo \(marker) > /home/coder/marker && sync"])
        #expect(write.status == 0, "\(write.standardError)")
        return marker
    }
}
