import Blocking
import Foundation
import Journal
import KubeAPI

// The recreate strategy's steps. Each is an ensure: `observe` reads the cluster (and the facts
// journaled so far) and says whether the goal holds; `apply` makes one change at a time through
// `context.mutate`; `await` waits until the goal holds.

struct Preflight: Step {
    let claimRun: ClaimRun
    var id: String { "preflight" }
    var mutates: Bool { false }
    var summary: String { "check the claim, who mounts it, the storage class and the git report" }
    var estimate: Duration { .seconds(30) }
    var permissions: [KubeClient.AccessQuestion] {
        let ns = claimRun.namespace
        return [.init("get", .persistentVolumeClaims, namespace: ns), .init("list", .pods, namespace: ns), .init("get", .replicaSets, namespace: ns),
                .init("get", .storageClasses), .init("list", .horizontalPodAutoscalers, namespace: ns)]
            + claimRun.target.workloadQuestions(["get"])
    }

    func rehearse(_ context: StepContext) async throws -> [CheckResult] {
        _ = try await observe(context)
        return [CheckResult(check: "preflight: claim Bound, mounted only by the plan's workloads, reconcilers dealt with, class compatible, git check passed, permissions present")]
    }

    /// A strategy's own checks (migrate's), after the shared ones.
    var extra: [PreflightCheck] = []

    /// The checks, in order: the shared claim checks, then recreate's own (the class, git),
    /// then the strategy's extra ones.
    var checks: [PreflightCheck] {
        let target = claimRun.target
        return [target.claimBound, target.mountedOnlyByWorkloads, storageClassCompatible, target.workloadsExist,
                target.reconcilersAcknowledged(claimRun.plan.acknowledge), target.notInsideThePod,
                target.runDirectoryOffTheClaim(claimRun.runDirectory), gitReportPassed, gitPathsPassed] + extra
    }

    func observe(_ context: StepContext) async throws -> Bool {
        // Permissions first: every missing one is listed at once, before anything else is read.
        if !claimRun.permissionsChecked {
            try await MaintenanceSession.checkPermissions(claimRun.permissions(), client: context.client)
        }
        let findings = try await PreflightCheck.run(checks, context)
        let workloads = findings.workloads.map(\.0)
        try await recordHPAMinimums(context, autoscalers: findings.autoscalers, workloads: workloads)
        if context.facts[ClaimFact.workloads] == nil {
            try await context.remember(ClaimFact.workloads, workloads)
        }
        return true
    }

