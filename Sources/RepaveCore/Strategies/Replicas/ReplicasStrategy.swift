import Foundation
import Journal
import KubeAPI

/// `strategy: replicas`: the claim's Longhorn volume gets more (or fewer) replicas in place —
/// `spec.numberOfReplicas` patched, Longhorn rebuilds the new replicas while the workload keeps
/// running. No scale-down, no copy, no point of no return. The claim keeps its StorageClass, so
/// the summary names the class to change for future volumes.
public struct ReplicasStrategy: Strategy {
    public let plan: ReplicasPlan

    public init(plan: ReplicasPlan) {
        self.plan = plan
    }

    public var kind: String { PlanStrategy.replicas.rawValue }
    public var planName: String { plan.name }
    public var canonicalPlan: Data { plan.canonicalJSON() }
    public var window: PlanWindow? { plan.window }
    public var kubeContext: String? { plan.context }
    public var target: MaintenanceTarget { MaintenanceTarget(namespace: plan.target.namespace, name: plan.target.claim) }
    var claim: ClaimTarget { ClaimTarget(namespace: plan.target.namespace, claim: plan.target.claim, workloads: []) }

    public func steps(for run: RunInfo) -> [any Step] {
        let replicas = ReplicasRun(plan: plan, run: run)
        return [ReplicasPreflight(replicas: replicas), ReplicasSaveManifests(replicas: replicas),
                PatchReplicas(replicas: replicas), AwaitRebuild(replicas: replicas)]
    }

    public func describe(file: String) -> String {
        var lines = ["plan \(plan.name) (\(file))", "digest sha256:\(plan.digest)"]
        lines.append("strategy:      replicas (the Longhorn volume's spec.numberOfReplicas patched in place: no scale-down, no copy)")
        lines.append("target:        \(plan.target.namespace)/\(plan.target.claim)" + (plan.context.map { " in context \($0)" } ?? " in the current context"))
        lines.append("replicas:      \(plan.replicas)")
        lines.append("when detached: \(plan.whenDetached == .refuse ? "refuse (unless Longhorn rebuilds offline)" : "wait for the next attach (within timeouts.rebuild)")")
        lines.append(PlanWindow.describe(plan.window, none: "none (nothing stops: the run may start at any time)"))
        lines.append("timeouts:      rebuild \(plan.timeouts.rebuild)")
        lines.append("verify:        Longhorn volume in \(plan.verify.namespace): Scheduled, \(plan.verify.robustness), \(plan.verify.replicas) healthy running replicas on distinct nodes")
        return lines.joined(separator: "\n") + "\n"
    }

    public func liveState(_ client: KubeClient) async throws -> [String: String] {
        var state = try await claim.liveState(client, lease: target)
        // The Longhorn volume is named by the PV's spec.csi.volumeHandle, as the steps read it.
        if let volume = try await client.getIfPresent(.persistentVolumeClaims, named: plan.target.claim, in: plan.target.namespace)
            .flatMap({ PersistentVolumeClaim($0).volumeName }),
           let handle = try await client.getIfPresent(.persistentVolumes, named: volume).flatMap({ PersistentVolume($0).volumeHandle }),
           let longhorn = try await client.getIfPresent(.longhornVolumes, named: handle, in: plan.verify.namespace).map(LonghornVolume.init) {
            state["volume"] = ReplicasRun.describe(longhorn)
        }
        return state
    }

    /// The claim's uid, when it exists.
    public func bindings(_ client: KubeClient) async throws -> [String: String] {
        guard let object = try await client.getIfPresent(.persistentVolumeClaims, named: plan.target.claim, in: plan.target.namespace) else { return [:] }
        return [claim.bindingKey: PersistentVolumeClaim(object).uid]
    }

