import Curl
import Foundation
import KubeAPI
import Logging

// Migrate's own steps: the staging claim, the copies, the wait for the old volume to detach and
// the staging claim's deletion. The steps it shares with recreate are recreate's (ClaimRun);
// the swap of the name onto the copied volume is `Rebind`'s.

/// What every migrate step knows: the shared claim run, and migrate's plan.
struct MigrateRun: Sendable {
    let plan: MigratePlan
    let claimRun: ClaimRun

    var namespace: String { claimRun.namespace }
    var staging: String { StagingClaim.name(claim: claimRun.claim, runID: claimRun.run) }
    /// The staging volume, for retain-staging-volume and the swap.
    static let stagingVolume = RebindVolume(name: MigrateFact.stagingVolume, uid: MigrateFact.stagingVolumeUID)

    func pod(_ pass: CopyPod.Pass, node: String? = nil) -> CopyPod {
        CopyPod(pass: pass, namespace: namespace, sourceClaim: claimRun.claim, stagingClaim: staging, runID: claimRun.run, node: node, copy: plan.copy)
    }

    /// The staging claim: the saved claim's access and volume modes, at least the old volume's
    /// capacity, on the plan's class, labelled with the run.
    func stagingClaim(from saved: JSON, capacity: String?) -> JSON {
        let claim = PersistentVolumeClaim(saved)
        let requested = claim.requestedStorage ?? capacity ?? "1Gi"
        let size = capacity.map { Quantity.bytes($0) ?? 0 > Quantity.bytes(requested) ?? 0 ? $0 : requested } ?? requested
        var spec: JSON = [
            "accessModes": .array(claim.accessModes.isEmpty ? ["ReadWriteOnce"] : claim.accessModes.map(JSON.string)),
            "resources": ["requests": ["storage": .string(size)]],
            "storageClassName": .string(plan.storageClass.name),
        ]
        if let mode = claim.volumeMode { spec["volumeMode"] = .string(mode) }
        return ["apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": ["name": .string(staging), "namespace": .string(namespace),
                             "labels": [.init(CopyPod.runLabel): .string(claimRun.run)],
                             "annotations": [.init(RetainedVolume.claimAnnotation): .string("\(namespace)/\(claimRun.claim)")]],
                "spec": spec]
    }

    /// Deletes `object` (uid-guarded) through the journal and waits until it is gone.
    func delete(_ type: ResourceType, _ object: JSON, _ context: StepContext, timeout: Duration) async throws {
        let meta = ObjectMeta(object["metadata"] ?? [:])
        let ns = type.namespaced ? namespace : nil
        if meta.deletionTimestamp == nil {
            try await context.mutate("DELETE", type.path(namespace: ns, name: meta.name), precondition: meta.uid) {
                try await context.client.delete(type, named: meta.name, in: ns, uid: meta.uid, dryRun: context.dryRun)
            }
        }
        if context.dryRun { return }
        try await context.client.wait(for: type, named: meta.name, in: ns, timeout: timeout, describedAs: "\(type.kind.lowercased()) \(meta.name) to be gone") {
            $0.map { ObjectMeta($0["metadata"] ?? [:]).uid != meta.uid } ?? true
        }
    }
}

/// The facts only migrate journals (the old claim's and volume's are ``ClaimFact``'s, the new
/// claim's uid ``RecreateFact/newClaimUID``, as for recreate).
public enum MigrateFact {
    public static let stagingClaimUID = Fact<String>("staging.claim.uid")
    public static let stagingVolume = Fact<String>("staging.pv.name")
    public static let stagingVolumeUID = Fact<String>("staging.pv.uid")
    public static let stagingLonghornUID = Fact<String>("staging.longhorn.uid")
    /// `rsync --version`'s version, from the first copy pod's log.
    public static let rsyncVersion = Fact<String>("rsync.version")
    /// Each pass's exit code, files, bytes sent, and rate (bytes per second).
    public static func exitCode(_ pass: CopyPod.Pass) -> Fact<Int> { Fact("copy.\(pass.rawValue).exit") }
    public static func files(_ pass: CopyPod.Pass) -> Fact<Int> { Fact("copy.\(pass.rawValue).files") }
    public static func bytes(_ pass: CopyPod.Pass) -> Fact<Int> { Fact("copy.\(pass.rawValue).bytes") }
    public static func rate(_ pass: CopyPod.Pass) -> Fact<Int> { Fact("copy.\(pass.rawValue).bytesPerSecond") }
    /// Why a pass did not run.
    public static func skipped(_ pass: CopyPod.Pass) -> Fact<String> { Fact("copy.\(pass.rawValue).skipped") }
    /// The uid of a copy pod whose result stopped the run: a resume deletes it and copies again.
    public static func refusedPod(_ pass: CopyPod.Pass) -> Fact<String> { Fact("copy.\(pass.rawValue).refused-pod") }
}

