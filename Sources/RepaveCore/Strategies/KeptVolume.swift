import Foundation
import KubeAPI

/// The volume a finished run kept and its claim no longer uses, as the run's journal names it
/// (``ClaimFact/volume``, ``ClaimFact/volumeUID``, ``ClaimFact/longhornUID``): the old volume
/// after a recreate that kept it, or after a migrate; after a rollback it will be the new one.
/// `repave finalize` deletes exactly this volume and its Longhorn volume, uid-guarded.
public struct KeptVolume: Sendable, Equatable {
    public var name: String
    public var uid: String
    /// The Longhorn volume behind it (the PV's `spec.csi.volumeHandle`, most often the PV's
    /// name), and its uid as the run saved it (nil: none was saved).
    public var longhornName: String
    public var longhornUID: String?
    public var longhornNamespace: String
    /// The run that kept it: the PV carries its id (`repave/run-id`).
    public var run: String

    public init(name: String, uid: String, longhornName: String? = nil, longhornUID: String?, longhornNamespace: String, run: String) {
        self.name = name
        self.uid = uid
        self.longhornName = longhornName ?? name
        self.longhornUID = longhornUID
        self.longhornNamespace = longhornNamespace
        self.run = run
    }

    /// The claim's old volume, as every claim strategy journals it; nil when the run never got
    /// as far as recording it.
    public static func old(_ facts: Facts, run: String, longhornNamespace: String) -> KeptVolume? {
        guard let name = facts[ClaimFact.volume], let uid = facts[ClaimFact.volumeUID] else { return nil }
        return KeptVolume(name: name, uid: uid, longhornName: facts[ClaimFact.longhornName], longhornUID: facts[ClaimFact.longhornUID],
                          longhornNamespace: longhornNamespace, run: run)
    }

    /// `finalize`'s steps, in order. The reclaim policy first: the volume is then as its class
    /// would have left it, so a cluster that reclaims Released volumes (the CSI provisioner, the
    /// lab's agent) may finish the deletion itself, and each later step counts an object already
    /// gone as done. The Longhorn volume before the PV: the PV names the volume, carries the run's
    /// annotation and the uid the journal checks, so as long as the PV is there a re-run (and
    /// `audit`) still finds what is left; a crash between the two leaves a PV whose Longhorn
    /// volume is gone, which the re-run deletes. Deleting the PV first would leave a Longhorn
    /// volume nothing in Kubernetes points at.
    public var steps: [any Step] {
        [FinalizeReclaimPolicy(kept: self), FinalizeDeleteLonghornVolume(kept: self), FinalizeDeleteVolume(kept: self)]
    }

    /// Refuses, before anything changes, a PV that is not the kept one or that a live claim uses:
    /// gone, replaced (another uid), not annotated with this run's id, bound (its `claimRef.uid`
    /// is a live claim's uid, or its phase is Bound), or not Released (pre-bound, Available).
    public func requireDeletable(_ found: PersistentVolume?, client: KubeClient) async throws {
        guard let volume = found else {
            throw RepaveError(.finalizeVolumeGone, "persistentvolume \(name) (uid \(uid)), the volume the run kept, is gone: nothing to finalize",
                              hint: "someone deleted it; check its Longhorn volume \(longhornNamespace)/\(longhornName) by hand")
        }
        guard volume.uid == uid else {
            throw RepaveError(.finalizeVolumeReplaced, "persistentvolume \(name) is another object now (uid \(uid) kept by the run, \(volume.uid) now)",
                              hint: "repave does not delete a volume the run did not keep; inspect it")
        }
        let annotated = volume.metadata.annotations[RetainedVolume.runAnnotation]
        guard annotated == run else {
            throw RepaveError(.finalizeVolumeForeign, "persistentvolume \(name) is not annotated \(RetainedVolume.runAnnotation)=\(run)" + (annotated.map { " (it says \($0))" } ?? ""),
                              hint: "repave deletes only a volume its run marked as kept; inspect it")
        }
        if let user = try await liveClaim(of: volume, client: client) ?? (volume.phase == "Bound" ? "a claim (phase Bound)" : nil) {
            throw RepaveError(.finalizeVolumeBound, "persistentvolume \(name) is bound to \(user): repave never deletes a volume a claim uses",
                              hint: "if that claim should not use it, move the claim off it first; nothing was changed")
        }
        // Only a Released volume is unused: one Available with a claimRef but no uid is
        // pre-bound, waiting for a claim of that name (a rollback or a person moving it back).
        guard volume.phase == "Released" else {
            let waiting = volume.claimRef.map { " and pre-bound to \($0.namespace)/\($0.name)" } ?? ""
            throw RepaveError(.finalizeVolumeBound, "persistentvolume \(name) is \(volume.phase.isEmpty ? "of no phase" : volume.phase)\(waiting), not Released: repave deletes only a volume no claim uses or is about to use",
                              hint: "find who pre-bound it (a rollback not finished?); once it is Released, run finalize again; nothing was changed")
        }
    }

    /// The live claim the PV's `claimRef` names with its uid, if any.
    func liveClaim(of volume: PersistentVolume, client: KubeClient) async throws -> String? {
        guard let ref = volume.claimRef, !ref.uid.isEmpty,
              let claim = try await client.getIfPresent(.persistentVolumeClaims, named: ref.name, in: ref.namespace).map(PersistentVolumeClaim.init),
              claim.uid == ref.uid
        else { return nil }
        return "claim \(ref.namespace)/\(ref.name) (uid \(ref.uid))"
    }

    /// The PV as the cluster has it now, when it is still the kept one (nil: gone or replaced).
    func current(_ context: StepContext) async throws -> PersistentVolume? {
        let volume = try await context.read(.persistentVolumes, named: name).map(PersistentVolume.init)
        return volume?.uid == uid ? volume : nil
    }

