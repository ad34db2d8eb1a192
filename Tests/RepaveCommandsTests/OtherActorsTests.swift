import Foundation
import Journal
import KubeAPI
import RepaveTestSupport
import Testing

/// Others act on the cluster while Repave runs: a reconciler recreates the claim, something
/// scales the workload back up, someone deletes the old volume, the new volume never becomes
/// healthy. The run is held at a known point (a `hold` failpoint) while the test plays the
/// other actor; Repave must notice, stop or report, and touch nothing that is not its own.
@Suite("other actors during the run")
struct OtherActorsTests: DevpodTesting {
    let lab: Lab
    let client: KubeClient

    init() throws {
        lab = try Lab.current()
        client = try lab.adminClient(userAgent: "repave-test/other-actors")
    }

    /// Starts `repave run` held at the failpoint `pause` until `release` is called; returns once
    /// the run has reached it.
    func startHeld(_ world: World, at pause: String) async throws -> (run: Task<ProcessResult, any Error>, release: () -> Void) {
        let gate = world.scratch.file("gate")
        let run = Task {
            try await runProcess(try repaveBinary(), ["run", world.planFile, "--yes", "--kubeconfig", lab.adminKubeconfig, "--state-dir", world.scratch.file("runs")],
                                 environment: ["REPAVE_FAILPOINTS": "\(pause)=hold(\(gate))"])
        }
        let reached = try await poll(attempts: 1500, every: .milliseconds(20)) { FileManager.default.fileExists(atPath: gate + ".reached") }
        #expect(reached, "the run never reached \(pause)")
        return (run, { _ = FileManager.default.createFile(atPath: gate, contents: nil) })
    }