/// Kubernetes quantities as bytes, for comparing sizes.
enum Quantity {
    static func bytes(_ text: String) -> Double? {
        let units: [(String, Double)] = [("Ki", 0x1p10), ("Mi", 0x1p20), ("Gi", 0x1p30), ("Ti", 0x1p40), ("Pi", 0x1p50), ("Ei", 0x1p60),
                                         ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12), ("P", 1e15), ("E", 1e18)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            return Double(text.dropLast(suffix.count)).map { $0 * factor }
        }
        return Double(text)
    }
}

// MARK: - preflight

extension MigrateRun {
    /// Migrate's own preflight checks, after the shared ones.
    var checks: [PreflightCheck] {
        [filesystemVolume, sameProvisioner, immediateBinding, knownFinalizers, claimsKeptByStatefulSets, serverDryRuns]
    }

    /// The staging claim must be Bound before a copy pod may use it (retain-staging-volume
    /// waits for that), so its class must bind at once: one that waits for the first consumer
    /// would wait for a pod forever. The class as the cluster has it, else as the plan makes it.
    var immediateBinding: PreflightCheck {
        let name = plan.storageClass.name
        return PreflightCheck("immediate-binding") { _, context in
            let mode = try await context.recent(.storageClasses, named: name).map { StorageClass($0).volumeBindingMode } ?? plan.storageClass.volumeBindingMode
            guard mode == "WaitForFirstConsumer" else { return }
            throw RepaveError(.waitForFirstConsumer, "storageclass \(name) binds on first consumer (volumeBindingMode WaitForFirstConsumer): migrate's staging claim must be Bound before its copy pod can start",
                              hint: "migrate onto a class of the same provisioner with volumeBindingMode Immediate (Longhorn's default), or use strategy: recreate")
        }
    }

    /// rsync copies files: a Block volume has none.
    var filesystemVolume: PreflightCheck {
        PreflightCheck("volume-mode-filesystem") { findings, _ in
            guard let claim = findings.claim, claim.volumeMode == "Block" else { return }
            throw RepaveError(.blockVolume, "persistentvolumeclaim \(claim.namespace ?? "")/\(claim.name) has volumeMode Block: migrate copies files",
                              hint: "migrate works on Filesystem volumes only; copy a Block volume with its own tools")
        }
    }

    /// The new class's provisioner is the old volume's driver: the swap keeps the name on one driver.
    var sameProvisioner: PreflightCheck {
        let wanted = plan.storageClass.provisioner
        return PreflightCheck("same-provisioner") { findings, context in
            guard let volume = findings.claim?.volumeName,
                  let driver = try await context.read(.persistentVolumes, named: volume).flatMap({ PersistentVolume($0).csiDriver }) else { return }
            guard driver != wanted else { return }
            throw RepaveError(.otherProvisioner, "the claim's volume is \(driver)'s and storageclass \(plan.storageClass.name) is \(wanted)'s: migrate does not move a claim across drivers",
                              hint: "name a class of \(driver) in storageClass, or use strategy: recreate")
        }
    }

    /// Finalizers repave knows: the claim's deletion must end, and nothing else must act on it.
    var knownFinalizers: PreflightCheck {
        PreflightCheck("known-finalizers") { findings, _ in
            let unknown = (findings.claim?.metadata.finalizers ?? []).filter { $0 != "kubernetes.io/pvc-protection" }
            guard !unknown.isEmpty else { return }
            throw RepaveError(.unknownFinalizers, "the claim has finalizers repave does not know: \(unknown.joined(separator: ", "))",
                              hint: "find the controller that set them and make sure it lets the claim be deleted and recreated, then remove them")
        }
    }

    /// A StatefulSet whose `persistentVolumeClaimRetentionPolicy` deletes claims would delete
    /// this one at scale-down (the field is absent before Kubernetes 1.23: read from the raw JSON).
    var claimsKeptByStatefulSets: PreflightCheck {
        PreflightCheck("statefulset-keeps-claims") { findings, _ in
            for (workload, object) in findings.workloads where workload.kind == .statefulSet {
                let policy = object[path: "spec", "persistentVolumeClaimRetentionPolicy"]
                let deleting = ["whenScaled", "whenDeleted"].filter { policy?[$0]?.stringValue == "Delete" }
                guard !deleting.isEmpty else { continue }
                throw RepaveError(.claimRetentionDelete, "StatefulSet/\(workload.name) deletes its claims (persistentVolumeClaimRetentionPolicy \(deleting.map { "\($0): Delete" }.joined(separator: ", "))): scale-down would delete the claim",
                                  hint: "set both to Retain for the migration (kubectl patch statefulset \(workload.name) …), then run again")
            }
        }
    }

