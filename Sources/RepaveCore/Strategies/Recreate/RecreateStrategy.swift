import Blocking
import Foundation
import Journal
import KubeAPI

/// DESIGN.md's `recreate`: the claim deleted and provisioned again under the same name from the
/// plan's class, empty, after a git check; the old volume retained until the new one verifies.
public struct RecreateStrategy: Strategy {
    public let plan: RecreatePlan

    public init(plan: RecreatePlan) {
        self.plan = plan
    }

    public var kind: String { PlanStrategy.recreate.rawValue }
    public var planName: String { plan.name }
    public var canonicalPlan: Data { plan.canonicalJSON() }
    public var window: PlanWindow? { plan.window }
    public var kubeContext: String? { plan.context }
    public var target: MaintenanceTarget { MaintenanceTarget(namespace: plan.target.namespace, name: plan.target.claim) }
    public var claim: ClaimTarget { ClaimTarget(namespace: plan.target.namespace, claim: plan.target.claim, workloads: plan.target.workloads) }

    public func steps(for run: RunInfo) -> [any Step] {
        let recreate = ClaimRun(plan: plan, run: run)
        return [
            Preflight(claimRun: recreate), SaveManifests(claimRun: recreate), EnsureStorageClass(claimRun: recreate),
            RetainOldVolume(claimRun: recreate), ScaleDown(claimRun: recreate), DeleteClaim(claimRun: recreate),
            CreateClaim(claimRun: recreate), AwaitBound(claimRun: recreate), ScaleUp(claimRun: recreate),
            Verify(claimRun: recreate), ReleaseOldVolume(claimRun: recreate),
        ]
    }

    public func describe(file: String) -> String {
        let plan = self.plan
        var lines = ["plan \(plan.name) (\(file))", "digest sha256:\(plan.digest)"]
        lines.append("target:        \(plan.target.namespace)/\(plan.target.claim)" + (plan.context.map { " in context \($0)" } ?? " in the current context"))
        lines.append("workloads:     " + (plan.target.workloads.isEmpty ? "discovered from the pods that mount the claim" : plan.target.workloads.map { "\($0.kind.rawValue)/\($0.name)" }.joined(separator: ", ")))
        let parameters = plan.storageClass.parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        lines.append("storage class: \(plan.storageClass.name) (\(plan.storageClass.provisioner); \(parameters); reclaim \(plan.storageClass.reclaimPolicy); \(plan.storageClass.volumeBindingMode); expansion \(plan.storageClass.allowVolumeExpansion ? "on" : "off"); \(plan.storageClass.ensure ? "created if absent" : "must exist"))")
        lines.append("old volume:    \(plan.oldVolume.rawValue)")
        lines.append("acknowledged:  " + (plan.acknowledge.isEmpty ? "none" : plan.acknowledge.map(\.rawValue).joined(separator: ", ")))
        if let git = plan.gitPreflight {
            let source = git.report.map { "report \($0) (at most \(git.maxReportAge) old)" } ?? "paths \(git.paths.joined(separator: ", "))"
            lines.append("git preflight: \(source); require \(git.require.map(\.rawValue).joined(separator: ", "))" + (git.ignore.isEmpty ? "" : "; ignore \(git.ignore.joined(separator: ", "))"))
        } else {
            lines.append("git preflight: none (nothing on the volume is checked)")
        }
        lines.append(PlanWindow.describe(plan.window, none: "none (run refuses nothing on time)"))
        let t = plan.timeouts
        lines.append("timeouts:      scaleDown \(t.scaleDown), claimDeletion \(t.claimDeletion), bind \(t.bind), rollout \(t.rollout), verify \(t.verify)")
        lines.append("verify:        Longhorn volume in \(plan.verify.namespace) with \(plan.verify.replicas) replicas, \(plan.verify.robustness)")
        return lines.joined(separator: "\n") + "\n"
    }

    public func runbook(planFile: String, evidence: RunbookEvidence?) -> String {
        Self.runbook(for: plan, planFile: planFile, evidence: evidence)
    }

    public func liveState(_ client: KubeClient) async throws -> [String: String] {
        try await claim.liveState(client, lease: target)
    }

    /// The claim's uid, when it exists.
    public func bindings(_ client: KubeClient) async throws -> [String: String] {
        try await claim.bindings(client)
    }

    /// Old and new claim uid, class, the Longhorn volume's replicas and robustness now, the
    /// downtime and the whole run as the journal measured them, what became of the old volume,
    /// and the notes the run journaled for the operator.
    public func summary(of run: FinishedRun, client: KubeClient) async -> RunSummary {
        await ClaimSummary.summary(of: run, plan: plan, client: client, headline: "recreated on storageclass \(plan.storageClass.name)",
                                   oldVolume: plan.oldVolume == .delete ? "deleted" : "retained (delete it later: repave finalize \(run.directory))")
    }
}

/// A recreate that kept its old volume (`retain-until-verified`) leaves it for `repave finalize`.
extension RecreateStrategy: KeepsVolume {
    public func keptVolume(_ facts: Facts, run: String) -> KeptVolume? {
        guard plan.oldVolume != .delete else { return nil }
        return KeptVolume.old(facts, run: run, longhornNamespace: plan.verify.namespace)
    }
}

/// The facts only recreate journals (the shared ones are ``ClaimFact``).
public enum RecreateFact {
    public static let newClaimUID = Fact<String>("newclaim.uid")
    /// Why the retained old volume is gone, when it vanished during the run (not by repave's hand).
    public static let oldVolumeLost = Fact<String>("pv.lost")
}
