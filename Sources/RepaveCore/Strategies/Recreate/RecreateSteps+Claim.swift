import Blocking
import Foundation
import KubeAPI

struct ScaleDown: Step {
    let claimRun: ClaimRun
    var id: String { "scale-down" }
    var mutates: Bool { true }
    var summary: String { "scale the workloads to 0 (original replicas in an annotation) and wait until no pod mounts the claim" }
    var estimate: Duration { claimRun.plan.timeouts.scaleDown.duration }
    var permissions: [KubeClient.AccessQuestion] {
        claimRun.target.workloadQuestions(["get", "patch"]) + [.init("list", .pods, namespace: claimRun.namespace), .init("watch", .pods, namespace: claimRun.namespace)]
    }

    func rehearse(_ context: StepContext) async throws -> [CheckResult] {
        [await CheckResult.attempt("scale the workloads to 0") { try await apply(context) }]
    }

    /// Each workload back to the replicas it had, its annotation removed.
    func undo(_ context: StepContext) async throws -> [String] {
        var report: [String] = []
        for workload in claimRun.target.workloads(context) {
            let type = ClaimTarget.workloadType(workload.kind)
            guard let object = try await context.client.getIfPresent(type, named: workload.name, in: claimRun.namespace),
                  let original = context.facts[ClaimFact.replicas(workload)]
            else { continue }
            let meta = ObjectMeta(object["metadata"] ?? [:])
            guard ClaimTarget.replicas(workload.kind, object) != original || meta.annotations[ClaimRun.replicasAnnotation] != nil else { continue }
            try await context.mutate("PATCH", type.path(namespace: claimRun.namespace, name: workload.name), precondition: meta.resourceVersion) {
                try await context.client.patch(type, named: workload.name, in: claimRun.namespace, .merge([
                    "metadata": ["resourceVersion": .string(meta.resourceVersion), "annotations": [.init(ClaimRun.replicasAnnotation): .null]],
                    "spec": ["replicas": .integer(Int64(original))],
                ]))
            }
            report.append("\(ClaimTarget.reference(workload)) back to \(original) replicas")
        }
        return report
    }

    func observe(_ context: StepContext) async throws -> Bool {
        for workload in claimRun.target.workloads(context) {
            let type = ClaimTarget.workloadType(workload.kind)
            // The preflight's read when nothing this run did since could change it: "not yet
            // scaled down" may come from it (the patch is guarded by its resourceVersion); "down"
            // is never taken from memory.
            let remembered = context.kept(type, named: workload.name, in: claimRun.namespace) != nil
            var object = try await context.recentExisting(type, named: workload.name, in: claimRun.namespace)
            if remembered, ClaimTarget.replicas(workload.kind, object) == 0 { object = try await context.readExisting(type, named: workload.name, in: claimRun.namespace) }
            if ClaimTarget.replicas(workload.kind, object) != 0 { return false }
        }
        return try await claimRun.target.podsMountingClaim(context.client).isEmpty
    }

    func apply(_ context: StepContext) async throws {
        for workload in claimRun.target.workloads(context) {
            let type = ClaimTarget.workloadType(workload.kind)
            // Observe's read, unless a patch came between: the patch is guarded by its resourceVersion.
            let object = try await context.recentExisting(type, named: workload.name, in: claimRun.namespace)
            let meta = ObjectMeta(object["metadata"] ?? [:])
            let replicas = ClaimTarget.replicas(workload.kind, object)
            guard replicas != 0 else { continue }
            let original = context.facts[ClaimFact.replicas(workload)] ?? replicas
            // One merge patch, guarded by the resourceVersion just read: replicas and the note of
            // what they were, together.
            try await context.mutate("PATCH", type.path(namespace: claimRun.namespace, name: workload.name), precondition: meta.resourceVersion) {
                try await context.client.patch(type, named: workload.name, in: claimRun.namespace, .merge([
                    "metadata": ["resourceVersion": .string(meta.resourceVersion), "annotations": [.init(ClaimRun.replicasAnnotation): .string(String(original))]],
                    "spec": ["replicas": 0],
                ]), dryRun: context.dryRun)
            }
        }
    }