    /// The staging claim and a copy pod, sent with dryRun=All: admission, quota and PodSecurity
    /// answer before anything changes.
    var serverDryRuns: PreflightCheck {
        PreflightCheck("server-dry-runs") { findings, context in
            guard let claim = findings.claim else { return }
            let capacity = try await claim.volumeName.asyncFlatMap { try await context.recent(.persistentVolumes, named: $0) }.flatMap { PersistentVolume($0).capacity }
            for (what, type, object) in [("the staging claim", ResourceType.persistentVolumeClaims, stagingClaim(from: claim.raw, capacity: capacity)),
                                         ("a copy pod", ResourceType.pods, pod(.final).manifest)] {
                do {
                    try await context.client.create(type, in: namespace, object, dryRun: true)
                } catch let error as KubeAPIError where error.httpStatus < 500 && error.httpStatus != 429 && !TransientFailure.isConflict(error) {
                    // Only the server's answer about the object is a refusal: a 409 Conflict passes
                    // (the engine looks again), and a 429 or 5xx the client could not get past is
                    // the server's trouble, not admission's (the fault matrix's seeds met both).
                    throw RepaveError(.dryRunRefused, "the API server refuses \(what) (dryRun=All): \(error.reason.rawValue): \(error.message)",
                                      hint: "admission, quota or PodSecurity in \(namespace) must allow it: fix that, then run again")
                }
            }
        }
    }
}

extension Optional {
    func asyncFlatMap<U>(_ transform: (Wrapped) async throws -> U?) async rethrows -> U? {
        guard let self else { return nil }
        return try await transform(self)
    }
}

// MARK: - the staging claim

struct CreateStagingClaim: Step {
    let migrate: MigrateRun
    var id: String { "create-staging-claim" }
    var mutates: Bool { true }
    var needsWindow: Bool { false }
    var summary: String { "create the staging claim \(migrate.staging) on storageclass \(migrate.plan.storageClass.name) and wait until it is Bound" }
    var estimate: Duration { migrate.plan.timeouts.bind.duration }
    var permissions: [KubeClient.AccessQuestion] {
        let ns = migrate.namespace, longhorn = migrate.plan.verify.namespace
        return ["get", "create", "delete", "list", "watch"].map { .init($0, .persistentVolumeClaims, namespace: ns) }
            + [.init("get", .persistentVolumes), .init("delete", .persistentVolumes), .init("get", .longhornVolumes, namespace: longhorn),
               .init("delete", .longhornVolumes, namespace: longhorn)]
    }

    func rehearse(_ context: StepContext) async throws -> [CheckResult] {
        [await CheckResult.attempt("create the staging claim \(migrate.staging)") { try await apply(context) }]
    }

    func observe(_ context: StepContext) async throws -> Bool {
        guard let object = try await context.read(.persistentVolumeClaims, named: migrate.staging, in: migrate.namespace) else { return false }
        let claim = try ours(object)
        if context.facts[MigrateFact.stagingClaimUID] == nil { try await context.remember(MigrateFact.stagingClaimUID, claim.uid) }
        return claim.isBound && context.facts[MigrateFact.stagingLonghornUID] != nil
    }

    /// A claim of the staging name that this run did not make is not touched.
    private func ours(_ object: JSON) throws -> PersistentVolumeClaim {
        let claim = PersistentVolumeClaim(object)
        guard claim.metadata.labels[CopyPod.runLabel] == migrate.claimRun.run else {
            throw RepaveError(.stagingForeign, "a claim \(migrate.namespace)/\(migrate.staging) (uid \(claim.uid)) exists that this run did not create",
                              hint: "repave neither adopts nor deletes it: inspect it, then 'repave abort RUN' or remove it and 'repave resume RUN'")
        }
        return claim
    }

    func apply(_ context: StepContext) async throws {
        if try await context.recent(.persistentVolumeClaims, named: migrate.staging, in: migrate.namespace) != nil { return }
        let saved = try await migrate.claimRun.savedClaim()
        let capacity = try await context.facts[ClaimFact.volume].asyncFlatMap { try await context.recent(.persistentVolumes, named: $0) }
            .flatMap { PersistentVolume($0).capacity }
        let created = try await context.mutate("POST", ResourceType.persistentVolumeClaims.path(namespace: migrate.namespace),
                                               changing: [.persistentVolumeClaims, .persistentVolumes, .longhornVolumes]) {
            try await context.client.create(.persistentVolumeClaims, in: migrate.namespace, migrate.stagingClaim(from: saved, capacity: capacity), dryRun: context.dryRun)
        }
        if !context.dryRun {
            context.saw(created, .persistentVolumeClaims, named: migrate.staging, in: migrate.namespace)
            try await context.remember(MigrateFact.stagingClaimUID, PersistentVolumeClaim(created).uid)
        }
    }

