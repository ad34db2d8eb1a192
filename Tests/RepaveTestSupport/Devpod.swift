import Foundation
import Journal
import KubeAPI
import RepaveCore
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

/// An intent record's data, as the tests read it.
struct JournaledIntent: Decodable {
    let verb: String
    let path: String
    let precondition: String?
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

    /// A migrate plan (`strategy: migrate`) of `claim` and its Deployment onto `newClass`, its
    /// copy pods in `lab/mover:1`.
    public func migratePlanText(namespace: String, newClass: String, claim: String = "coder-jeda-codespace-home", workload: String = "coder-jeda-codespace",
                                provisioner: String = "driver.longhorn.io", copy: String = "{image: lab/mover:1}",
                                timeouts: String = "scaleDown: 60s, claimDeletion: 60s, bind: 60s, rollout: 60s, verify: 30s") -> String {
        """
        apiVersion: repave/v1
        kind: Plan
        strategy: migrate
        metadata: {name: devpod-home-migrate}
        target:
          namespace: \(namespace)
          claim: \(claim)
          workloads: [{kind: Deployment, name: \(workload)}]
        storageClass:
          name: \(newClass)
          provisioner: \(provisioner)
          parameters: {numberOfReplicas: "3", staleReplicaTimeout: "30", fsType: ext4}
        copy: \(copy)
        timeouts: {\(timeouts)}
        """
    }

    /// A replicas plan (`strategy: replicas`) for the world's claim, written next to its
    /// recreate plan; returns its path.
    public func replicasPlan(_ world: DevpodWorld, replicas: Int = 3, extra: String = "") throws -> String {
        let file = world.scratch.file("replicas.yaml")
        try """
            apiVersion: repave/v1
            kind: Plan
            strategy: replicas
            metadata: {name: devpod-home-replicas}
            target: {namespace: \(world.namespace), claim: \(world.original.name)}
            replicas: \(replicas)
            timeouts: {rebuild: 60s}
            \(extra)
            """.write(toFile: file, atomically: true, encoding: .utf8)
        return file
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
        try await client.waitAvailable("coder-jeda-codespace", in: namespace, describedAs: "workspace available")
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

    /// What differs from the state an uninterrupted run leaves, in the cluster, the journal and
    /// the audit log (what the server saw since `mark`); empty when the run converged.
    public func divergence(_ world: World, run: String, since mark: UInt64) async throws -> [String] {
        var problems: [String] = []
        func check(_ holds: Bool, _ problem: @autoclosure () -> String) { if !holds { problems.append(problem()) } }
        let (records, torn) = try Journal.read(directory: run)
        check(torn == 0 && records.last?.kind == "finished", "journal ends with \(records.last?.kind ?? "-"), \(torn) torn bytes")
        let facts = records.filter { $0.kind == "fact" }.compactMap { try? $0.decode([String: String].self) }
        let newClaims = Set(facts.filter { $0["key"] == RecreateFact.newClaimUID.key }.compactMap { $0["value"] })
        if let claim = try await client.getIfPresent(.persistentVolumeClaims, named: world.original.name, in: world.namespace).map(PersistentVolumeClaim.init) {
            check(claim.uid != world.original.uid && claim.storageClassName == world.newClass && claim.isBound, "claim \(claim.uid) \(claim.storageClassName ?? "-") \(claim.phase)")
            check(claim.metadata.annotations["repave/run-id"] == records.first?.run, "the claim is not this run's")
            check(newClaims == [claim.uid], "new claim uids in the journal \(newClaims)")
        } else {
            problems.append("no claim")
        }
        let deployment = Deployment(try await client.get(.deployments, named: "coder-jeda-codespace", in: world.namespace))
        check(deployment.replicas == 1 && deployment.metadata.annotations["repave/original-replicas"] == nil, "deployment at \(deployment.replicas) replicas")
        // The old volume's data stays: its PV (Retain) and its Longhorn Volume are still there.
        let old = try await client.getIfPresent(.persistentVolumes, named: world.oldVolume).map(PersistentVolume.init)
        check(old?.reclaimPolicy == "Retain", "old PV \(old.map { $0.reclaimPolicy } ?? "gone")")
        // Marked for `repave audit` and a person: which run kept it, for which claim.
        let marks = old?.metadata.annotations ?? [:]
        check(marks["repave/run-id"] == records.first?.run && marks["repave/claim"] == "\(world.namespace)/\(world.original.name)",
              "old PV annotations \(marks.filter { $0.key.hasPrefix("repave/") })")
        check(try await client.getIfPresent(.longhornVolumes, named: world.oldVolume, in: "longhorn-system") != nil, "old Longhorn volume gone")
        check(try await client.getIfPresent(.leases, named: "repave-coder-jeda-codespace-home", in: world.namespace) == nil, "lease left")

        // What reached the server: the claim created once and deleted once, the class created
        // once, nothing else deleted but the run's own lease; every DELETE intent guarded by the
        // original claim's uid.
        let writes = try lab.repaveWrites(since: mark, namespace: world.namespace, clusterScoped: [world.newClass, world.oldVolume])
        let claimWrites = writes.filter { $0.objectRef?.resource == "persistentvolumeclaims" }
        let creates = claimWrites.filter { $0.verb == "create" }.map(\.code), deletes = claimWrites.filter { $0.verb == "delete" }.map(\.code)
        check(creates == [201], "claim creates reaching the server: \(creates)")
        check(deletes.count == 1 && deletes.allSatisfy { $0 == 200 || $0 == 202 }, "claim deletes reaching the server: \(deletes)")
        let classCreates = writes.filter { $0.objectRef?.resource == "storageclasses" && $0.verb == "create" }.map(\.code)
        check(classCreates == [201], "class creates reaching the server: \(classCreates)")
        let otherDeletes = writes.filter { $0.verb == "delete" && !["persistentvolumeclaims", "leases"].contains($0.objectRef?.resource ?? "") }
        check(otherDeletes.isEmpty, "also deleted \(otherDeletes.map { "\($0.objectRef?.resource ?? "")/\($0.objectRef?.name ?? "")" })")
        let deleteIntents = records.filter { $0.kind == "intent" }.compactMap { try? $0.decode(JournaledIntent.self) }.filter { $0.verb == "DELETE" }
        check(!deleteIntents.isEmpty && deleteIntents.allSatisfy { $0.precondition == world.original.uid }, "delete intents \(deleteIntents.map { "\($0.path) uid=\($0.precondition ?? "none")" })")
        return problems
    }

    /// Runs `body` for each element with at most `width` at once.
    public func concurrently<Element: Sendable>(_ elements: [Element], width: Int, _ body: @escaping @Sendable (Int, Element) async -> Void) async {
        await withTaskGroup(of: Void.self) { group in
            for (index, element) in elements.enumerated() {
                if index >= width { await group.next() }
                group.addTask { await body(index, element) }
            }
        }
    }
}