    func await(_ context: StepContext) async throws {
        var (pods, listedAt) = try await claimRun.target.podsMountingClaimListed(context.client)
        context.waiting(pods.isEmpty ? "no pod to mount the claim" : "\(pods.count) pod\(pods.count == 1 ? "" : "s") to terminate: \(pods.map(\.name).joined(separator: ", "))")
        let deadline = context.deadline(estimate)
        // The workload says 0/0 while a terminating pod still holds the claim: wait for the pods,
        // also one its ReplicaSet made just before the scale-down took effect, as long as every
        // workload stays at 0; all within the step's one deadline.
        let waited = !pods.isEmpty
        while !pods.isEmpty {
            let up = try await claimRun.target.workloadsBackUp(context)
            if !up.isEmpty { break }
            for pod in pods {
                let left = deadline - ContinuousClock.now
                // Watched from the list just made (each pod's wait is one request), so a pod
                // already gone by now is a DELETED event, not a second list.
                try await context.client.wait(for: .pods, named: pod.name, in: claimRun.namespace, from: pod.raw, at: listedAt,
                                              timeout: left > .zero ? left : .milliseconds(1),
                                              describedAs: "pod \(pod.name) to terminate (it mounts the claim)") { $0 == nil }
            }
            (pods, listedAt) = try await claimRun.target.podsMountingClaimListed(context.client)
        }
        // After a wait, whether the workloads stayed down (the pods were just listed). Without
        // one, delete-claim's last look, right after this, is the check.
        if waited { try await claimRun.target.requireWorkloadsDown(context, before: "deleting the claim", abortable: true, listed: pods) }
    }
}

struct DeleteClaim: Step {
    let claimRun: ClaimRun
    /// A strategy's own last look before the point of no return, after recreate's (migrate: the
    /// copy is still the data).
    var lastLook: (@Sendable (StepContext) async throws -> Void)? = nil
    var id: String { "delete-claim" }
    var mutates: Bool { true }
    var isPointOfNoReturn: Bool { true }
    var summary: String { "delete persistentvolumeclaim \(claimRun.namespace)/\(claimRun.claim) (uid-guarded) and wait until it is gone" }
    var estimate: Duration { claimRun.plan.timeouts.claimDeletion.duration }
    var permissions: [KubeClient.AccessQuestion] {
        let ns = claimRun.namespace
        return ["get", "delete", "list", "watch"].map { .init($0, .persistentVolumeClaims, namespace: ns) } + [.init("get", .persistentVolumes)]
    }

    func rehearse(_ context: StepContext) async throws -> [CheckResult] {
        [await CheckResult.attempt("delete the claim (uid-guarded)") { try await apply(context) }]
    }

    func observe(_ context: StepContext) async throws -> Bool {
        guard let old = context.facts[ClaimFact.claimUID] else { return false }
        // The old claim gone or replaced, by this run or someone else: the run is past its point
        // of no return either way, and the journal must say so before abort can be asked.
        guard let current = try await context.read(.persistentVolumeClaims, named: claimRun.claim, in: claimRun.namespace).map(PersistentVolumeClaim.init) else {
            try await context.crossPointOfNoReturn()
            return true
        }
        guard current.uid == old else {
            try await context.crossPointOfNoReturn()
            return true
        }
        // Last look before the point of no return: nothing may have come back to use the claim.
        if !current.metadata.isTerminating {
            try await claimRun.target.requireWorkloadsDown(context, before: "deleting the claim", abortable: true)
            try await lastLook?(context)
        }
        return false
    }