    /// Bound: its volume and Longhorn volume are journaled (the Longhorn volume's uid last).
    func await(_ context: StepContext) async throws {
        context.waiting("the staging claim \(migrate.staging) to be Bound")
        let seen = context.kept(.persistentVolumeClaims, named: migrate.staging, in: migrate.namespace)?.object
        let bound = try await context.client.wait(for: .persistentVolumeClaims, named: migrate.staging, in: migrate.namespace, from: seen,
                                                  timeout: context.timeLeft(of: estimate), describedAs: "the staging claim to be Bound") {
            $0.map { PersistentVolumeClaim($0).isBound } ?? false
        }
        guard let bound, let name = PersistentVolumeClaim(bound).volumeName else { return }
        let volume = PersistentVolume(try await context.client.get(.persistentVolumes, named: name))
        try await context.remember(MigrateFact.stagingVolume, volume.name)
        try await context.remember(MigrateFact.stagingVolumeUID, volume.uid)
        let longhorn = try await context.client.get(.longhornVolumes, named: volume.volumeHandle ?? volume.name, in: migrate.plan.verify.namespace)
        try await context.remember(MigrateFact.stagingLonghornUID, LonghornVolume(longhorn).uid)
    }

    /// The staging claim, its volume and its Longhorn volume, each uid-guarded.
    func undo(_ context: StepContext) async throws -> [String] {
        var report: [String] = []
        let client = context.client, longhornNamespace = migrate.plan.verify.namespace
        var volumeName = context.facts[MigrateFact.stagingVolume]
        if let object = try await client.getIfPresent(.persistentVolumeClaims, named: migrate.staging, in: migrate.namespace),
           PersistentVolumeClaim(object).metadata.labels[CopyPod.runLabel] == migrate.claimRun.run {
            volumeName = volumeName ?? PersistentVolumeClaim(object).volumeName
            try await migrate.delete(.persistentVolumeClaims, object, context, timeout: migrate.plan.timeouts.claimDeletion.duration)
            report.append("staging claim \(migrate.namespace)/\(migrate.staging) deleted")
        }
        guard let volumeName else { return report }
        if let object = try await client.getIfPresent(.persistentVolumes, named: volumeName),
           context.facts[MigrateFact.stagingVolumeUID].map({ $0 == PersistentVolume(object).uid }) ?? (PersistentVolume(object).claimRef?.name == migrate.staging) {
            let volume = PersistentVolume(object)
            try await context.mutate("DELETE", ResourceType.persistentVolumes.path(name: volume.name), precondition: volume.uid) {
                try await client.delete(.persistentVolumes, named: volume.name, uid: volume.uid)
            }
            report.append("staging volume \(volume.name) deleted")
        }
        if let uid = context.facts[MigrateFact.stagingLonghornUID],
           let longhorn = try await client.getIfPresent(.longhornVolumes, named: volumeName, in: longhornNamespace).map(LonghornVolume.init), longhorn.uid == uid {
            try await context.mutate("DELETE", ResourceType.longhornVolumes.path(namespace: longhornNamespace, name: volumeName), precondition: uid) {
                try await client.delete(.longhornVolumes, named: volumeName, in: longhornNamespace, uid: uid)
            }
            report.append("staging Longhorn volume \(longhornNamespace)/\(volumeName) deleted")
        }
        return report
    }
}

struct DeleteStagingClaim: Step {
    let migrate: MigrateRun
    var id: String { "delete-staging-claim" }
    var mutates: Bool { true }
    var summary: String { "delete the staging claim \(migrate.staging) (uid-guarded); its retained volume keeps the copy" }
    var estimate: Duration { migrate.plan.timeouts.claimDeletion.duration }
    var permissions: [KubeClient.AccessQuestion] {
        ["get", "delete", "watch"].map { .init($0, .persistentVolumeClaims, namespace: migrate.namespace) }
    }

    /// The staging claim does not exist before the run: nothing to rehearse.
    func rehearse(_ context: StepContext) async throws -> [CheckResult] { [] }

    func observe(_ context: StepContext) async throws -> Bool {
        let current = try await context.read(.persistentVolumeClaims, named: migrate.staging, in: migrate.namespace).map(PersistentVolumeClaim.init)
        return current == nil || current?.uid != context.facts[MigrateFact.stagingClaimUID]
    }

    func apply(_ context: StepContext) async throws {
        guard let object = try await context.recent(.persistentVolumeClaims, named: migrate.staging, in: migrate.namespace) else { return }
        try await migrate.delete(.persistentVolumeClaims, object, context, timeout: context.timeLeft(of: estimate))
    }
}

// MARK: - the copies

