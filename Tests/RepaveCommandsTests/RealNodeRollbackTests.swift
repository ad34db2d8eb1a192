import Foundation
import KubeAPI
import RepaveTestSupport
import Testing

/// `repave rollback` after a migrate on the real node: the data the claim had before the swap
/// comes back, byte for byte, on the old class; what was written after the swap stays on the
/// new volume, which finalize then deletes (never the old one, now Bound).
extension RealNodeTests {
    @Test("migrate, a file written after the swap, rollback: the claim is Bound to the old PV on the old class, the workload up, the tree's manifest equal to the pre-migrate one; the file written since is on the new volume only; finalize deletes exactly the new PV and Longhorn volume, the old PV stays Bound")
    func migrateRollback() async throws {
        try await withRealWorkspace(on: lab) { client, world in
            let (_, before) = try await writeTree(world, megabytes: 5)

            let migrated = try await repave(["run", try migratePlan(world), "--yes"], world)
            #expect(migrated.status == 0, "\(migrated.standardOutput)\n\(migrated.standardError)")
            let swapped = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "coder-jeda-codespace-home", in: world.namespace))
            let newVolume = try #require(swapped.volumeName)
            #expect(newVolume != world.oldVolume && swapped.storageClassName == world.newClass)
            // Written on the new volume, after the swap.
            let onNew = try #require(try await runningPods(world.namespace).first)
            let since = try await kubectl(["-n", world.namespace, "exec", onNew.name, "--", "sh", "-c", "echo written-after-the-swap > /home/coder/after-swap && sync"])
            #expect(since.status == 0, "\(since.standardError)")

            let run = try runDirectory(world)
            let rolled = try await runProcess(try repaveBinary(), ["rollback", run, "--yes", "--kubeconfig", lab.adminKubeconfig])
            #expect(rolled.status == 0, "\(rolled.standardOutput)\n\(rolled.standardError)")
            #expect(rolled.standardOutput.contains("it stays on the new volume \(newVolume)"), "\(rolled.standardOutput)")

            let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "coder-jeda-codespace-home", in: world.namespace))
            #expect(claim.isBound && claim.volumeName == world.oldVolume && claim.storageClassName == world.original.storageClassName && claim.uid != swapped.uid,
                    "claim \(claim.phase) on \(claim.volumeName ?? "-"), class \(claim.storageClassName ?? "-")")
            let old = PersistentVolume(try await client.get(.persistentVolumes, named: world.oldVolume))
            #expect(old.phase == "Bound" && old.claimRef?.uid == claim.uid)
            let left = try await leftovers(world)
            #expect(left.claims == ["coder-jeda-codespace-home"] && left.pods.isEmpty, "\(left)")

            // The workload runs on the old volume again and sees the tree exactly as before the migrate.
            let back = try #require(try await runningPods(world.namespace).first)
            #expect(back.uid != onNew.uid)
            let after = try await workspaceManifest(back.name, world)
            #expect(after.differences(from: before) == [])
            let missing = try await kubectl(["-n", world.namespace, "exec", back.name, "--", "cat", "/home/coder/after-swap"])
            #expect(missing.status != 0, "the file written after the swap is not on the old volume: \(missing.standardOutput)")
            let volumes = try lab.value("VOLUME_DIR")
            #expect((try? String(contentsOfFile: "\(volumes)/\(newVolume)/after-swap", encoding: .utf8)) == "written-after-the-swap\n", "it is on the new volume")

            // finalize deletes the new volume, exactly.
            let finalized = try await runProcess(try repaveBinary(), ["finalize", run, "--yes", "--kubeconfig", lab.adminKubeconfig])
            #expect(finalized.status == 0 && finalized.standardOutput.contains("finalized: \(newVolume) deleted"), "\(finalized.standardOutput)\n\(finalized.standardError)")
            let gone = try await poll(attempts: 120, every: .milliseconds(250)) {
                let pv = try await client.getIfPresent(.persistentVolumes, named: newVolume)
                let longhorn = try await client.getIfPresent(.longhornVolumes, named: newVolume, in: "longhorn-system")
                return pv == nil && longhorn == nil
            }
            #expect(gone, "the new volume is left")
            let kept = PersistentVolume(try await client.get(.persistentVolumes, named: world.oldVolume))
            #expect(kept.uid == old.uid && kept.phase == "Bound" && kept.claimRef?.uid == claim.uid)
            #expect(try await client.getIfPresent(.longhornVolumes, named: world.oldVolume, in: "longhorn-system") != nil)
            #expect(FileManager.default.fileExists(atPath: "\(volumes)/\(world.oldVolume)/large"), "the old volume's data is still there")
        }
    }
}