    /// `try await request()`, where an object deleted meanwhile (by the cluster's own reclaim,
    /// after the policy went back to Delete) is the goal reached, not a failure.
    static func deleting(_ request: () async throws -> Void) async throws {
        do {
            try await request()
        } catch let error as KubeAPIError where error.reason == .notFound {
            return
        }
    }
}

/// A strategy whose finished runs may keep a volume for `repave finalize`.
public protocol KeepsVolume: Strategy {
    /// The volume a finished run kept, from its journal's facts; nil when it kept none (say with
    /// `oldVolume: delete`).
    func keptVolume(_ facts: Facts, run: String) -> KeptVolume?
}

/// The facts only `finalize` journals.
public enum FinalizeFact {
    /// The reclaim policy finalize gives the kept volume back: its StorageClass's.
    public static let reclaimPolicy = Fact<String>("finalize.reclaimPolicy")
}

/// The kept PV's reclaim policy back to its class's (resourceVersion-guarded).
struct FinalizeReclaimPolicy: Step {
    let kept: KeptVolume
    var id: String { "finalize-reclaim-policy" }
    var mutates: Bool { true }
    var summary: String { "give persistentvolume \(kept.name) its StorageClass's reclaim policy back" }
    var estimate: Duration { .seconds(10) }
    var permissions: [KubeClient.AccessQuestion] { [.init("get", .persistentVolumes), .init("patch", .persistentVolumes), .init("get", .storageClasses)] }

    func observe(_ context: StepContext) async throws -> Bool {
        guard let volume = try await kept.current(context) else { return true }
        return volume.reclaimPolicy == context.facts[FinalizeFact.reclaimPolicy]
    }

    func apply(_ context: StepContext) async throws {
        guard let policy = context.facts[FinalizeFact.reclaimPolicy] else { throw RepaveError(.internal, "no reclaim policy journaled for finalize") }
        // Observe's read, fresh: the patch is guarded by its resourceVersion, so a claim binding
        // the volume since makes it fail with a conflict, and the step looks again.
        guard let volume = try await context.recent(.persistentVolumes, named: kept.name).map(PersistentVolume.init), volume.uid == kept.uid else { return }
        try await kept.requireDeletable(volume, client: context.client)
        try await context.mutate("PATCH", ResourceType.persistentVolumes.path(name: kept.name), precondition: volume.resourceVersion) {
            try await context.client.patch(.persistentVolumes, named: kept.name, .merge([
                "metadata": ["resourceVersion": .string(volume.resourceVersion)],
                "spec": ["persistentVolumeReclaimPolicy": .string(policy)],
            ]), dryRun: context.dryRun)
        }
    }
}

/// The kept PV's Longhorn volume, uid-guarded: the point of no return for its data.
struct FinalizeDeleteLonghornVolume: Step {
    let kept: KeptVolume
    var id: String { "finalize-delete-longhorn-volume" }
    var mutates: Bool { true }
    var isPointOfNoReturn: Bool { true }
    var summary: String { "delete Longhorn volume \(kept.longhornNamespace)/\(kept.longhornName) (uid-guarded)" }
    var estimate: Duration { .seconds(10) }
    var permissions: [KubeClient.AccessQuestion] { [.init("get", .longhornVolumes, namespace: kept.longhornNamespace), .init("delete", .longhornVolumes, namespace: kept.longhornNamespace)] }

    func observe(_ context: StepContext) async throws -> Bool {
        guard let longhornUID = kept.longhornUID else { return true }
        return try await context.read(.longhornVolumes, named: kept.longhornName, in: kept.longhornNamespace).map(LonghornVolume.init)?.uid != longhornUID
    }

    func apply(_ context: StepContext) async throws {
        guard let longhornUID = kept.longhornUID else { return }
        // Looked at again right before: the PV, while it is there, must still be unused.
        if let volume = try await kept.current(context) { try await kept.requireDeletable(volume, client: context.client) }
        let path = ResourceType.longhornVolumes.path(namespace: kept.longhornNamespace, name: kept.longhornName)
        try await KeptVolume.deleting {
            try await context.mutate("DELETE", path, precondition: longhornUID) {
                _ = try await context.client.delete(.longhornVolumes, named: kept.longhornName, in: kept.longhornNamespace, uid: longhornUID, dryRun: context.dryRun)
            }
        }
    }
}

/// The kept PV itself, guarded by its uid and resourceVersion (a claim binding it since fails
/// the delete with a conflict; the step looks again and refuses).
struct FinalizeDeleteVolume: Step {
    let kept: KeptVolume
    var id: String { "finalize-delete-volume" }
    var mutates: Bool { true }
    var summary: String { "delete persistentvolume \(kept.name) (uid-guarded)" }
    var estimate: Duration { .seconds(10) }
    var permissions: [KubeClient.AccessQuestion] { [.init("get", .persistentVolumes), .init("delete", .persistentVolumes)] }

    func observe(_ context: StepContext) async throws -> Bool {
        guard let volume = try await kept.current(context) else { return true }
        return volume.metadata.isTerminating
    }

    func apply(_ context: StepContext) async throws {
        guard let volume = try await context.recent(.persistentVolumes, named: kept.name).map(PersistentVolume.init), volume.uid == kept.uid else { return }
        try await kept.requireDeletable(volume, client: context.client)
        try await KeptVolume.deleting {
            try await context.mutate("DELETE", ResourceType.persistentVolumes.path(name: kept.name), precondition: kept.uid) {
                _ = try await context.client.delete(.persistentVolumes, named: kept.name, uid: kept.uid, resourceVersion: volume.resourceVersion, dryRun: context.dryRun)
            }
        }
    }
}