/// `warm-copy`, `final-copy` or `verify-copy`: creates the pass's pod (or adopts the one a
/// resumed run finds), follows its log for progress, waits for it to finish, judges its exit
/// code and log (``CopyVerdict``), journals the result, and deletes the pod (uid) before the
/// step counts as done.
struct CopyStep: Step {
    let migrate: MigrateRun
    let pass: CopyPod.Pass
    /// How long the copy pod may stay unschedulable (`PodScheduled=False`, reason
    /// `Unschedulable`: a nodeSelector no node matches, a taint it does not tolerate, no room)
    /// before the step stops with the scheduler's message. The scheduler retries meanwhile, so a
    /// pod that waits only for room the workload's pod frees as it goes still starts.
    var unschedulableGrace: Duration = .seconds(120)
    var id: String { pass.rawValue + "-copy" }
    var mutates: Bool { true }
    /// The warm copy runs while the workload does: before the window.
    var needsWindow: Bool { pass != .warm }
    var summary: String {
        switch pass {
        case .warm: "copy the data while the workload runs (rsync in pod \(migrate.pod(.warm).name), on the volume's node)"
        case .final: "copy what changed since, with the workload down (pod \(migrate.pod(.final).name)); only exit 0 is accepted"
        case .verify: "compare every file's content and metadata (rsync -n -c, pod \(migrate.pod(.verify).name)): nothing may differ"
        }
    }
    var estimate: Duration {
        let t = migrate.plan.timeouts
        return (pass == .warm ? t.warmCopy : pass == .final ? t.finalCopy : t.verifyCopy).duration
    }
    /// Once the warm copy has measured its rate, the passes after it are estimated from it, at
    /// least a minute, at most the pass's timeout: the final copy as the warm copy's bytes again
    /// (it copies only what changed since, so this bounds it), the verify pass as twice that (it
    /// reads every byte of both sides). The window check at scale-down holds these, not the
    /// timeouts, which a window rarely holds (2h each in the devpod plan).
    func estimate(given facts: Facts) -> Duration {
        guard pass != .warm, let bytes = facts[MigrateFact.bytes(.warm)], let rate = facts[MigrateFact.rate(.warm)], rate > 0 else { return estimate }
        let reads = pass == .verify ? 2 : 1
        return min(estimate, max(.seconds(60), .seconds(reads * bytes / rate + 1)))
    }
    var permissions: [KubeClient.AccessQuestion] {
        let ns = migrate.namespace
        return ["get", "create", "delete", "list", "watch"].map { .init($0, .pods, namespace: ns) } + [.init("get", .pods, namespace: ns, subresource: "log")]
            + (pass == .warm ? [.init("list", .volumeAttachments)] : [])
    }

    /// Why this pass does not run, from the plan.
    private var skippedByPlan: String? {
        if pass == .warm, !migrate.plan.copy.warm { return "copy.warm is false" }
        if pass == .verify, migrate.plan.copy.verify == .none { return "copy.verify is none" }
        return nil
    }

    func rehearse(_ context: StepContext) async throws -> [CheckResult] {
        guard skippedByPlan == nil else { return [] }
        return [await CheckResult.attempt("create the copy pod \(migrate.pod(pass).name)") {
            try await context.client.create(.pods, in: migrate.namespace, migrate.pod(pass).manifest, dryRun: true)
        }]
    }

    func observe(_ context: StepContext) async throws -> Bool {
        if context.facts[MigrateFact.skipped(pass)] != nil { return true }
        if let reason = skippedByPlan {
            try await skip(context, because: reason)
            return true
        }
        guard context.facts[MigrateFact.exitCode(pass)] != nil else { return false }
        return try await context.read(.pods, named: migrate.pod(pass).name, in: migrate.namespace) == nil
    }

    private func skip(_ context: StepContext, because reason: String) async throws {
        try await context.remember(MigrateFact.skipped(pass), reason)
        try await context.note("\(id) skipped: \(reason)")
    }

    func apply(_ context: StepContext) async throws {
        guard context.facts[MigrateFact.exitCode(pass)] == nil else { return }   // judged: await deletes the pod
        let name = migrate.pod(pass).name
        if let existing = try await context.recent(.pods, named: name, in: migrate.namespace) {
            // The pod whose result stopped the run is replaced: 'resume' copies again.
            guard ObjectMeta(existing["metadata"] ?? [:]).uid == context.facts[MigrateFact.refusedPod(pass)] else { return }   // adopted
            try await migrate.delete(.pods, existing, context, timeout: .seconds(120))
        }
        var node: String?
        if pass == .warm {
            node = try await attachedNode(context)
            guard node != nil else {
                return try await skip(context, because: "the old volume is attached to no node and no pod mounts the claim, so the copy cannot be pinned next to it")
            }
        }
        // What delete-claim's last look compares with: the workloads as the final copy begins.
        if pass == .final { try await migrate.rememberSource(context) }
        let manifest = migrate.pod(pass, node: node).manifest
        let created = try await context.mutate("POST", ResourceType.pods.path(namespace: migrate.namespace), changing: [.pods]) {
            try await context.client.create(.pods, in: migrate.namespace, manifest, dryRun: context.dryRun)
        }
        if !context.dryRun { context.saw(created, .pods, named: name, in: migrate.namespace) }
    }

