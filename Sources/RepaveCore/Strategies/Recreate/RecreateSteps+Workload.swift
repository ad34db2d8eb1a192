import Foundation
import KubeAPI

struct ScaleUp: Step {
    let claimRun: ClaimRun
    var id: String { "scale-up" }
    var mutates: Bool { true }
    var summary: String { "restore the workloads' original replicas and wait for the rollout" }
    var estimate: Duration { claimRun.plan.timeouts.rollout.duration }
    var permissions: [KubeClient.AccessQuestion] { claimRun.target.workloadQuestions(["get", "patch", "list", "watch"]) }

    func rehearse(_ context: StepContext) async throws -> [CheckResult] {
        [await CheckResult.attempt("restore the workloads' replicas") { try await apply(context) }]
    }

    /// The replicas to restore: the original count, and at least an HPA's minReplicas (which
    /// would otherwise raise it right after).
    private func original(_ workload: RecreatePlan.Workload, _ context: StepContext) -> Int {
        let original = context.facts[ClaimFact.replicas(workload)] ?? 1
        let minimum = context.facts[ClaimFact.hpaMinimum(workload)] ?? 0
        return original > 0 ? max(original, minimum) : 0
    }

    func observe(_ context: StepContext) async throws -> Bool {
        for workload in claimRun.target.workloads(context) {
            let type = ClaimTarget.workloadType(workload.kind)
            // create-claim's last look, when nothing this run did since could change the workload
            // (a resumed run reads afresh): "not yet restored" may come from it (the patch that
            // follows is guarded by its resourceVersion); "restored" is read afresh below.
            let remembered = context.kept(type, named: workload.name, in: claimRun.namespace) != nil
            var object = try await context.recentExisting(type, named: workload.name, in: claimRun.namespace)
            let want = original(workload, context)
            func restored(_ object: JSON) -> Bool {
                ClaimTarget.replicas(workload.kind, object) == want && ObjectMeta(object["metadata"] ?? [:]).annotations[ClaimRun.replicasAnnotation] == nil
            }
            if remembered, restored(object) { object = try await context.readExisting(type, named: workload.name, in: claimRun.namespace) }
            if !restored(object) { return false }
            if workload.kind == .deployment ? Deployment(object).rolloutState != .complete : StatefulSet(object).readyReplicas != want { return false }
        }
        return true
    }

    func apply(_ context: StepContext) async throws {
        for workload in claimRun.target.workloads(context) {
            let type = ClaimTarget.workloadType(workload.kind)
            // Observe's read, unless a patch came between: the patch is guarded by its resourceVersion.
            let object = try await context.recentExisting(type, named: workload.name, in: claimRun.namespace)
            let meta = ObjectMeta(object["metadata"] ?? [:])
            let patched = try await context.mutate("PATCH", type.path(namespace: claimRun.namespace, name: workload.name), precondition: meta.resourceVersion) {
                try await context.client.patch(type, named: workload.name, in: claimRun.namespace, .merge([
                    "metadata": ["resourceVersion": .string(meta.resourceVersion), "annotations": [.init(ClaimRun.replicasAnnotation): .null]],
                    "spec": ["replicas": .integer(Int64(original(workload, context)))],
                ]), dryRun: context.dryRun)
            }
            if !context.dryRun { context.saw(patched, type, named: workload.name, in: claimRun.namespace) }
        }
    }

    func await(_ context: StepContext) async throws {
        context.waiting("the rollout of " + claimRun.target.workloads(context).map { "\($0.kind.rawValue)/\($0.name)" }.joined(separator: ", "))
        for workload in claimRun.target.workloads(context) {
            let type = ClaimTarget.workloadType(workload.kind)
            let want = original(workload, context)
            // From the patch's answer when this process just sent it: the watch alone then.
            let patched = context.kept(type, named: workload.name, in: claimRun.namespace)?.object
            let object = try await context.client.wait(for: type, named: workload.name, in: claimRun.namespace, from: patched, timeout: context.timeLeft(of: estimate),
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
                throw RepaveError(.scaleUpFailed, reason, hint: "inspect the pods' events; 'repave resume' waits again")
            }
        }
    }
}

