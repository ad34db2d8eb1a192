import Foundation
import Journal
import KubeAPI

/// `strategy: migrate` (issue 14): the claim's data copied by rsync pods onto a staging claim of
/// the new class (warm while the workload runs, then the delta with it down), proved by a
/// checksum pass, and the claim's name moved onto the copied volume. The old volume is retained
/// until `repave finalize`. Its steps are recreate's where they are the same (``ClaimRun``).
public struct MigrateStrategy: Strategy {
    public let plan: MigratePlan

    public init(plan: MigratePlan) {
        self.plan = plan
    }

    public var kind: String { PlanStrategy.migrate.rawValue }
    public var planName: String { plan.name }
    public var canonicalPlan: Data { plan.canonicalJSON() }
    public var window: PlanWindow? { plan.window }
    public var kubeContext: String? { plan.context }
    public var target: MaintenanceTarget { MaintenanceTarget(namespace: plan.target.namespace, name: plan.target.claim) }
    public var claim: ClaimTarget { ClaimTarget(namespace: plan.target.namespace, claim: plan.target.claim, workloads: plan.target.workloads) }

    public func steps(for run: RunInfo) -> [any Step] {
        let plan = self.plan
        let claimRun = ClaimRun(plan: plan, run: run) { MigrateStrategy(plan: plan).permissions() }
        let migrate = MigrateRun(plan: plan, claimRun: claimRun)
        let staging = MigrateRun.stagingVolume
        return [
            // Steps 1-7 may run before the window opens: the workload keeps running through them.
            Preflight(claimRun: claimRun, extra: migrate.checks), SaveManifests(claimRun: claimRun), EnsureStorageClass(claimRun: claimRun, needsWindow: false),
            RetainOldVolume(claimRun: claimRun, needsWindow: false), CreateStagingClaim(migrate: migrate),
            RetainOldVolume(claimRun: claimRun, id: "retain-staging-volume", volume: staging, needsWindow: false),
            CopyStep(migrate: migrate, pass: .warm), ScaleDown(claimRun: claimRun), AwaitDetach(claimRun: claimRun),
            CopyStep(migrate: migrate, pass: .final), CopyStep(migrate: migrate, pass: .verify), DeleteStagingClaim(migrate: migrate),
            DeleteClaim(claimRun: claimRun, lastLook: migrate.requireCopyCurrent), PrebindVolume(claimRun: claimRun, volume: staging), CreateClaim(claimRun: claimRun, volume: staging),
            AwaitBound(claimRun: claimRun, volume: staging), ScaleUp(claimRun: claimRun), Verify(claimRun: claimRun),
            ReleaseOldVolume(claimRun: claimRun, id: "keep-old-volume"),
        ]
    }

    public func describe(file: String) -> String {
        let plan = self.plan, copy = plan.copy
        var lines = ["plan \(plan.name) (\(file))", "digest sha256:\(plan.digest)"]
        lines.append("strategy:      migrate (the data copied onto a staging claim of the new class, verified, and the claim's name moved onto it)")
        lines.append("target:        \(plan.target.namespace)/\(plan.target.claim)" + (plan.context.map { " in context \($0)" } ?? " in the current context"))
        lines.append("workloads:     " + (plan.target.workloads.isEmpty ? "discovered from the pods that mount the claim" : plan.target.workloads.map { "\($0.kind.rawValue)/\($0.name)" }.joined(separator: ", ")))
        let parameters = plan.storageClass.parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        lines.append("storage class: \(plan.storageClass.name) (\(plan.storageClass.provisioner); \(parameters); reclaim \(plan.storageClass.reclaimPolicy); \(plan.storageClass.volumeBindingMode); expansion \(plan.storageClass.allowVolumeExpansion ? "on" : "off"); \(plan.storageClass.ensure ? "created if absent" : "must exist"))")
        lines.append("copy:          image \(copy.image) (\(copy.imagePullPolicy)); warm \(copy.warm ? "yes" : "no"); verify \(copy.verify.rawValue)"
            + (copy.nodeSelector.isEmpty ? "" : "; nodeSelector \(copy.nodeSelector.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))")
            + (copy.tolerations.isEmpty ? "" : "; \(copy.tolerations.count) toleration\(copy.tolerations.count == 1 ? "" : "s")")
            + (copy.resources.isEmpty ? "" : "; resources set")
            + (copy.extraArgs.isEmpty ? "" : "; extraArgs \(copy.extraArgs.joined(separator: " "))"))
        lines.append("old volume:    \(plan.oldVolume.rawValue) (kept until 'repave finalize')")
        lines.append("acknowledged:  " + (plan.acknowledge.isEmpty ? "none" : plan.acknowledge.map(\.rawValue).joined(separator: ", ")))
        if let git = plan.gitPreflight {
            let source = git.report.map { "report \($0) (at most \(git.maxReportAge) old)" } ?? "paths \(git.paths.joined(separator: ", "))"
            lines.append("git preflight: \(source); require \(git.require.map(\.rawValue).joined(separator: ", "))")
        } else {
            lines.append("git preflight: none (optional for migrate: the data is copied)")
        }
        lines.append(PlanWindow.describe(plan.window, none: "none (run refuses nothing on time)") + " (the staging claim and the warm copy may run before it opens)")
        let t = plan.timeouts
        lines.append("timeouts:      warmCopy \(t.warmCopy), finalCopy \(t.finalCopy), verifyCopy \(t.verifyCopy), scaleDown \(t.scaleDown), claimDeletion \(t.claimDeletion), bind \(t.bind), rollout \(t.rollout), verify \(t.verify)")
        lines.append("verify:        Longhorn volume in \(plan.verify.namespace) with \(plan.verify.replicas) replicas, \(plan.verify.robustness)")
        return lines.joined(separator: "\n") + "\n"
    }