    /// The node the old volume is attached to (its VolumeAttachment), else the node of a pod
    /// that mounts the claim.
    private func attachedNode(_ context: StepContext) async throws -> String? {
        if let volume = context.facts[ClaimFact.volume] {
            let attachments = try await context.client.list(.volumeAttachments).items
            if let node = attachments.first(where: {
                $0[path: "spec", "source", "persistentVolumeName"]?.stringValue == volume && $0[path: "status", "attached"]?.boolValue == true
            })?[path: "spec", "nodeName"]?.stringValue { return node }
        }
        return try await migrate.claimRun.target.podsMountingClaim(context.client).compactMap(\.nodeName).first
    }

    func await(_ context: StepContext) async throws {
        if context.facts[MigrateFact.skipped(pass)] != nil { return }
        let name = migrate.pod(pass).name, namespace = migrate.namespace
        if context.facts[MigrateFact.exitCode(pass)] == nil {
            // A resumed run comes straight here when the pod was made before it stopped: a pod
            // refused then, or gone since, is replaced first, as apply does on a first try.
            let current = try await context.recent(.pods, named: name, in: namespace)
            if current.map({ ObjectMeta($0["metadata"] ?? [:]).uid == context.facts[MigrateFact.refusedPod(pass)] }) ?? true {
                try await apply(context)
                if context.facts[MigrateFact.skipped(pass)] != nil { return }
            }
            let finished = try await follow(name, context)
            try await judge(finished.pod, log: finished.log, context)
        }
        // Judged: the pod goes before the step counts as done (and before any claim is deleted).
        if let pod = try await context.client.getIfPresent(.pods, named: name, in: namespace) {
            try await migrate.delete(.pods, pod, context, timeout: .seconds(120))
        }
    }