    /// The plan's class, if it exists, has the plan's provisioner and parameters (they are
    /// immutable); if not, the run may create it.
    var storageClassCompatible: PreflightCheck {
        let spec = claimRun.plan.storageClass
        return PreflightCheck("storage-class-compatible") { _, context in
            if let existing = try await context.read(.storageClasses, named: spec.name) {
                let current = StorageClass(existing)
                if current.provisioner != spec.provisioner || current.parameters != spec.parameters {
                    throw RepaveError(.classMismatch, "storageclass \(spec.name) exists with other settings (\(current.provisioner), \(current.parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")))",
                                      hint: "StorageClass parameters are immutable: choose another class name in the plan")
                }
            } else if !spec.ensure {
                throw RepaveError(.noClass, "storageclass \(spec.name) does not exist and storageClass.ensure is false", hint: "create it, or set ensure: true")
            }
        }
    }

    var gitReportPassed: PreflightCheck { PreflightCheck("git-report-passed") { _, _ in try await checkGitReport() } }
    var gitPathsPassed: PreflightCheck { PreflightCheck("git-paths-passed") { _, _ in try await checkGitPaths() } }

    func apply(_ context: StepContext) async throws {}

    /// An HPA's minReplicas, so that scale-up restores at least that many.
    private func recordHPAMinimums(_ context: StepContext, autoscalers: [JSON], workloads: [RecreatePlan.Workload]) async throws {
        for hpa in autoscalers {
            guard let kind = hpa[path: "spec", "scaleTargetRef", "kind"]?.stringValue, let name = hpa[path: "spec", "scaleTargetRef", "name"]?.stringValue,
                  let workload = workloads.first(where: { $0.kind.rawValue == kind && $0.name == name }),
                  let minimum = hpa[path: "spec", "minReplicas"]?.intValue
            else { continue }
            let fact = ClaimFact.hpaMinimum(workload)
            if context.facts[fact] == nil { try await context.remember(fact, Int(minimum)) }
        }
    }

    /// Local paths in the plan: the git check runs here, now.
    private func checkGitPaths() async throws {
        guard let git = claimRun.plan.gitPreflight, !git.paths.isEmpty else { return }
        let report = try await GitCheck(paths: git.paths, rules: git.require, ignore: git.ignore,
                                        claim: "\(claimRun.namespace)/\(claimRun.claim)").run()
        guard report.passed else {
            let failing = report.repositories.filter { !$0.passed }.map { "\($0.path): \($0.reasons.joined(separator: "; "))" }
                + report.unreadable.map { "\($0.path): unreadable (\($0.reason))" }
            throw RepaveError(.git, "the git check failed: nothing on the volume may live only there", causes: failing,
                              hint: "commit, push or drop what is listed (repave git-check \(git.paths.joined(separator: " ")) shows the details)")
        }
    }

    /// A `repave git-check --report` must have passed, be young enough, and name this claim.
    private func checkGitReport() async throws {
        guard let git = claimRun.plan.gitPreflight, let file = git.report else { return }
        let data: Data
        do {
            data = try await offPool("git report read") { try Data(contentsOf: URL(fileURLWithPath: file)) }
        } catch {
            throw claimRun.refuse(.gitReportMissing, "cannot read the git report \(file)", hint: "make it where the data lives: repave git-check PATH --report \(file) --for \(claimRun.namespace)/\(claimRun.claim)")
        }
        guard let report = try? JSONDecoder().decode(GitReport.self, from: data) else {
            throw claimRun.refuse(.gitReportInvalid, "\(file) is not a repave git-check report", hint: "regenerate it with repave git-check --report")
        }
        guard report.claim == "\(claimRun.namespace)/\(claimRun.claim)" else {
            throw claimRun.refuse(.gitReportForeign, "the git report \(file) was made for \(report.claim ?? "no claim"), not \(claimRun.namespace)/\(claimRun.claim)", hint: "run git-check with --for \(claimRun.namespace)/\(claimRun.claim)")
        }
        let created = (try? Date(report.createdAt, strategy: .iso8601)) ?? .distantPast
        guard Date().timeIntervalSince(created) <= git.maxReportAge.seconds else {
            throw claimRun.refuse(.gitReportStale, "the git report \(file) is older than \(git.maxReportAge)", hint: "run git-check again right before the window")
        }
        guard report.passed else {
            let failing = report.repositories.filter { !$0.passed }.map { "\($0.path): \($0.reasons.joined(separator: "; "))" }
            throw claimRun.refuse(.gitDirty, "the git report \(file) failed: " + failing.joined(separator: " | "), hint: "commit and push, then run git-check again")
        }
    }
}

struct SaveManifests: Step {
    let claimRun: ClaimRun
    var id: String { "save-manifests" }
    var mutates: Bool { false }
    var summary: String { "save the claim, volume, class and workloads as they are (raw JSON) into the run directory" }
    var estimate: Duration { .seconds(10) }
    var permissions: [KubeClient.AccessQuestion] { claimRun.manifests.permissions + claimRun.target.workloadQuestions(["get"]) }

    /// The later rehearsals need the saved claim (create-claim re-creates it from there).
    func rehearse(_ context: StepContext) async throws -> [CheckResult] {
        _ = try await observe(context)
        return []
    }

