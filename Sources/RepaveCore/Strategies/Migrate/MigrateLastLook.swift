import KubeAPI

// Migrate's last look before the point of no return (delete-claim): the copy must still be the
// data. Recreate's last look (nothing uses the claim now) cannot see a workload that was scaled
// up and down again after the final copy began (an operator restoring service after a stop, a
// GitOps sync): the claim would then move onto a copy without what was written meanwhile, and
// `finalize` would later delete the only volume that has it.

extension MigrateFact {
    /// The workloads' `metadata.generation` when the final copy began (`Deployment/web@4,…`).
    public static let finalSource = Fact<String>("copy.final.source")
}

extension MigrateRun {
    /// `kind/name@generation` of each workload the run acts on (`absent` for one deleted). A
    /// scale (or any spec change) raises a workload's generation.
    /// - Parameter fresh: read from the server (the final copy's start), or as this process last
    ///   read them (delete-claim's last look, right after its own fresh reads).
    func sourceFingerprint(_ context: StepContext, fresh: Bool) async throws -> String {
        var parts: [String] = []
        for workload in claimRun.target.workloads(context) {
            let type = ClaimTarget.workloadType(workload.kind)
            let object = fresh ? try await context.read(type, named: workload.name, in: namespace)
                : try await context.recent(type, named: workload.name, in: namespace)
            let generation = object?[path: "metadata", "generation"]?.intValue.map { String($0) } ?? "absent"
            parts.append("\(ClaimTarget.reference(workload))@\(generation)")
        }
        return parts.joined(separator: ",")
    }

    /// Journaled before the final copy's pod is created: what delete-claim compares against.
    func rememberSource(_ context: StepContext) async throws {
        try await context.remember(MigrateFact.finalSource, try await sourceFingerprint(context, fresh: true))
    }

    /// delete-claim's extra look: no workload changed since the final copy began, and the staging
    /// volume (the copy) is still there, the same object, Retain. Either refusal comes before
    /// anything is deleted, and `abort` puts everything back.
    func requireCopyCurrent(_ context: StepContext) async throws {
        let now = try await sourceFingerprint(context, fresh: false)
        let then = context.facts[MigrateFact.finalSource]
        guard then == now else {
            throw RepaveError(.sourceChanged, "stopped before deleting the claim: the workloads changed after the final copy began (\(then ?? "not recorded") -> \(now)), so the volume may hold writes the copy lacks",
                              hint: "nothing was deleted; 'repave abort RUN' puts everything back (the old volume keeps every write), then run the plan again")
        }
        guard let name = context.facts[MigrateFact.stagingVolume], let uid = context.facts[MigrateFact.stagingVolumeUID] else {
            throw RepaveError(.stagingVolumeLost, "stopped before deleting the claim: the journal names no staging volume", hint: "nothing was deleted; 'repave abort RUN' puts everything back")
        }
        let volume = try await context.read(.persistentVolumes, named: name).map(PersistentVolume.init)
        guard let volume, volume.uid == uid, volume.reclaimPolicy == "Retain" else {
            let what = volume == nil ? "is gone" : volume?.uid != uid ? "was replaced (uid \(volume?.uid ?? ""), not \(uid))" : "has reclaim policy \(volume?.reclaimPolicy ?? "")"
            throw RepaveError(.stagingVolumeLost, "stopped before deleting the claim: the staging volume \(name), which holds the copy, \(what)",
                              hint: "nothing was deleted; 'repave abort RUN' puts everything back, then run the plan again")
        }
    }
}