    func apply(_ context: StepContext) async throws {
        guard let uid = context.facts[ClaimFact.claimUID] else {
            throw RepaveError(.deleteNoUID, "no recorded claim uid")
        }
        // Observe's read (its last look found nothing using the claim); the delete is uid-guarded.
        let current = try await context.recent(.persistentVolumeClaims, named: claimRun.claim, in: claimRun.namespace)
        try await context.crossPointOfNoReturn()
        if let current, PersistentVolumeClaim(current).metadata.isTerminating { return }   // already deleting: only wait
        let answer = try await context.mutate("DELETE", ResourceType.persistentVolumeClaims.path(namespace: claimRun.namespace, name: claimRun.claim), precondition: uid) {
            try await context.client.delete(.persistentVolumeClaims, named: claimRun.claim, in: claimRun.namespace, uid: uid, dryRun: context.dryRun)
        }
        // Held by its finalizer, the claim comes back with its deletionTimestamp: the wait
        // watches from there.
        if !context.dryRun, answer["kind"]?.stringValue == "PersistentVolumeClaim" {
            context.saw(answer, .persistentVolumeClaims, named: claimRun.claim, in: claimRun.namespace)
        }
    }

    func await(_ context: StepContext) async throws {
        context.waiting("the old claim to be gone (its pvc-protection finalizer clears when no pod uses it)")
        let old = context.facts[ClaimFact.claimUID] ?? ""
        let answered = context.kept(.persistentVolumeClaims, named: claimRun.claim, in: claimRun.namespace)?.object
        do {
            try await context.client.wait(for: .persistentVolumeClaims, named: claimRun.claim, in: claimRun.namespace, from: answered,
                                          timeout: context.timeLeft(of: estimate),
                                          describedAs: "claim \(claimRun.claim) (uid \(old)) to be gone") { object in
                object.map { PersistentVolumeClaim($0).uid != old } ?? true
            }
        } catch let error as WaitTimedOut {
            let finalizers = error.lastSeen.map { ObjectMeta($0["metadata"] ?? [:]).finalizers } ?? []
            throw RepaveError(.deleteStuck, "the claim is still there after \(claimRun.plan.timeouts.claimDeletion)", causes: ["finalizers: \(finalizers.joined(separator: ", "))"],
                              hint: "kubernetes.io/pvc-protection stays while a pod uses the claim; '\(context.continueCommand)' continues once it is gone")
        }
        try await awaitOldVolumeReleased(context, claimUID: old)
    }

    /// The old PV no longer Bound to the old claim: the PV controller has seen the claim go.
    /// Before Kubernetes 1.23 (kubernetes#105131, fixed by #105211), a controller whose cache
    /// still holds the old claim when the new claim's volume arrives finds a claim of that name
    /// with another uid, marks the new volume Released, and its provisioner deletes it (a
    /// Delete class): the new claim is left on a deleted volume. The lab's 1.20 did just that
    /// on a loaded CI machine. Polled with GETs (the release takes a moment), so repave needs
    /// no list or watch of every PV.
    func awaitOldVolumeReleased(_ context: StepContext, claimUID: String) async throws {
        guard let volume = context.facts[ClaimFact.volume] else { return }
        let released = { (object: JSON?) -> Bool in
            guard let object, let claimRef = PersistentVolume(object).claimRef else { return true }
            return PersistentVolume(object).phase != "Bound" || claimRef.uid != claimUID
        }
        var pause = Duration.milliseconds(200)
        var seen = try await context.read(.persistentVolumes, named: volume)
        guard !released(seen) else { return }
        context.waiting("the PV controller to release pv \(volume) (until then a new claim of the same name is not safe: kubernetes#105131)")
        let deadline = context.deadline(estimate)
        while !released(seen) {
            guard deadline > .now else {
                throw RepaveError(.deleteStuck, "pv \(volume) is still Bound to the deleted claim after \(claimRun.plan.timeouts.claimDeletion)",
                                  causes: ["the PV controller (kube-controller-manager) has not released it"],
                                  hint: "check that kube-controller-manager runs; '\(context.continueCommand)' continues once the PV is Released")
            }
            try await Task.sleep(for: min(pause, max(deadline - .now, .milliseconds(1))))
            pause = min(pause * 2, .seconds(2))
            seen = try await context.read(.persistentVolumes, named: volume)
        }
    }
}

