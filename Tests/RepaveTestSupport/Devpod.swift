import Foundation
import KubeAPI
import Testing

public struct DevpodWorld: Sendable {
    public let namespace: String, original: PersistentVolumeClaim, oldVolume: String, planFile: String
    public let scratch: ScratchDirectory, id: String, newClass: String

    /// The run directory of the first (and usually only) run under `scratch/runs`.
    public func runDirectory() throws -> String {
        let runs = try FileManager.default.contentsOfDirectory(atPath: scratch.file("runs")).sorted()
        guard let first = runs.first else { throw DevpodError(message: "no run directory under \(scratch.file("runs"))") }
        return scratch.file("runs/" + first)
    }
}

struct DevpodError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// The devpod's world on the lab, for the end-to-end suites: a 1-replica Longhorn class, the
/// 60Gi home claim on it, the workspace Deployment mounting it, the plan that recreates it.
public protocol DevpodTesting {
    var lab: Lab { get }
    var client: KubeClient { get }
}

extension DevpodTesting {
    public func suffix() -> String { String(UInt32.random(in: 0...UInt32.max), radix: 36) }

    public func plan(namespace: String, newClass: String, extra: String = "") -> String {
        """
        apiVersion: repave/v1
        kind: RecreatePlan
        metadata: {name: devpod-home}
        target:
          namespace: \(namespace)
          claim: coder-jeda-codespace-home
          workloads: [{kind: Deployment, name: coder-jeda-codespace}]
        storageClass:
          name: \(newClass)
          provisioner: driver.longhorn.io
          parameters: {numberOfReplicas: "3", staleReplicaTimeout: "30", fsType: ext4}
        timeouts: {scaleDown: 60s, claimDeletion: 60s, bind: 60s, rollout: 60s, verify: 30s}
        \(extra)
        """
    }

    /// The devpod's world: a 1-replica Longhorn class, the 60Gi home claim on it, the workspace
    /// Deployment mounting it, available.
    public func devpodWorld(_ namespace: String, oldClass: String, claimAnnotations: [String: String] = [:]) async throws -> PersistentVolumeClaim {
        try await client.create(.storageClasses, LabFixtures.storageClass(oldClass, replicas: 1))
        let claim = PersistentVolumeClaim(try await client.create(.persistentVolumeClaims, in: namespace,
            LabFixtures.claim("coder-jeda-codespace-home", storageClass: oldClass, size: "60Gi", annotations: claimAnnotations)))
        // Like a real kubelet, the lab's takes a moment to stop the pod: scale-down must wait for it.
        try await client.create(.deployments, in: namespace, LabFixtures.deployment("coder-jeda-codespace", claim: "coder-jeda-codespace-home",
                                                                                     podAnnotations: ["lab.repave/terminate-delay": "1s"]))
        try await client.wait(for: .deployments, named: "coder-jeda-codespace", in: namespace, timeout: .seconds(30), describedAs: "workspace available") {
            $0.map { Deployment($0).availableReplicas == 1 } ?? false
        }
        return claim
    }

    public func cleanUp(classes: [String], volume: String?) async {
        for name in classes {
            if let object = try? await client.getIfPresent(.storageClasses, named: name) {
                _ = try? await client.delete(.storageClasses, named: name, uid: StorageClass(object).uid)
            }
        }
        if let volume {
            if let pv = try? await client.getIfPresent(.persistentVolumes, named: volume) {
                _ = try? await client.delete(.persistentVolumes, named: volume, uid: PersistentVolume(pv).uid)
            }
            if let lh = try? await client.getIfPresent(.longhornVolumes, named: volume, in: "longhorn-system") {
                _ = try? await client.delete(.longhornVolumes, named: volume, in: "longhorn-system", uid: LonghornVolume(lh).uid)
            }
        }
    }

    public typealias World = DevpodWorld

    /// The devpod's world in a fresh namespace with the plan written next to a scratch directory;
    /// afterwards (pass or fail) the classes and the old volume go too.
    public func withDevpod(planExtra: String = "", claimAnnotations: [String: String] = [:], _ body: (World) async throws -> Void) async throws {
        let scratch = try ScratchDirectory()
        let id = suffix()
        let oldClass = "longhorn-1r-\(id)", newClass = "longhorn-3r-\(id)"
        var oldVolume: String?
        do {
            try await withTestNamespace(client, prefix: "devpod") { namespace in
                let original = try await devpodWorld(namespace, oldClass: oldClass, claimAnnotations: claimAnnotations)
                let volume = try #require(PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: original.name, in: namespace)).volumeName)
                oldVolume = volume
                let planFile = scratch.file("plan.yaml")
                try plan(namespace: namespace, newClass: newClass, extra: planExtra).write(toFile: planFile, atomically: true, encoding: .utf8)
                try await body(World(namespace: namespace, original: original, oldVolume: volume, planFile: planFile, scratch: scratch, id: id, newClass: newClass))
            }
        } catch {
            await cleanUp(classes: [oldClass, newClass], volume: oldVolume)
            throw error
        }
        await cleanUp(classes: [oldClass, newClass], volume: oldVolume)
    }
}