    /// Waits for the pod to start, follows its log (progress lines as the step's progress), and
    /// waits for it to finish; all within the step's timeout.
    private func follow(_ name: String, _ context: StepContext) async throws -> (pod: JSON, log: RsyncLog) {
        let client = context.client, namespace = migrate.namespace, since = ContinuousClock.now
        context.waiting("the \(pass.rawValue) copy pod \(name) to start")
        let deadline = context.deadline(estimate)
        func left() -> Duration { max(deadline - .now, .milliseconds(1)) }
        let hasStarted: @Sendable (JSON?) -> Bool = { pod in
            ["Running", "Succeeded", "Failed"].contains(pod.map { Pod($0).phase } ?? "") || pod == nil || pod.flatMap(Self.cannotStart) != nil
        }
        var seen = context.kept(.pods, named: name, in: namespace)?.object
        var started: JSON?
        do {
            // First within the grace an unschedulable pod has, then (when it is not that) the rest.
            started = try await client.wait(for: .pods, named: name, in: namespace, from: seen, timeout: min(left(), unschedulableGrace),
                                            describedAs: "copy pod \(name) to start", until: hasStarted)
        } catch let timedOut as WaitTimedOut where deadline - .now > .zero {
            seen = timedOut.lastSeen
            if let pod = seen, let why = Self.unschedulable(pod) {
                try await context.remember(MigrateFact.refusedPod(pass), Pod(pod).uid)
                throw RepaveError(.copyUnschedulable, "\(id): the copy pod \(name) has not been scheduled for \(PlanDuration(seconds: Double(unschedulableGrace.components.seconds))): \(why)",
                                  hint: "check copy.nodeSelector, copy.tolerations and copy.resources against the nodes (kubectl describe pod -n \(namespace) \(name)); 'repave resume RUN' tries again, 'repave abort RUN' puts everything back")
            }
            started = try await client.wait(for: .pods, named: name, in: namespace, from: seen, timeout: left(), describedAs: "copy pod \(name) to start", until: hasStarted)
        }
        guard let started else {
            throw RepaveError(.copyFailed, "\(id): the copy pod \(name) is gone before it finished", hint: "'repave resume RUN' copies again")
        }
        // An image that cannot be pulled or a container that cannot be made waits for ever: the
        // step stops at once instead of at its timeout (hours for a warm copy).
        if let reason = Self.cannotStart(started) {
            try await context.remember(MigrateFact.refusedPod(pass), Pod(started).uid)
            throw RepaveError(.copyImageUnsuitable, "\(id): the copy pod \(name) cannot start: \(reason)",
                              hint: "check copy.image and copy.imagePullPolicy (kubectl describe pod -n \(namespace) \(name)); 'repave resume RUN' tries again, 'repave abort RUN' puts everything back")
        }
        // A pod the kubelet refused to run (phase Failed before its container ran: OutOfcpu,
        // NodeAffinity on the node it was pinned to) has no exit code to judge.
        if Pod(started).phase == "Failed", CopyPod.exitCode(of: started) == nil {
            try await context.remember(MigrateFact.refusedPod(pass), Pod(started).uid)
            let status = [started[path: "status", "reason"]?.stringValue, started[path: "status", "message"]?.stringValue].compactMap { $0 }
            throw RepaveError(.copyFailed, "\(id): the copy pod \(name) failed before its container ran" + (status.isEmpty ? "" : ": " + status.joined(separator: ": ")),
                              hint: "kubectl describe pod -n \(namespace) \(name); 'repave resume RUN' tries again, 'repave abort RUN' puts everything back")
        }
        context.waiting("the \(pass.rawValue) copy (pod \(name))")
        let pass = self.pass
        var log = try await withThrowingTaskGroup(of: RsyncLog?.self) { group in
            group.addTask {
                // A follow can end before the container does (the kubelet or a proxy closing the
                // stream, the fault tests' `log-ended`): when the pod does not show its container
                // ended soon after (the kubelet reports it a moment after the stream closes), the
                // log is followed again from its start, so nothing read before is lost or read twice.
                // A stream that fails (refused, dropped, a 5xx or 429 head) is a read that failed:
                // followed again a second later, not the step's end (the real-node fault matrix
                // stopped a run on a refused log connection).
                var reported = ContinuousClock.now - .seconds(2)
                while true {
                    var log = RsyncLog()
                    do {
                        for try await line in client.logLines(ofPod: name, in: namespace, container: CopyPod.container) {
                            if case .progress(let progress) = log.read(line), ContinuousClock.now - reported >= .seconds(1) {
                                reported = .now
                                context.progressing(Self.describe(progress, pass: pass), since: since)
                            }
                        }
                    } catch let error as CurlError where error.isConnectionError {
                        context.logger.info("the copy log stream failed; following it again", metadata: ["pod": "\(name)", "error": "\(error)"])
                        try await Task.sleep(for: .seconds(1))
                        continue
                    } catch let error as KubeAPIError where error.httpStatus >= 500 || error.httpStatus == 429 {
                        context.logger.info("the copy log stream failed; following it again", metadata: ["pod": "\(name)", "error": "\(error)"])
                        try await Task.sleep(for: .seconds(1))
                        continue
                    }
                    do {
                        _ = try await client.wait(for: .pods, named: name, in: namespace, timeout: .seconds(5), describedAs: "copy pod \(name) to finish") {
                            $0.map { CopyPod.exitCode(of: $0) != nil || ["Succeeded", "Failed"].contains(Pod($0).phase) } ?? true
                        }
                        return log
                    } catch is WaitTimedOut {
                        continue   // the container still runs: follow again
                    }
                }
            }
            group.addTask {
                try await Task.sleep(for: left())
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            guard let first else {
                throw RepaveError(.copyFailed, "\(id): the copy did not finish within \(estimate)",
                                  hint: "raise timeouts.\(pass.rawValue)Copy in the plan or look at the pod (kubectl logs -n \(namespace) \(name)), then 'repave resume RUN'")
            }
            return first
        }
        let pod = try await client.wait(for: .pods, named: name, in: namespace, timeout: max(left(), .seconds(30)), describedAs: "copy pod \(name) to finish") {
            $0.map { CopyPod.exitCode(of: $0) != nil } ?? true
        }
        guard let pod else { throw RepaveError(.copyFailed, "\(id): the copy pod \(name) is gone before it finished", hint: "'repave resume RUN' copies again") }
        // The follow may have ended a moment before the container did, which then exited within
        // the look above: a log without its end is read again, whole, from the finished
        // container (up to three times; a log that rsync itself left without its end stays as it
        // is, and is judged so).
        for _ in 0..<3 where log.isCut(for: pass) {
            var whole = RsyncLog()
            for try await line in client.logLines(ofPod: name, in: namespace, container: CopyPod.container, follow: false) { whole.read(line) }
            if !whole.isCut(for: pass) { log = whole }
        }
        return (pod, log)
    }

    /// Why the scheduler cannot place the pod (its `PodScheduled` condition's message), when it
    /// says so.
    static func unschedulable(_ pod: JSON) -> String? {
        guard let condition = pod[path: "status", "conditions"]?.arrayValue?.first(where: { $0["type"]?.stringValue == "PodScheduled" }),
              condition["status"]?.stringValue == "False", condition["reason"]?.stringValue == "Unschedulable" else { return nil }
        return condition["message"]?.stringValue ?? "Unschedulable"
    }

    /// Why the pod's container cannot start (`ErrImagePull: …`), when the kubelet says it will not.
    static func cannotStart(_ pod: JSON) -> String? {
        let stuck: Set<String> = ["ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError"]
        for status in pod[path: "status", "containerStatuses"]?.arrayValue ?? [] {
            guard let reason = status[path: "state", "waiting", "reason"]?.stringValue, stuck.contains(reason) else { continue }
            return reason + (status[path: "state", "waiting", "message"]?.stringValue.map { ": " + $0 } ?? "")
        }
        return nil
    }

    /// `warm copy: 1.2 GiB, 45%, 80.0 MiB/s, 0:00:12 left`.
    static func describe(_ progress: RsyncProgress, pass: CopyPod.Pass) -> String {
        let eta = progress.transferred == nil ? progress.eta.map { String(format: ", %d:%02d:%02d left", $0 / 3600, $0 / 60 % 60, $0 % 60) } ?? "" : ""
        return String(format: "%@ copy: %@, %d%%, %@/s", pass.rawValue, ByteCountFormatter.string(fromByteCount: progress.bytes, countStyle: .binary),
                      progress.percent, ByteCountFormatter.string(fromByteCount: Int64(progress.bytesPerSecond), countStyle: .binary)) + eta
    }

    /// The verdict on a finished pod: journaled when accepted; a refusal stops the run and marks
    /// the pod for replacement on resume.
    private func judge(_ pod: JSON, log: RsyncLog, _ context: StepContext) async throws {
        let name = migrate.pod(pass).name
        guard let code = CopyPod.exitCode(of: pod) else { return }
        let verdict = CopyVerdict(pass: pass, exitCode: code, log: log)
        let versionRecorded = context.facts[MigrateFact.rsyncVersion] != nil
        if let error = verdict.error(pass: pass, log: log, pod: name, namespace: migrate.namespace, versionRecorded: versionRecorded) {
            try await context.remember(MigrateFact.refusedPod(pass), Pod(pod).uid)
            throw error
        }
        if !versionRecorded, let version = log.version { try await context.remember(MigrateFact.rsyncVersion, version) }
        if case .accepted(_, let files) = verdict, !files.isEmpty {
            try await context.note("\(id): rsync exited \(code) (the volume is live) and named \(files.prefix(10).joined(separator: ", "))\(files.count > 10 ? " and \(files.count - 10) more" : "")")
        }
        if let stats = log.stats {
            try await context.remember(MigrateFact.files(pass), stats.files)
            try await context.remember(MigrateFact.bytes(pass), Int(stats.transferredSize))
        }
        if let rate = log.lastProgress?.bytesPerSecond { try await context.remember(MigrateFact.rate(pass), Int(rate)) }
        try await context.remember(MigrateFact.exitCode(pass), Int(code))
    }

    /// The pod, whatever its state.
    func undo(_ context: StepContext) async throws -> [String] {
        let name = migrate.pod(pass).name
        guard let pod = try await context.client.getIfPresent(.pods, named: name, in: migrate.namespace),
              Pod(pod).metadata.labels[CopyPod.runLabel] == migrate.claimRun.run else { return [] }
        try await migrate.delete(.pods, pod, context, timeout: .seconds(120))
        return ["copy pod \(name) deleted"]
    }
}

/// After scale-down: the old volume's VolumeAttachments are gone, so an RWO volume can be
/// attached for the final copy wherever its pod lands. (The volume is the one `pv.name` names:
/// in a rollback's view of the facts, the new volume.)
struct AwaitDetach: Step {
    let claimRun: ClaimRun
    var id: String { "await-detach" }
    var mutates: Bool { false }
    var summary: String { "wait until the old volume is detached (no VolumeAttachment left)" }
    var estimate: Duration { claimRun.plan.timeouts.scaleDown.duration }
    var permissions: [KubeClient.AccessQuestion] { [.init("list", .volumeAttachments), .init("watch", .volumeAttachments)] }

