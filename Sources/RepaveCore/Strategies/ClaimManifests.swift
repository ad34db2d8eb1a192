import Blocking
import Foundation
import Journal
import KubeAPI

/// What every claim strategy's `save-manifests` step saves before its first change: the claim,
/// its PersistentVolume, its StorageClass and its Longhorn volume, as raw JSON in the run
/// directory's `manifests/`, and the facts later steps (and a resume) rely on.
struct ClaimManifests: Sendable {
    let target: ClaimTarget
    let runDirectory: String
    /// Where the claim's Longhorn volume lives (`verify.longhorn.namespace`).
    let longhornNamespace: String

    /// What the step reads to save them.
    var permissions: [KubeClient.AccessQuestion] {
        [.init("get", .persistentVolumeClaims, namespace: target.namespace), .init("get", .persistentVolumes), .init("get", .storageClasses),
         .init("get", .longhornVolumes, namespace: longhornNamespace)]
    }

    /// The manifests are saved and their facts journaled (the volume's uid is the last fact).
    static func saved(_ context: StepContext) -> Bool { context.facts[ClaimFact.volumeUID] != nil }

    /// Saves the claim, its volume, its class and its Longhorn volume (remembering the Longhorn
    /// volume's uid), and returns what it read: the strategy saves its own objects next, then
    /// calls ``remember(_:claim:volume:)``.
    func saveClaim(_ context: StepContext) async throws -> (claim: PersistentVolumeClaim, volume: PersistentVolume, longhorn: LonghornVolume?) {
        let client = context.client
        try FileManager.default.createDirectory(atPath: runDirectory + "/manifests", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        // As the preflight read them a moment ago, when nothing has changed since: the saved
        // claim's uid guards what the run does to it.
        let claimObject = try await context.recentExisting(.persistentVolumeClaims, named: target.claim, in: target.namespace)
        let claim = PersistentVolumeClaim(claimObject)
        let volumeObject = try await client.get(.persistentVolumes, named: claim.volumeName ?? "")
        let volume = PersistentVolume(volumeObject)
        try await save(claimObject, "persistentvolumeclaim-\(target.claim).json")
        try await save(volumeObject, "persistentvolume-\(volume.name).json")
        if let className = claim.storageClassName, let storageClass = try await client.getIfPresent(.storageClasses, named: className) {
            try await save(storageClass, "storageclass-\(className).json")
        }
        var longhorn: LonghornVolume?
        if let object = try await client.getIfPresent(.longhornVolumes, named: volume.volumeHandle ?? volume.name, in: longhornNamespace) {
            longhorn = LonghornVolume(object)
            try await save(object, "longhorn-volume-\(LonghornVolume(object).name).json")
            if LonghornVolume(object).name != volume.name { try await context.remember(ClaimFact.longhornName, LonghornVolume(object).name) }
            try await context.remember(ClaimFact.longhornUID, LonghornVolume(object).uid)
        }
        return (claim, volume, longhorn)
    }

    /// The claim's and its volume's facts; the volume's uid last, which marks the step done.
    func remember(_ context: StepContext, claim: PersistentVolumeClaim, volume: PersistentVolume) async throws {
        try await context.remember(ClaimFact.claimUID, claim.uid)
        try await context.remember(ClaimFact.volume, volume.name)
        try await context.remember(ClaimFact.reclaimPolicy, volume.reclaimPolicy)
        try await context.remember(ClaimFact.volumeUID, volume.uid)
    }

    /// A manifest is whole or absent (see `RunDirectory.writeAtomically`). A failure is this
    /// step's, not the journal's: the run stops before any change, and releases its lock.
    func save(_ object: JSON, _ name: String) async throws {
        do {
            let path = runDirectory + "/manifests/" + name, data = object.encoded()
            try await offPool("manifest write") { () throws(JournalError) in try RunDirectory.writeAtomically(data, to: path) }
        } catch {
            throw RepaveError(.manifestsWrite, "cannot save \(name) in the run directory", causes: [error.description],
                              hint: "check the space and permissions of \(runDirectory)")
        }
    }
}
