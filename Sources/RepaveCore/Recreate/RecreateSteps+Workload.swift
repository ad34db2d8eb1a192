import Foundation
import KubeAPI

struct ScaleUp: Step {
    let recreate: Recreate
    var id: String { "scale-up" }
    var mutates: Bool { true }
    var summary: String { "restore the workloads' original replicas and wait for the rollout" }
    var estimate: Duration { recreate.plan.timeouts.rollout.duration }

    /// The replicas to restore: the original count, and at least an HPA's minReplicas (which
    /// would otherwise raise it right after).
    private func original(_ workload: RecreatePlan.Workload, _ context: StepContext) -> Int {
        let name = "\(workload.kind.rawValue)/\(workload.name)"
        let original = Int(context.facts[Recreate.Fact.replicas(name)] ?? "") ?? 1
        let minimum = Int(context.facts[Recreate.Fact.hpaMinimum(name)] ?? "") ?? 0
        return original > 0 ? max(original, minimum) : 0
    }

    func observe(_ context: StepContext) async throws -> Bool {
        for workload in recreate.workloads(context) {
            let object = try await context.client.get(recreate.workloadType(workload.kind), named: workload.name, in: recreate.namespace)
            let want = original(workload, context)
            if Recreate.replicas(workload.kind, object) != want || ObjectMeta(object["metadata"] ?? [:]).annotations[Recreate.replicasAnnotation] != nil { return false }
            if workload.kind == .deployment ? Deployment(object).rolloutState != .complete : StatefulSet(object).readyReplicas != want { return false }
        }
        return true
    }

    func apply(_ context: StepContext) async throws {
        for workload in recreate.workloads(context) {
            let type = recreate.workloadType(workload.kind)
            let object = try await context.client.get(type, named: workload.name, in: recreate.namespace)
            let meta = ObjectMeta(object["metadata"] ?? [:])
            try await context.mutate("PATCH", type.path(namespace: recreate.namespace, name: workload.name)) {
                try await context.client.patch(type, named: workload.name, in: recreate.namespace, .merge([
                    "metadata": ["resourceVersion": .string(meta.resourceVersion), "annotations": [.init(Recreate.replicasAnnotation): .null]],
                    "spec": ["replicas": .integer(Int64(original(workload, context)))],
                ]), dryRun: context.dryRun)
            }
        }
    }

    func await(_ context: StepContext) async throws {
        context.waiting("the rollout of " + recreate.workloads(context).map { "\($0.kind.rawValue)/\($0.name)" }.joined(separator: ", "))
        for workload in recreate.workloads(context) {
            let type = recreate.workloadType(workload.kind)
            let want = original(workload, context)
            let object = try await context.client.wait(for: type, named: workload.name, in: recreate.namespace, timeout: estimate,
                                                       describedAs: "\(workload.kind.rawValue)/\(workload.name) to roll out") { object in
                guard let object else { return false }
                if workload.kind == .deployment {
                    let state = Deployment(object).rolloutState
                    if case .failed = state { return true }
                    return state == .complete
                }
                let set = StatefulSet(object)
                return set.observedGeneration >= set.metadata.generation && set.readyReplicas == want
            }
            if workload.kind == .deployment, let object, case .failed(let reason) = Deployment(object).rolloutState {
                throw RepaveError(code: "scale-up.failed", reason, hint: "inspect the pods' events; 'repave resume' waits again", exitStatus: .stoppedMidRun)
            }
        }
    }
}

struct Verify: Step {
    let recreate: Recreate
    var id: String { "verify" }
    var mutates: Bool { false }
    var summary: String { "check: claim Bound on \(recreate.plan.storageClass.name), Longhorn volume with \(recreate.plan.verify.replicas) replicas and \(recreate.plan.verify.robustness), workload available" }
    var estimate: Duration { recreate.plan.timeouts.verify.duration }

    func observe(_ context: StepContext) async throws -> Bool {
        try await problems(context).isEmpty
    }

    func apply(_ context: StepContext) async throws {}

    func await(_ context: StepContext) async throws {
        context.waiting("the new volume to verify (up to \(recreate.plan.timeouts.verify))")
        let deadline = ContinuousClock.now + estimate
        var last: [String] = []
        // Polled (the Role grants only `get` on Longhorn volumes), soon at first, then each second.
        var interval = Duration.milliseconds(100)
        while ContinuousClock.now < deadline {
            last = try await problems(context)
            if last.isEmpty { return }
            try await Task.sleep(for: interval)
            interval = min(interval * 2, .seconds(1))
        }
        throw RepaveError(code: "verify.failed", "the new volume did not verify within \(estimate)", causes: last,
                          hint: "the old volume is still retained; fix the cause and run 'repave resume', which verifies again", exitStatus: .stoppedMidRun)
    }