    @Test("the claim recreated by someone else while Repave waits for its deletion: the run stops (exit 3), neither adopting nor deleting it")
    func claimRecreatedDuringDeletion() async throws {
        try await withDevpod { world in
            let mark = try lab.auditMark()
            let (run, release) = try await startHeld(world, at: "in-wait:delete-claim")
            try await client.wait(for: .persistentVolumeClaims, named: world.original.name, in: world.namespace, timeout: .seconds(30), describedAs: "old claim gone") { $0 == nil }
            let theirs = PersistentVolumeClaim(try await client.create(.persistentVolumeClaims, in: world.namespace,
                LabFixtures.claim(world.original.name, storageClass: world.newClass, size: "60Gi")))
            release()
            let result = try await run.value
            #expect(result.status == 3, "\(result.standardError)")
            #expect(result.standardError.contains("error[create-claim.foreign]: a claim \(world.namespace)/\(world.original.name) (uid \(theirs.uid))"), "\(result.standardError)")
            let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: world.original.name, in: world.namespace))
            #expect(claim.uid == theirs.uid && claim.metadata.annotations["repave/run-id"] == nil)
            // Repave deleted the original once and created nothing.
            let writes = try lab.repaveWrites(since: mark, namespace: world.namespace).filter { $0.objectRef?.resource == "persistentvolumeclaims" }
            #expect(writes.map(\.verb) == ["delete"], "\(writes.map(\.verb))")
            #expect(try await client.getIfPresent(.persistentVolumes, named: world.oldVolume).map { PersistentVolume($0).reclaimPolicy } == "Retain")
        }
    }

    @Test("the workload scaled back up during the window: the run stops before the point of no return, names who scaled it, and abort puts everything back")
    func scaledBackUp() async throws {
        try await withDevpod { world in
            let (run, release) = try await startHeld(world, at: "before-step_done:scale-down")
            // Someone (a GitOps sync, a colleague) puts it back to 1.
            try await client.patch(.deployments, named: "coder-jeda-codespace", in: world.namespace, .merge(["spec": ["replicas": 1]]))
            release()
            let result = try await run.value
            #expect(result.status == 3, "\(result.standardError)")
            #expect(result.standardError.contains("error[window.scaled-up]: "), "\(result.standardError)")
            // The cause names the workload and who set its replicas; the hint offers abort (still before the point of no return).
            #expect(result.standardError.contains("Deployment/coder-jeda-codespace is at 1 replicas again (spec.replicas last set by repave-test)"), "\(result.standardError)")
            #expect(result.standardError.contains("'repave abort'"))
            let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: world.original.name, in: world.namespace))
            #expect(claim.uid == world.original.uid && !claim.metadata.isTerminating)
            let directory = try world.runDirectory()
            #expect(!(try Journal.read(directory: directory).records.contains { $0.kind == "pnr" }))

            let aborted = try await runProcess(try repaveBinary(), ["abort", directory, "--kubeconfig", lab.adminKubeconfig])
            #expect(aborted.status == 0, "\(aborted.standardError)")
            let deployment = Deployment(try await client.get(.deployments, named: "coder-jeda-codespace", in: world.namespace))
            #expect(deployment.replicas == 1 && deployment.metadata.annotations["repave/original-replicas"] == nil)
            #expect(PersistentVolume(try await client.get(.persistentVolumes, named: world.oldVolume)).reclaimPolicy == "Delete")
        }
    }

    @Test("the old volume deleted by someone else during the run: the run finishes and says the old volume is gone, not 'retained'")
    func oldVolumeDeletedBySomeoneElse() async throws {
        try await withDevpod(claimAnnotations: ["lab.repave/provision-delay": "500ms"]) { world in
            let (run, release) = try await startHeld(world, at: "in-wait:await-bound")
            let volume = PersistentVolume(try await client.get(.persistentVolumes, named: world.oldVolume))
            _ = try await client.delete(.persistentVolumes, named: world.oldVolume, uid: volume.uid)
            try await client.wait(for: .persistentVolumes, named: world.oldVolume, timeout: .seconds(30), describedAs: "old PV gone") { $0 == nil }
            release()
            let result = try await run.value
            #expect(result.status == 0, "\(result.standardError)")
            #expect(result.standardOutput.contains("old volume: \(world.oldVolume) GONE: deleted by someone else during the run (repave did not delete it)"), "\(result.standardOutput)")
            // Said once, in the summary, not as a log line in the middle of the run's output.
            #expect(result.standardOutput.contains("note:       WARNING: the old volume \(world.oldVolume)"), "\(result.standardOutput)")
            #expect(!result.standardError.contains("WARNING: the old volume"), "\(result.standardError)")
            let records = try Journal.read(directory: try world.runDirectory()).records
            #expect(!records.contains { $0.kind == "intent" && String(decoding: $0.data, as: UTF8.self).contains("persistentvolumes") && String(decoding: $0.data, as: UTF8.self).contains("DELETE") })
        }
    }

    @Test("the new Longhorn volume stays degraded: verify fails with the volume's state, the run stops resumable, the old volume is still retained")
    func degradedVolume() async throws {
        try await withDevpod(claimAnnotations: ["lab.repave/robustness": "degraded"]) { world in
            let plan = try String(contentsOfFile: world.planFile, encoding: .utf8).replacingOccurrences(of: "verify: 30s", with: "verify: 3s")
            try plan.write(toFile: world.planFile, atomically: true, encoding: .utf8)
            // Held where verify starts waiting until the lab's Longhorn reports the new volume
            // attached and degraded: a busy lab agent can take longer than verify's 3 s.
            let (run, release) = try await startHeld(world, at: "in-wait:verify")
            let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: world.original.name, in: world.namespace))
            let newVolume = try #require(claim.volumeName)
            try await client.wait(for: .longhornVolumes, named: newVolume, in: "longhorn-system", timeout: .seconds(60), describedAs: "the new volume degraded") {
                $0.map { LonghornVolume($0).robustness == "degraded" } ?? false
            }
            release()
            let result = try await run.value
            #expect(result.status == 3, "\(result.standardError)")
            #expect(result.standardError.contains("the Longhorn volume is attached and degraded, not healthy"), "\(result.standardError)")
            #expect(result.standardError.contains("repave resume"), "\(result.standardError)")
            let old = PersistentVolume(try await client.get(.persistentVolumes, named: world.oldVolume))
            #expect(old.reclaimPolicy == "Retain")
            #expect(try await client.getIfPresent(.longhornVolumes, named: world.oldVolume, in: "longhorn-system") != nil)
            let records = try Journal.read(directory: try world.runDirectory()).records
            #expect(!records.contains { $0.kind == "step_done" && $0.step == "verify" })
            #expect(records.last?.kind == "stopped")
        }
    }

    @Test("the new volume is degraded when verify starts and heals 2 s later: verify watches it (one watch from its read, no list, no polling) and the run finishes")
    func volumeHealsDuringVerify() async throws {
        try await withDevpod(claimAnnotations: ["lab.repave/robustness": "degraded"]) { world in
            let (run, release) = try await startHeld(world, at: "in-wait:verify")
            let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: world.original.name, in: world.namespace))
            let newVolume = try #require(claim.volumeName)
            try await client.wait(for: .longhornVolumes, named: newVolume, in: "longhorn-system", timeout: .seconds(60), describedAs: "the new volume degraded") {
                $0.map { LonghornVolume($0).robustness == "degraded" } ?? false
            }
            let mark = try lab.auditMark()
            release()
            try await Task.sleep(for: .seconds(2))
            // Longhorn finishes rebuilding (the lab takes the volume's robustness from its claim).
            try await client.patch(.persistentVolumeClaims, named: world.original.name, in: world.namespace,
                                   .merge(["metadata": ["annotations": ["lab.repave/robustness": .null]]]))
            let result = try await run.value
            #expect(result.status == 0, "\(result.standardError)")
            // A watch is audited when it ends; give the server a moment to write it.
            var reads: [AuditEvent] = []
            _ = try await poll(attempts: 50, every: .milliseconds(100)) {
                reads = try lab.auditEvents(since: mark).filter {
                    $0.userAgent?.hasPrefix("repave/") == true && $0.objectRef?.resource == "volumes" && $0.requestURI.contains(newVolume)
                }
                return reads.contains { $0.verb == "watch" }
            }
            let verbs = reads.map(\.verb)
            // Read once (degraded), watched from that read until healthy, read once more: no
            // poll, and no list.
            #expect(verbs.filter { $0 == "watch" }.count == 1, "\(verbs)")
            #expect(verbs.filter { $0 == "list" }.count == 0, "\(verbs)")
            #expect(verbs.filter { $0 == "get" }.count <= 3, "\(verbs)")
        }
    }
}