struct Verify: Step {
    let claimRun: ClaimRun
    var id: String { "verify" }
    var mutates: Bool { false }
    var summary: String { "check: claim Bound on \(claimRun.plan.storageClass.name), Longhorn volume with \(claimRun.plan.verify.replicas) replicas and \(claimRun.plan.verify.robustness), workload available" }
    var estimate: Duration { claimRun.plan.timeouts.verify.duration }
    var permissions: [KubeClient.AccessQuestion] {
        let longhorn = claimRun.plan.verify.namespace
        return [.init("get", .persistentVolumeClaims, namespace: claimRun.namespace)]
            + ["get", "list", "watch"].map { .init($0, .longhornVolumes, namespace: longhorn) } + claimRun.target.workloadQuestions(["get"])
    }

    func observe(_ context: StepContext) async throws -> Bool {
        try await check(context).all.isEmpty
    }

    func apply(_ context: StepContext) async throws {}

    func await(_ context: StepContext) async throws {
        context.waiting("the new volume to verify (up to \(claimRun.plan.timeouts.verify))")
        let deadline = context.deadline(estimate)
        var last: VerifyFindings
        var interval = Duration.milliseconds(100)
        // The first round takes what observe has just read; then a fresh read each time round,
        // so the failure below names what holds now.
        var first = VerifyFindings()
        first.reusingReads = true
        var start: VerifyFindings? = first
        while true {
            last = try await check(context, from: start ?? VerifyFindings())
            start = nil
            if last.all.isEmpty { return }
            let left = deadline - .now
            if left <= .zero { break }
            if let volume = last.volumeToWatch {
                let expected = expectation(context)
                // Longhorn rebuilding replicas can take minutes: watched (from the volume as
                // just read, so no list; reopened every 5 minutes), not polled.
                do {
                    let seen = context.kept(.longhornVolumes, named: volume, in: claimRun.plan.verify.namespace)?.object
                    try await context.client.wait(for: .longhornVolumes, named: volume, in: claimRun.plan.verify.namespace, from: seen, timeout: left,
                                                  describedAs: "Longhorn volume \(volume) to verify") { object in
                        object.map { expected.problems(LonghornVolume($0)).isEmpty } ?? false
                    }
                } catch is WaitTimedOut {
                    continue   // read again: past the deadline, that read is the verdict
                }
            } else {
                // The claim or the workload regressed after their own steps: rare, polled.
                try await Task.sleep(for: min(interval, left))
                interval = min(interval * 2, .seconds(1))
            }
        }
        throw RepaveError(.verifyFailed, "the new volume did not verify within \(estimate)", causes: last.all,
                          hint: "the old volume is still retained; fix the cause and run 'repave resume', which verifies again")
    }

    /// Recreate's verify: the claim Bound on the plan's class, its Longhorn volume with the
    /// plan's replicas and robustness, the workloads available.
    var checks: [VerifyCheck] {
        let verify = claimRun.plan.verify, target = claimRun.target
        return [target.claimBound(onClass: claimRun.plan.storageClass.name),
                target.longhornVolume(in: verify.namespace) { context in expectation(context) },
                target.workloadsAvailable]
    }

    private func check(_ context: StepContext, from start: VerifyFindings = VerifyFindings()) async throws -> VerifyFindings {
        try await VerifyCheck.run(checks, context, from: start)
    }

    /// The plan's replica count, and its robustness while a workload runs on the volume (a
    /// detached volume reports robustness unknown).
    private func expectation(_ context: StepContext) -> VolumeExpectation {
        let running = claimRun.target.workloads(context).contains { (context.facts[ClaimFact.replicas($0)] ?? 0) > 0 }
        return VolumeExpectation(replicas: claimRun.plan.verify.replicas, robustness: running ? claimRun.plan.verify.robustness : nil)
    }
}