    func observe(_ context: StepContext) async throws -> Bool {
        if ClaimManifests.saved(context) { return true }
        let manifests = claimRun.manifests
        let (claim, volume, _) = try await manifests.saveClaim(context)
        for workload in claimRun.target.workloads(context) {
            let type = ClaimTarget.workloadType(workload.kind)
            // As the preflight read it: its resourceVersion guards the scale-down.
            let object = try await context.recentExisting(type, named: workload.name, in: claimRun.namespace)
            try await manifests.save(object, "\(workload.kind.rawValue.lowercased())-\(workload.name).json")
            let replicas = ClaimTarget.replicas(workload.kind, object)
            // Already scaled down by an earlier, interrupted attempt: its annotation knows.
            let original = ObjectMeta(object["metadata"] ?? [:]).annotations[ClaimRun.replicasAnnotation].flatMap(Int.init) ?? replicas
            try await context.remember(ClaimFact.replicas(workload), original)
        }
        try await manifests.remember(context, claim: claim, volume: volume)
        return true
    }

    func apply(_ context: StepContext) async throws {}
}

struct EnsureStorageClass: Step {
    let claimRun: ClaimRun
    /// Migrate makes the class before the window opens (its staging claim needs it).
    var needsWindow = true
    var id: String { "ensure-storage-class" }
    var mutates: Bool { true }
    var summary: String { "create storageclass \(claimRun.plan.storageClass.name) if absent" }
    var estimate: Duration { .seconds(10) }
    var permissions: [KubeClient.AccessQuestion] {
        [.init("get", .storageClasses)] + (claimRun.plan.storageClass.ensure ? [.init("create", .storageClasses)] : [])
    }

    func rehearse(_ context: StepContext) async throws -> [CheckResult] {
        guard try await !observe(context) else { return [CheckResult(check: "storageclass \(claimRun.plan.storageClass.name) exists with the plan's settings")] }
        return [await CheckResult.attempt("create storageclass \(claimRun.plan.storageClass.name)") { try await apply(context) }]
    }

    /// A class this run created is kept: another claim may use it by now.
    func undo(_ context: StepContext) async throws -> [String] {
        let name = claimRun.plan.storageClass.name
        guard let created = try await context.client.getIfPresent(.storageClasses, named: name),
              ObjectMeta(created["metadata"] ?? [:]).annotations[ClaimRun.runAnnotation] == claimRun.run else { return [] }
        return ["storageclass \(name), created by this run, is kept (delete it with kubectl delete storageclass \(name) if unwanted)"]
    }

    /// The preflight's read when nothing has changed since: a class created by someone else
    /// meanwhile makes the create fail (already exists), before this run changed anything.
    func observe(_ context: StepContext) async throws -> Bool {
        try await context.recent(.storageClasses, named: claimRun.plan.storageClass.name) != nil
    }

    func apply(_ context: StepContext) async throws {
        let spec = claimRun.plan.storageClass
        try await context.mutate("POST", ResourceType.storageClasses.path(), changing: [.storageClasses]) {
            try await context.client.create(.storageClasses, [
                "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": ["name": .string(spec.name), "annotations": [.init(ClaimRun.runAnnotation): .string(claimRun.run)]],
                "provisioner": .string(spec.provisioner),
                "parameters": .object(spec.parameters.mapValues { .string($0) }),
                "reclaimPolicy": .string(spec.reclaimPolicy), "volumeBindingMode": .string(spec.volumeBindingMode),
                "allowVolumeExpansion": .bool(spec.allowVolumeExpansion),
            ], dryRun: context.dryRun)
        }
    }
}

struct RetainOldVolume: Step {
    let claimRun: ClaimRun
    /// Migrate also retains its staging volume (`retain-staging-volume`), which abort deletes
    /// with its claim instead of putting its policy back.
    var id = "retain-old-volume"
    var volume = RebindVolume(name: ClaimFact.volume, uid: ClaimFact.volumeUID)
    /// Migrate retains both volumes before the window opens.
    var needsWindow = true
    var mutates: Bool { true }
    var summary: String {
        id == "retain-old-volume" ? "set the old volume's reclaim policy to Retain, so deleting the claim cannot destroy its data, and annotate it with the run and the claim"
            : "set the staging volume's reclaim policy to Retain, so deleting the staging claim keeps the copy, and annotate it with the run and the claim"
    }
    var estimate: Duration { .seconds(10) }
    var permissions: [KubeClient.AccessQuestion] { [.init("get", .persistentVolumes), .init("patch", .persistentVolumes)] }