    /// The volume's replicas now, that the claim (and its uid) stayed, and that its class still
    /// gives new volumes the old count: the class to change is named.
    public func summary(of run: FinishedRun, client: KubeClient) async -> RunSummary {
        var summary = RunSummary(headline: "\(target.description): Longhorn volume at \(plan.replicas) replicas (run \(run.directory))",
                                 fields: ["claim": target.description, "replicas": String(plan.replicas)])
        guard let history = try? RunHistory(run.records) else { return summary }
        let facts = history.facts
        func object(_ type: ResourceType, _ name: String, _ namespace: String?) async -> JSON? {
            if let read = run.lastRead(type, named: name, in: namespace) { return read }
            return try? await client.getIfPresent(type, named: name, in: namespace)
        }
        var lines: [String] = []
        let claimObject = await object(.persistentVolumeClaims, plan.target.claim, plan.target.namespace).map(PersistentVolumeClaim.init)
        lines.append("claim:      uid \(claimObject?.uid ?? "?") (unchanged: \(claimObject?.uid == facts[ClaimFact.claimUID] ? "yes" : "NO, it was \(facts[ClaimFact.claimUID] ?? "?")")), annotated \(ReplicasRun.annotation)=\(plan.replicas)")
        if let volume = facts[ReplicasFact.longhornVolume],
           let longhorn = await object(.longhornVolumes, volume, plan.verify.namespace).map(LonghornVolume.init) {
            lines.append("volume:     " + ReplicasRun.describe(longhorn) + " (was \(facts[ReplicasFact.originalReplicas].map(String.init) ?? "?"))")
        }
        if let className = claimObject?.storageClassName {
            let classReplicas = await object(.storageClasses, className, nil).map { StorageClass($0).parameters["numberOfReplicas"] ?? "unset" } ?? "?"
            summary.fields["storageClass"] = className
            lines.append("class:      the claim keeps storageclass \(className) (numberOfReplicas \(classReplicas)): new volumes from it still get that count. "
                         + "Change it where claims are made: a class with numberOfReplicas \"\(plan.replicas)\" (class parameters are immutable) for new claims instead of \(className)")
        }
        for case (_, .note(let fields)) in history.entries { if let note = fields["note"] { lines.append("note:       \(note)") } }
        summary.lines = lines
        return summary
    }

    public func runbook(planFile: String, evidence: RunbookEvidence?) -> String {
        Self.runbook(for: plan, planFile: planFile, evidence: evidence)
    }
}

/// What every replicas step knows: the plan, the run, the claim, and the fact keys.
struct ReplicasRun: Sendable {
    let plan: ReplicasPlan
    let run: String
    let runDirectory: String
    let target: ClaimTarget
    let permissionsChecked: Bool

    init(plan: ReplicasPlan, run: RunInfo) {
        self.plan = plan
        self.run = run.id
        runDirectory = run.directory
        target = ClaimTarget(namespace: plan.target.namespace, claim: plan.target.claim, workloads: [])
        permissionsChecked = run.permissionsChecked
    }

    var namespace: String { plan.target.namespace }
    var claim: String { plan.target.claim }
    var longhornNamespace: String { plan.verify.namespace }
    var manifests: ClaimManifests { ClaimManifests(target: target, runDirectory: runDirectory, longhornNamespace: longhornNamespace) }

    /// On the claim: the replica count this run set on its volume, which its class does not say.
    static let annotation = "repave/replicas"
    /// A patch that meets a newer resourceVersion is read again and sent again this many times.
    static let patchAttempts = 5

    /// `3 replicas, attached, healthy, Scheduled`.
    static func describe(_ longhorn: LonghornVolume) -> String {
        let scheduled = longhorn.scheduled.map { $0.status == "True" ? "scheduled" : "not scheduled (\($0.reason): \($0.message))" } ?? "scheduling unknown"
        return "\(longhorn.name): \(longhorn.numberOfReplicas) replicas, \(longhorn.state.isEmpty ? "state unknown" : longhorn.state), "
            + "\(longhorn.robustness.isEmpty ? "robustness unknown" : longhorn.robustness), \(scheduled)"
    }
}

/// The facts only replicas journals (the shared ones are ``ClaimFact``).
public enum ReplicasFact {
    /// The Longhorn volume's name (the PV's `spec.csi.volumeHandle`).
    public static let longhornVolume = Fact<String>("longhorn.name")
    /// `spec.numberOfReplicas` before the run: abort puts it back.
    public static let originalReplicas = Fact<Int>("longhorn.numberOfReplicas")
}