    private func problems(_ context: StepContext) async throws -> [String] {
        let client = context.client
        var problems: [String] = []
        guard let object = try await client.getIfPresent(.persistentVolumeClaims, named: recreate.claim, in: recreate.namespace) else {
            return ["the claim does not exist"]
        }
        let claim = PersistentVolumeClaim(object)
        if claim.storageClassName != recreate.plan.storageClass.name { problems.append("the claim's class is \(claim.storageClassName ?? "none")") }
        guard claim.isBound, let volumeName = claim.volumeName else { return problems + ["the claim is \(claim.phase), not Bound"] }
        if let longhorn = try await client.getIfPresent(.longhornVolumes, named: volumeName, in: recreate.plan.verify.namespace).map(LonghornVolume.init) {
            if longhorn.numberOfReplicas != recreate.plan.verify.replicas {
                problems.append("the Longhorn volume has \(longhorn.numberOfReplicas) replicas, not \(recreate.plan.verify.replicas)")
            }
            let running = recreate.workloads(context).contains { (Int(context.facts[Recreate.Fact.replicas("\($0.kind.rawValue)/\($0.name)")] ?? "0") ?? 0) > 0 }
            if running && longhorn.robustness != recreate.plan.verify.robustness {
                problems.append("the Longhorn volume is \(longhorn.state) and \(longhorn.robustness), not \(recreate.plan.verify.robustness)")
            }
        } else {
            problems.append("no Longhorn volume \(recreate.plan.verify.namespace)/\(volumeName)")
        }
        for workload in recreate.workloads(context) {
            let object = try await client.get(recreate.workloadType(workload.kind), named: workload.name, in: recreate.namespace)
            switch workload.kind {
            case .deployment:
                if Deployment(object).rolloutState != .complete { problems.append("deployment \(workload.name) is not available") }
            case .statefulSet:
                let set = StatefulSet(object)
                if set.readyReplicas < set.replicas { problems.append("statefulset \(workload.name) has \(set.readyReplicas) of \(set.replicas) replicas ready") }
            }
        }
        return problems
    }
}

struct ReleaseOldVolume: Step {
    let recreate: Recreate
    var id: String { "release-old-volume" }
    var mutates: Bool { recreate.plan.oldVolume == .delete }
    var summary: String {
        recreate.plan.oldVolume == .delete ? "delete the retained old volume and its Longhorn volume (uid-guarded)"
            : "keep the old volume (retain-until-verified) and print how to delete it"
    }
    var estimate: Duration { .seconds(30) }

    func observe(_ context: StepContext) async throws -> Bool {
        guard let name = context.facts[Recreate.Fact.volume] else { return true }
        if recreate.plan.oldVolume == .retainUntilVerified {
            // Repave never deletes it in this mode; someone else may have.
            let volume = try await context.client.getIfPresent(.persistentVolumes, named: name).map(PersistentVolume.init)
            guard volume?.uid == context.facts[Recreate.Fact.volumeUID] else {
                try context.remember(Recreate.Fact.oldVolumeLost, "deleted by someone else during the run (repave did not delete it)")
                try context.note("WARNING: the old volume \(name) (uid \(context.facts[Recreate.Fact.volumeUID] ?? "?")) is gone: someone else deleted it during the run; repave did not. Its data survives only if its Longhorn volume \(recreate.plan.verify.namespace)/\(name) is still there")
                return true
            }
            try context.note("old volume \(name) is retained. Delete it when no longer needed: kubectl delete pv \(name); kubectl -n \(recreate.plan.verify.namespace) delete volumes.longhorn.io \(name)")
            return true
        }
        // Done when neither object the run saved is left: one of that name with another uid was
        // made by someone else and is not ours to delete.
        let volume = try await context.client.getIfPresent(.persistentVolumes, named: name).map(PersistentVolume.init)
        let longhorn = try await context.client.getIfPresent(.longhornVolumes, named: name, in: recreate.plan.verify.namespace).map(LonghornVolume.init)
        return volume?.uid != context.facts[Recreate.Fact.volumeUID] && (longhorn == nil || longhorn?.uid != context.facts[Recreate.Fact.longhornUID])
    }

    func apply(_ context: StepContext) async throws {
        guard let name = context.facts[Recreate.Fact.volume], let uid = context.facts[Recreate.Fact.volumeUID] else { return }
        if let volume = try await context.client.getIfPresent(.persistentVolumes, named: name).map(PersistentVolume.init), volume.uid == uid {
            try await context.mutate("DELETE", ResourceType.persistentVolumes.path(name: name), precondition: uid) {
                try await context.client.delete(.persistentVolumes, named: name, uid: uid, dryRun: context.dryRun)
            }
        }
        if let longhornUID = context.facts[Recreate.Fact.longhornUID],
           let longhorn = try await context.client.getIfPresent(.longhornVolumes, named: name, in: recreate.plan.verify.namespace).map(LonghornVolume.init),
           longhorn.uid == longhornUID {
            try await context.mutate("DELETE", ResourceType.longhornVolumes.path(namespace: recreate.plan.verify.namespace, name: name), precondition: longhorn.uid) {
                try await context.client.delete(.longhornVolumes, named: name, in: recreate.plan.verify.namespace, uid: longhorn.uid, dryRun: context.dryRun)
            }
        }
    }
}