    func rehearse(_ context: StepContext) async throws -> [CheckResult] {
        [await CheckResult.attempt("set the old volume's reclaim policy to Retain") { try await apply(context) }]
    }

    /// The reclaim policy the volume had, and no run annotations, if the volume is still the one
    /// the run saved.
    func undo(_ context: StepContext) async throws -> [String] {
        let client = context.client
        guard self.volume.name.key == ClaimFact.volume.key, let name = context.facts[ClaimFact.volume], let policy = context.facts[ClaimFact.reclaimPolicy],
              let volume = try await client.getIfPresent(.persistentVolumes, named: name).map(PersistentVolume.init),
              volume.uid == context.facts[ClaimFact.volumeUID],
              volume.reclaimPolicy != policy || volume.metadata.annotations[RetainedVolume.runAnnotation] == claimRun.run else { return [] }
        // Released, or bound to another claim: the saved claim is gone, and Delete now would
        // destroy the data. It stays Retain.
        guard volume.phase != "Released", volume.claimRef.map({ $0.uid == context.facts[ClaimFact.claimUID] }) ?? true else {
            return ["persistentvolume \(name) is \(volume.phase) (its claim is gone): it stays Retain, so its data is kept"]
        }
        try await context.mutate("PATCH", ResourceType.persistentVolumes.path(name: name), precondition: volume.resourceVersion) {
            try await client.patch(.persistentVolumes, named: name, .merge([
                "metadata": ["resourceVersion": .string(volume.resourceVersion),
                             "annotations": RetainedVolume.annotations(run: nil, claim: nil)],
                "spec": ["persistentVolumeReclaimPolicy": .string(policy)],
            ]))
        }
        return ["persistentvolume \(name) reclaim policy back to \(policy)"]
    }

    func observe(_ context: StepContext) async throws -> Bool {
        guard let name = context.facts[self.volume.name] else { return false }
        // Fresh: whether the data survives the claim's deletion is not taken from memory.
        let volume = PersistentVolume(try await context.readExisting(.persistentVolumes, named: name))
        return volume.reclaimPolicy == "Retain" && volume.metadata.annotations[RetainedVolume.runAnnotation] == claimRun.run
    }

    func apply(_ context: StepContext) async throws {
        guard let name = context.facts[self.volume.name], let uid = context.facts[self.volume.uid] else {
            throw RepaveError(.retainNoVolume, "no recorded volume for the claim")
        }
        // Observe's read: the patch below is guarded by its resourceVersion.
        let volume = PersistentVolume(try await context.recentExisting(.persistentVolumes, named: name))
        guard volume.uid == uid else {
            throw RepaveError(.retainReplaced, "persistentvolume \(name) is another object now (uid \(uid) at the start, \(volume.uid) now)",
                              hint: "inspect it; repave does not change a volume it did not save")
        }
        // The reclaim policy and annotations: nothing else reads them, so reads of other kinds stay.
        try await context.mutate("PATCH", ResourceType.persistentVolumes.path(name: name), precondition: volume.resourceVersion, changing: [.persistentVolumes]) {
            try await context.client.patch(.persistentVolumes, named: name, .merge([
                "metadata": ["resourceVersion": .string(volume.resourceVersion),
                             "annotations": RetainedVolume.annotations(run: claimRun.run, claim: "\(claimRun.namespace)/\(claimRun.claim)")],
                "spec": ["persistentVolumeReclaimPolicy": "Retain"],
            ]), dryRun: context.dryRun)
        }
    }
}