    private func attachments(_ context: StepContext) async throws -> [JSON] {
        guard let volume = context.facts[ClaimFact.volume] else { return [] }
        return try await context.client.list(.volumeAttachments).items.filter { $0[path: "spec", "source", "persistentVolumeName"]?.stringValue == volume }
    }

    func observe(_ context: StepContext) async throws -> Bool { try await attachments(context).isEmpty }

    func apply(_ context: StepContext) async throws {}

    func await(_ context: StepContext) async throws {
        let left = try await attachments(context)
        context.waiting("the old volume to detach (\(left.map { ObjectMeta($0["metadata"] ?? [:]).name }.joined(separator: ", ")))")
        for attachment in left {
            let meta = ObjectMeta(attachment["metadata"] ?? [:])
            do {
                try await context.client.wait(for: .volumeAttachments, named: meta.name, from: attachment, timeout: context.timeLeft(of: estimate),
                                              describedAs: "VolumeAttachment \(meta.name) to be gone") { $0.map { ObjectMeta($0["metadata"] ?? [:]).uid != meta.uid } ?? true }
            } catch is WaitTimedOut {
                throw RepaveError(.detachStuck, "the volume is still attached (VolumeAttachment \(meta.name)) after \(estimate)",
                                  hint: "something still uses it on node \(attachment[path: "spec", "nodeName"]?.stringValue ?? "?"); '\(context.continueCommand) RUN' waits again" + (context.mayAbort ? ", 'repave abort RUN' puts everything back" : ""))
            }
        }
    }
}
