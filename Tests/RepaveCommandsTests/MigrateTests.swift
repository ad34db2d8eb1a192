import Foundation
import KubeAPI
import RepaveTestSupport
import Testing

/// `strategy: migrate`'s refusals on the simulated lab: the preflight refuses, with exit 2, and
/// nothing in the cluster has changed. (The data itself moves on the real node:
/// RealNodeMigrateTests.)
@Suite("migrate: refusals with nothing changed")
struct MigrateTests: DevpodTesting {
    let lab: Lab
    let client: KubeClient

    init() throws {
        lab = try Lab.current()
        client = try lab.adminClient(userAgent: "repave-test/migrate")
    }

    func migratePlan(_ world: World, claim: String = "coder-jeda-codespace-home", workload: String = "coder-jeda-codespace",
                     provisioner: String = "driver.longhorn.io") throws -> String {
        let file = world.scratch.file("migrate.yaml")
        try migratePlanText(namespace: world.namespace, newClass: world.newClass, claim: claim, workload: workload, provisioner: provisioner)
            .write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    /// The claim, its volume, the workload and the classes as they are, for a before/after
    /// comparison; and no staging claim or copy pod.
    func state(_ world: World, claim: String, workload: String) async throws -> [String] {
        let object = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: claim, in: world.namespace))
        let volume = PersistentVolume(try await client.get(.persistentVolumes, named: object.volumeName ?? ""))
        let deployment = Deployment(try await client.get(.deployments, named: workload, in: world.namespace))
        let claims = try await client.list(.persistentVolumeClaims, in: world.namespace).items.map { PersistentVolumeClaim($0).name }.sorted()
        let pods = try await client.list(.pods, in: world.namespace, labelSelector: "repave/copy").items.count
        let newClass = try await client.getIfPresent(.storageClasses, named: world.newClass)
        return ["claim \(object.uid) \(object.phase) on \(object.volumeName ?? "-")",
                "volume \(volume.reclaimPolicy), annotations \(volume.metadata.annotations.keys.filter { $0.hasPrefix("repave/") }.sorted())",
                "workload \(deployment.replicas) replicas, annotations \(deployment.metadata.annotations.keys.filter { $0.hasPrefix("repave/") }.sorted())",
                "claims \(claims)", "copy pods \(pods)", "new class \(newClass == nil ? "absent" : "created")"]
    }

    @Test("a target class of another provisioner is refused by the preflight (exit 2, preflight.other-provisioner), nothing changed")
    func otherProvisioner() async throws {
        try await withDevpod { world in
            let before = try await state(world, claim: "coder-jeda-codespace-home", workload: "coder-jeda-codespace")
            let result = try await repave(world, ["run", try migratePlan(world, provisioner: "rbd.csi.ceph.com"), "--yes", "--state-dir", world.scratch.file("runs")])
            #expect(result.status == 2, "\(result.standardError)")
            #expect(result.standardError.contains("error[preflight.other-provisioner]") && result.standardError.contains("rbd.csi.ceph.com"), "\(result.standardError)")
            #expect(try await state(world, claim: "coder-jeda-codespace-home", workload: "coder-jeda-codespace") == before)
            #expect(before.last == "new class absent")
        }
    }

    @Test("a target class that binds on first consumer is refused by the preflight (exit 2, preflight.wait-for-first-consumer), nothing changed")
    func waitForFirstConsumer() async throws {
        try await withDevpod { world in
            try await client.create(.storageClasses, LabFixtures.storageClass(world.newClass, replicas: 3, bindingMode: "WaitForFirstConsumer"))
            let before = try await state(world, claim: "coder-jeda-codespace-home", workload: "coder-jeda-codespace")
            let result = try await repave(world, ["run", try migratePlan(world), "--yes", "--state-dir", world.scratch.file("runs")])
            #expect(result.status == 2, "\(result.standardError)")
            #expect(result.standardError.contains("error[preflight.wait-for-first-consumer]") && result.standardError.contains(world.newClass), "\(result.standardError)")
            #expect(try await state(world, claim: "coder-jeda-codespace-home", workload: "coder-jeda-codespace") == before)
        }
    }

    @Test("a claim of volumeMode Block is refused by the preflight (exit 2, preflight.block-volume), nothing changed")
    func blockVolume() async throws {
        try await withDevpod { world in
            let oldClass = try #require(world.original.storageClassName)
            let pvName = "pv-block-\(world.id)"
            // A Block volume bound to the claim by name (the lab provisions Filesystem volumes).
            try await client.create(.persistentVolumes, [
                "apiVersion": "v1", "kind": "PersistentVolume", "metadata": ["name": .string(pvName)],
                "spec": ["capacity": ["storage": "1Gi"], "accessModes": ["ReadWriteOnce"], "volumeMode": "Block",
                         "persistentVolumeReclaimPolicy": "Retain", "storageClassName": .string(oldClass),
                         "csi": ["driver": "driver.longhorn.io", "volumeHandle": .string(pvName)],
                         "claimRef": ["namespace": .string(world.namespace), "name": "block"]],
            ])
            defer { Task { [client] in
                if let pv = try? await client.getIfPresent(.persistentVolumes, named: pvName) {
                    _ = try? await client.delete(.persistentVolumes, named: pvName, uid: PersistentVolume(pv).uid)
                }
            } }
            var claim = LabFixtures.claim("block", storageClass: oldClass)
            claim["spec"]?["volumeMode"] = "Block"
            claim["spec"]?["volumeName"] = .string(pvName)
            try await client.create(.persistentVolumeClaims, in: world.namespace, claim)
            try await client.wait(for: .persistentVolumeClaims, named: "block", in: world.namespace, timeout: .seconds(60), describedAs: "block claim Bound") {
                $0.map { PersistentVolumeClaim($0).isBound } ?? false
            }
            try await client.create(.deployments, in: world.namespace, LabFixtures.deployment("block-user", claim: "block", replicas: 0))
            let before = try await state(world, claim: "block", workload: "block-user")
            let result = try await repave(world, ["run", try migratePlan(world, claim: "block", workload: "block-user"), "--yes", "--state-dir", world.scratch.file("runs")])
            #expect(result.status == 2, "\(result.standardError)")
            #expect(result.standardError.contains("error[preflight.block-volume]"), "\(result.standardError)")
            #expect(try await state(world, claim: "block", workload: "block-user") == before)
        }
    }
}