struct CreateClaim: Step {
    let claimRun: ClaimRun
    /// The volume the new claim binds to (`spec.volumeName`, ``Rebind``); nil: the class
    /// provisions a new, empty one.
    var volume: RebindVolume? = nil
    var id: String { "create-claim" }
    var mutates: Bool { true }
    var summary: String {
        "create the claim again, same name, on storageclass \(claimRun.plan.storageClass.name)" + (volume == nil ? "" : ", bound to the copied volume (volumeName)")
    }
    var estimate: Duration { .seconds(30) }
    var permissions: [KubeClient.AccessQuestion] {
        ["get", "create"].map { .init($0, .persistentVolumeClaims, namespace: claimRun.namespace) }
    }

    /// The claim still exists, so its re-creation is checked under a stand-in name.
    func rehearse(_ context: StepContext) async throws -> [CheckResult] {
        let plan = claimRun.plan
        return [await CheckResult.attempt("create the claim on \(plan.storageClass.name) (checked as \(plan.target.claim)-dry-run: the claim still exists)") {
            let saved = try await claimRun.savedClaim()
            var object = CreateClaim.recreated(from: saved, storageClass: plan.storageClass.name, run: "dry-run")
            object["metadata"]?["name"] = .string(String((plan.target.claim + "-dry-run").prefix(253)))
            try await context.client.create(.persistentVolumeClaims, in: claimRun.namespace, object, dryRun: true)
        }]
    }

    /// Fresh, not what delete-claim's wait saw: that wait watches from the DELETE's answer and
    /// ends at the old claim's deletion event, even when someone has made another claim of that
    /// name since (`OtherActorsTests`), and that claim must be named, not met by a failed create.
    func observe(_ context: StepContext) async throws -> Bool {
        guard let current = try await context.read(.persistentVolumeClaims, named: claimRun.claim, in: claimRun.namespace) else {
            // A workload scaled up now would start on the new, empty claim the moment it exists.
            try await claimRun.target.requireWorkloadsDown(context, before: "creating the new claim", abortable: false)
            return false
        }
        let claim = PersistentVolumeClaim(current)
        guard claim.uid != context.facts[ClaimFact.claimUID] else { return false }
        guard claim.metadata.annotations[ClaimRun.runAnnotation] == claimRun.run else {
            throw RepaveError(.createForeign, "a claim \(claimRun.namespace)/\(claimRun.claim) (uid \(claim.uid)) exists that this run did not create",
                              hint: "someone else recreated it; repave neither adopts nor deletes it: inspect it, then decide")
        }
        if context.facts[RecreateFact.newClaimUID] == nil { try await context.remember(RecreateFact.newClaimUID, claim.uid) }
        return true
    }

    func apply(_ context: StepContext) async throws {
        let saved = try await claimRun.savedClaim()
        let className = claimRun.plan.storageClass.name
        let object: JSON
        if let volume {
            guard let name = context.facts[volume.name] else { throw RepaveError(.rebindNoVolume, "no recorded volume for the new claim") }
            object = Rebind.claim(from: saved, storageClass: className, volume: name, run: claimRun.run)
        } else {
            object = Self.recreated(from: saved, storageClass: className, run: claimRun.run)
        }
        // A new claim: it may be bound to a volume, and pods waiting for it may start; the
        // workloads themselves are not changed by it.
        let created = try await context.mutate("POST", ResourceType.persistentVolumeClaims.path(namespace: claimRun.namespace),
                                               changing: [.persistentVolumeClaims, .persistentVolumes, .pods, .longhornVolumes]) {
            try await context.client.create(.persistentVolumeClaims, in: claimRun.namespace, object, dryRun: context.dryRun)
        }
        if !context.dryRun {
            context.saw(created, .persistentVolumeClaims, named: claimRun.claim, in: claimRun.namespace)
            try await context.remember(RecreateFact.newClaimUID, PersistentVolumeClaim(created).uid)
        }
    }

