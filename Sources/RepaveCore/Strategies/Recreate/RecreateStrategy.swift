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
        let recreate = RecreateRun(plan: plan, run: run)
        return [
            Preflight(recreate: recreate), SaveManifests(recreate: recreate), EnsureStorageClass(recreate: recreate),
            RetainOldVolume(recreate: recreate), ScaleDown(recreate: recreate), DeleteClaim(recreate: recreate),
            CreateClaim(recreate: recreate), AwaitBound(recreate: recreate), ScaleUp(recreate: recreate),
            Verify(recreate: recreate), ReleaseOldVolume(recreate: recreate),
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
        guard let object = try await client.getIfPresent(.persistentVolumeClaims, named: plan.target.claim, in: plan.target.namespace) else { return [:] }
        return [claim.bindingKey: PersistentVolumeClaim(object).uid]
    }

    /// Old and new claim uid, class, the Longhorn volume's replicas and robustness now, the
    /// downtime and the whole run as the journal measured them, what became of the old volume,
    /// and the notes the run journaled for the operator.
    public func summary(of run: FinishedRun, client: KubeClient) async -> RunSummary {
        var summary = RunSummary(headline: "\(target.description) recreated on storageclass \(plan.storageClass.name) (run \(run.directory))",
                                 fields: ["claim": target.description, "storageClass": plan.storageClass.name])
        guard let history = try? RunHistory(run.records) else { return summary }
        let facts = history.facts
        let times = RunbookEvidence.PreviousRun(directory: run.directory, records: run.records.map { ($0.time, $0.kind, $0.step) })
        var lines = ["claim:      old uid \(facts[ClaimFact.claimUID] ?? "?") -> new uid \(facts[RecreateFact.newClaimUID] ?? "?")"]
        // What verify read, when nothing changed after it in this process; else read now.
        func object(_ type: ResourceType, _ name: String, _ namespace: String) async -> JSON? {
            if let read = run.lastRead(type, named: name, in: namespace) { return read }
            return try? await client.getIfPresent(type, named: name, in: namespace)
        }
        let claim = await object(.persistentVolumeClaims, plan.target.claim, plan.target.namespace).map(PersistentVolumeClaim.init)
        if let volume = claim?.volumeName,
           let longhorn = await object(.longhornVolumes, volume, plan.verify.namespace).map(LonghornVolume.init) {
            lines.append("volume:     \(volume) on \(claim?.storageClassName ?? "?"): \(longhorn.numberOfReplicas) replicas, \(longhorn.robustness.isEmpty ? "robustness unknown" : longhorn.robustness)")
        }
        if let measured = run.measured {
            lines.append(String(format: "downtime:   %.1fs (scale-down to the workloads back); whole run %.1fs", measured.downtime.inSeconds, measured.total.inSeconds))
        } else {
            lines.append("downtime:   \(times.downtime.map(\.description) ?? "none") (scale-down to the workloads back, from the journal's whole-second times); whole run \(times.total)")
        }
        if let old = facts[ClaimFact.volume] {
            lines.append("old volume: \(old) " + (facts[RecreateFact.oldVolumeLost].map { "GONE: \($0)" }
                ?? (plan.oldVolume == .delete ? "deleted" : "retained (delete it later: repave finalize \(run.directory))")))
        }
        for case (_, .note(let fields)) in history.entries { if let note = fields["note"] { lines.append("note:       \(note)") } }
        summary.lines = lines
        return summary
    }
}

/// A recreate that kept its old volume (`retain-until-verified`) leaves it for `repave finalize`.
extension RecreateStrategy: KeepsVolume {
    public func keptVolume(_ facts: Facts, run: String) -> KeptVolume? {
        guard plan.oldVolume != .delete else { return nil }
        return KeptVolume.old(facts, run: run, longhornNamespace: plan.verify.namespace)
    }
}

/// What every recreate step knows: the plan, the run, where manifests go, the claim, and the
/// fact keys the steps share through the journal.
struct RecreateRun: Sendable {
    let plan: RecreatePlan
    let run: String
    let runDirectory: String
    let target: ClaimTarget
    /// This process has just checked every permission (`run` does, before it makes a journal):
    /// the preflight step does not ask the API server a second time.
    let permissionsChecked: Bool

    init(plan: RecreatePlan, run: RunInfo) {
        self.plan = plan
        self.run = run.id
        runDirectory = run.directory
        target = ClaimTarget(namespace: plan.target.namespace, claim: plan.target.claim, workloads: plan.target.workloads)
        permissionsChecked = run.permissionsChecked
    }

    var namespace: String { plan.target.namespace }
    var claim: String { plan.target.claim }
    var manifests: ClaimManifests { ClaimManifests(target: target, runDirectory: runDirectory, longhornNamespace: plan.verify.namespace) }
    static let runAnnotation = "repave/run-id"

    /// The claim as save-manifests saved it (read off the cooperative pool).
    func savedClaim() async throws -> JSON {
        let file = runDirectory + "/manifests/persistentvolumeclaim-\(claim).json"
        return try JSON.decode(try await offPool("saved claim read") { try Data(contentsOf: URL(fileURLWithPath: file)) })
    }
    static let replicasAnnotation = "repave/original-replicas"

    func refuse(_ code: ErrorCode, _ message: String, hint: String) -> RepaveError {
        RepaveError(code, message, hint: hint)
    }
}

/// The facts only recreate journals (the shared ones are ``ClaimFact``).
public enum RecreateFact {
    public static let newClaimUID = Fact<String>("newclaim.uid")
    /// Why the retained old volume is gone, when it vanished during the run (not by repave's hand).
    public static let oldVolumeLost = Fact<String>("pv.lost")
}