struct ReleaseOldVolume: Step {
    let claimRun: ClaimRun
    /// Migrate's is `keep-old-volume`.
    var id = "release-old-volume"
    var mutates: Bool { claimRun.plan.deletesOldVolume }
    var summary: String {
        claimRun.plan.deletesOldVolume ? "delete the retained old volume and its Longhorn volume (uid-guarded)"
            : "keep the old volume (retain-until-verified) for 'repave finalize RUN'"
    }
    var estimate: Duration { .seconds(30) }
    var permissions: [KubeClient.AccessQuestion] {
        let longhorn = claimRun.plan.verify.namespace
        let read: [KubeClient.AccessQuestion] = [.init("get", .persistentVolumes), .init("get", .longhornVolumes, namespace: longhorn)]
        return read + (claimRun.plan.deletesOldVolume ? [.init("delete", .persistentVolumes), .init("delete", .longhornVolumes, namespace: longhorn)] : [])
    }

    func rehearse(_ context: StepContext) async throws -> [CheckResult] {
        guard mutates else { return [] }
        return [await CheckResult.attempt("delete the old volume") { try await apply(context) }]
    }

    func observe(_ context: StepContext) async throws -> Bool {
        guard let name = context.facts[ClaimFact.volume] else { return true }
        if !claimRun.plan.deletesOldVolume {
            // Repave never deletes it in this mode; someone else may have.
            let volume = try await context.client.getIfPresent(.persistentVolumes, named: name).map(PersistentVolume.init)
            guard volume?.uid == context.facts[ClaimFact.volumeUID] else {
                try await context.remember(RecreateFact.oldVolumeLost, "deleted by someone else during the run (repave did not delete it)")
                try await context.note("WARNING: the old volume \(name) (uid \(context.facts[ClaimFact.volumeUID] ?? "?")) is gone: someone else deleted it during the run; repave did not. Its data survives only if its Longhorn volume \(claimRun.plan.verify.namespace)/\(ClaimFact.longhornVolume(context.facts) ?? name) is still there")
                return true
            }
            try await context.note("old volume \(name) is retained. Delete it, with its Longhorn volume, when no longer needed: repave finalize \(claimRun.runDirectory)")
            return true
        }
        // Done when neither object the run saved is left: one of that name with another uid was
        // made by someone else and is not ours to delete.
        let volume = try await context.client.getIfPresent(.persistentVolumes, named: name).map(PersistentVolume.init)
        let longhorn = try await context.client.getIfPresent(.longhornVolumes, named: ClaimFact.longhornVolume(context.facts) ?? name, in: claimRun.plan.verify.namespace).map(LonghornVolume.init)
        return volume?.uid != context.facts[ClaimFact.volumeUID] && (longhorn == nil || longhorn?.uid != context.facts[ClaimFact.longhornUID])
    }

    func apply(_ context: StepContext) async throws {
        guard let name = context.facts[ClaimFact.volume], let uid = context.facts[ClaimFact.volumeUID] else { return }
        if let volume = try await context.client.getIfPresent(.persistentVolumes, named: name).map(PersistentVolume.init), volume.uid == uid {
            try await context.mutate("DELETE", ResourceType.persistentVolumes.path(name: name), precondition: uid) {
                try await context.client.delete(.persistentVolumes, named: name, uid: uid, dryRun: context.dryRun)
            }
        }
        let longhornName = ClaimFact.longhornVolume(context.facts) ?? name
        if let longhornUID = context.facts[ClaimFact.longhornUID],
           let longhorn = try await context.client.getIfPresent(.longhornVolumes, named: longhornName, in: claimRun.plan.verify.namespace).map(LonghornVolume.init),
           longhorn.uid == longhornUID {
            try await context.mutate("DELETE", ResourceType.longhornVolumes.path(namespace: claimRun.plan.verify.namespace, name: longhornName), precondition: longhorn.uid) {
                try await context.client.delete(.longhornVolumes, named: longhornName, in: claimRun.plan.verify.namespace, uid: longhorn.uid, dryRun: context.dryRun)
            }
        }
    }
}