    /// The saved claim as a new object: same name, labels, annotations (minus binding and
    /// provisioner ones), size, access and volume modes; the new class; this run's id.
    static func recreated(from saved: JSON, storageClass: String, run: String) -> JSON {
        let meta = saved["metadata"] ?? [:]
        var annotations = (meta["annotations"]?.objectValue ?? [:]).filter { key, _ in
            !(key.hasPrefix("pv.kubernetes.io/") || key.hasPrefix("volume.beta.kubernetes.io/") || key.hasPrefix("volume.kubernetes.io/")
              || key == "kubectl.kubernetes.io/last-applied-configuration")
        }
        annotations[ClaimRun.runAnnotation] = .string(run)
        var metadata: JSON = ["name": meta["name"] ?? "", "namespace": meta["namespace"] ?? "", "annotations": .object(annotations)]
        if let labels = meta["labels"] { metadata["labels"] = labels }
        var spec: JSON = [
            "accessModes": saved[path: "spec", "accessModes"] ?? ["ReadWriteOnce"],
            "resources": ["requests": ["storage": saved[path: "spec", "resources", "requests", "storage"] ?? "1Gi"]],
            "storageClassName": .string(storageClass),
        ]
        if let mode = saved[path: "spec", "volumeMode"] { spec["volumeMode"] = mode }
        return ["apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": spec]
    }
}

struct AwaitBound: Step {
    let claimRun: ClaimRun
    /// The pre-bound volume (``Rebind``): it binds at once, whatever the class's binding mode,
    /// and its claimRef must name the new claim's uid.
    var volume: RebindVolume? = nil
    var id: String { "await-bound" }
    var mutates: Bool { false }
    private var bindsAfterScaleUp: Bool { volume == nil && claimRun.plan.storageClass.volumeBindingMode == "WaitForFirstConsumer" }
    var summary: String {
        if bindsAfterScaleUp { return "(WaitForFirstConsumer: the claim binds after scale-up)" }
        return volume == nil ? "wait until the new claim is Bound" : "wait until the new claim is Bound to the copied volume, whose claimRef names its uid"
    }
    var estimate: Duration { claimRun.plan.timeouts.bind.duration }
    var permissions: [KubeClient.AccessQuestion] {
        ["get", "list", "watch"].map { .init($0, .persistentVolumeClaims, namespace: claimRun.namespace) }
    }

    func observe(_ context: StepContext) async throws -> Bool {
        if bindsAfterScaleUp { return true }
        // Right after create-claim, its answer (Pending): the wait below watches from it.
        guard let current = try await context.recent(.persistentVolumeClaims, named: claimRun.claim, in: claimRun.namespace) else { return false }
        guard PersistentVolumeClaim(current).isBound else { return false }
        try await checkVolume(PersistentVolumeClaim(current), context)
        return true
    }

    /// The pre-bound volume's claimRef names the new claim (its uid), and the claim that volume.
    private func checkVolume(_ claim: PersistentVolumeClaim, _ context: StepContext) async throws {
        guard let volume, let name = context.facts[volume.name] else { return }
        let bound = try await context.read(.persistentVolumes, named: name).map(PersistentVolume.init)
        guard claim.volumeName == name, let bound, bound.uid == context.facts[volume.uid], bound.claimRef?.uid == claim.uid else {
            throw RepaveError(.rebindOtherVolume, "claim \(claimRun.namespace)/\(claimRun.claim) (uid \(claim.uid)) is bound to \(claim.volumeName ?? "nothing"), and volume \(name)'s claimRef names uid \(bound?.claimRef?.uid ?? "none")",
                              hint: "the claim must be bound to the copied volume \(name): inspect both before scaling anything up")
        }
    }

    func apply(_ context: StepContext) async throws {}

    func await(_ context: StepContext) async throws {
        context.waiting("the new claim to be Bound (the provisioner creates its volume)")
        let seen = context.kept(.persistentVolumeClaims, named: claimRun.claim, in: claimRun.namespace)?.object
        let bound = try await context.client.wait(for: .persistentVolumeClaims, named: claimRun.claim, in: claimRun.namespace, from: seen, timeout: context.timeLeft(of: estimate),
                                                  describedAs: "the new claim to be Bound") { $0.map { PersistentVolumeClaim($0).isBound } ?? false }
        if let bound { try await checkVolume(PersistentVolumeClaim(bound), context) }
    }
}
