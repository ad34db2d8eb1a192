import Foundation
import KubeAPI

// Moving a claim's name onto a volume that already holds the data: migrate gives it the staging
// volume; a rollback gives it back the old one. Both pre-bind the volume, then create the claim
// with `volumeName`, then check that the volume's claimRef names the new claim's uid.

/// A volume the claim's name moves onto: the facts that name it and hold its uid.
struct RebindVolume: Sendable {
    let name: Fact<String>
    let uid: Fact<String>
}

enum Rebind {
    /// The merge patch that pre-binds a volume to `namespace/claim`: `claimRef` names the claim,
    /// and its `uid` and `resourceVersion` are set to null explicitly (a merge patch that leaves
    /// them out keeps the old claim's uid: the volume stays Released and the new claim Pending).
    /// Guarded by the volume's resourceVersion.
    static func prebindPatch(resourceVersion: String, namespace: String, claim: String) -> JSON {
        ["metadata": ["resourceVersion": .string(resourceVersion)],
         "spec": ["claimRef": ["apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": .string(namespace), "name": .string(claim),
                               "uid": .null, "resourceVersion": .null]]]
    }

    /// The volume is pre-bound to `namespace/claim`, or bound to that claim already.
    static func isPrebound(_ volume: PersistentVolume, namespace: String, claim: String, claimUID: String?) -> Bool {
        guard let ref = volume.claimRef, ref.namespace == namespace, ref.name == claim else { return false }
        return ref.uid.isEmpty || ref.uid == claimUID
    }

    /// The saved claim as a new object bound to `volume` (``CreateClaim/recreated(from:storageClass:run:)``
    /// plus `spec.volumeName`).
    static func claim(from saved: JSON, storageClass: String, volume: String, run: String) -> JSON {
        var object = CreateClaim.recreated(from: saved, storageClass: storageClass, run: run)
        object["spec"]?["volumeName"] = .string(volume)
        return object
    }
}

/// Pre-binds a retained volume to the claim's name (`claimRef` with uid and resourceVersion
/// nulled), once the old claim of that name is gone.
struct PrebindVolume: Step {
    let claimRun: ClaimRun
    let volume: RebindVolume
    var id: String { "prebind-volume" }
    var mutates: Bool { true }
    var summary: String { "pre-bind the copied volume to \(claimRun.namespace)/\(claimRun.claim) (claimRef uid and resourceVersion nulled, resourceVersion-guarded)" }
    var estimate: Duration { .seconds(10) }
    var permissions: [KubeClient.AccessQuestion] { [.init("get", .persistentVolumes), .init("patch", .persistentVolumes)] }

    /// The claim still exists before the run: the patch is not rehearsed (it would point the
    /// volume at a live claim's name).
    func rehearse(_ context: StepContext) async throws -> [CheckResult] { [] }

    func observe(_ context: StepContext) async throws -> Bool {
        let current = try await existing(context)
        return Rebind.isPrebound(current, namespace: claimRun.namespace, claim: claimRun.claim, claimUID: context.facts[RecreateFact.newClaimUID])
    }

    func apply(_ context: StepContext) async throws {
        let current = try await existing(context)
        try await context.mutate("PATCH", ResourceType.persistentVolumes.path(name: current.name), precondition: current.metadata.resourceVersion,
                                 changing: [.persistentVolumes]) {
            try await context.client.patch(.persistentVolumes, named: current.name,
                                           .merge(Rebind.prebindPatch(resourceVersion: current.metadata.resourceVersion, namespace: claimRun.namespace, claim: claimRun.claim)),
                                           dryRun: context.dryRun)
        }
    }

    /// The volume the run recorded, still the same object.
    private func existing(_ context: StepContext) async throws -> PersistentVolume {
        guard let name = context.facts[volume.name], let uid = context.facts[volume.uid] else {
            throw RepaveError(.rebindNoVolume, "no recorded volume to give the claim's name to", hint: "the journal lacks the copied volume's facts: inspect the run")
        }
        guard let object = try await context.read(.persistentVolumes, named: name), PersistentVolume(object).uid == uid else {
            throw RepaveError(.rebindNoVolume, "persistentvolume \(name) (uid \(uid)) is gone or replaced",
                              hint: "the copy lived on it: look for its Longhorn volume \(name) before anything else")
        }
        return PersistentVolume(object)
    }
}