    /// The steps in order, each with what it does and how long it may take.
    public func runbook(planFile: String, evidence: RunbookEvidence?) -> String {
        let ns = plan.target.namespace, claim = plan.target.claim
        var text = """
            # Runbook: migrate \(ns)/\(claim) to storageclass \(plan.storageClass.name)

            Plan `\(planFile)` (digest `sha256:\(plan.digest)`). The data is copied by `\(plan.copy.image)` pods
            onto a staging claim; the old volume is kept until `repave finalize RUN`.

            1. `repave plan \(planFile) --server-dry-run` — the preflight and every change, rehearsed.
            2. `repave run \(planFile)` — the steps below. Interrupted: `repave resume RUN`. Before
               `delete-claim` (the point of no return): `repave abort RUN` deletes the staging claim, its volume
               and the copy pods, and scales the workloads back up.
            3. After the swap, if the new volume is not right: `repave rollback RUN` puts the claim back on the
               old volume and class (what was written since the swap stays on the new volume). Once satisfied:
               `repave finalize RUN` deletes the volume the claim no longer uses.

            | step | what it does | at most |
            |---|---|---|

            """
        for step in steps(for: .planning) {
            text += "| `\(step.id)`\(step.isPointOfNoReturn ? " (point of no return)" : "") | \(step.summary) | \(PlanDuration(seconds: step.estimate.inSeconds)) |\n"
        }
        return text
    }

    public func liveState(_ client: KubeClient) async throws -> [String: String] {
        try await claim.liveState(client, lease: target)
    }

    /// The claim's uid, when it exists.
    public func bindings(_ client: KubeClient) async throws -> [String: String] {
        try await claim.bindings(client)
    }

    /// Recreate's summary, the old volume kept for `repave finalize`, and what each copy did.
    public func summary(of run: FinishedRun, client: KubeClient) async -> RunSummary {
        await ClaimSummary.summary(of: run, plan: plan, client: client, headline: "migrated to storageclass \(plan.storageClass.name)",
                                   oldVolume: "retained with the data as it was; 'repave finalize \(run.directory)' deletes it") { facts in
            var lines: [String] = []
            for pass in CopyPod.Pass.allCases {
                if let reason = facts[MigrateFact.skipped(pass)] { lines.append("\(pass.rawValue) copy: skipped (\(reason))"); continue }
                guard let code = facts[MigrateFact.exitCode(pass)] else { continue }
                let bytes = facts[MigrateFact.bytes(pass)].map { ByteCountFormatter.string(fromByteCount: Int64($0), countStyle: .binary) } ?? "?"
                let rate = facts[MigrateFact.rate(pass)].map { ", " + ByteCountFormatter.string(fromByteCount: Int64($0), countStyle: .binary) + "/s" } ?? ""
                lines.append(pass == .verify ? "verify copy: exit \(code), no differences" : "\(pass.rawValue) copy: exit \(code), \(facts[MigrateFact.files(pass)].map(String.init) ?? "?") files, \(bytes) sent\(rate)")
            }
            if let version = facts[MigrateFact.rsyncVersion] { lines.append("rsync:      \(version)") }
            return lines
        }
    }
}

/// A migrate always keeps its old volume (`retain-until-verified`) for `repave finalize`.
extension MigrateStrategy: KeepsVolume {
    public func keptVolume(_ facts: Facts, run: String) -> KeptVolume? {
        KeptVolume.old(facts, run: run, longhornNamespace: plan.verify.namespace)
    }
}
