import Foundation
import KubeAPI

// `repave rollback RUN`: after the swap, the claim's name back on the old volume. Not new steps:
// the run's own (scale-down, await-detach, retain, delete-claim, prebind-volume, create-claim,
// await-bound, scale-up) with the roles swapped. They read the claim to delete and the volume it
// is on from `claim.uid` / `pv.name` / `pv.uid`, and the volume to rebind to from a
// ``RebindVolume``; rollback gives them a view of the facts in which `claim.uid` and `pv.*` name
// the claim the run created and the new volume (learnt once, journaled as `rollback.claim.uid`,
// `rollback.pv.*`), and the rebind volume is the run's old one. What the steps learn themselves
// (the claim they create) is journaled under `rollback.` too (`StepContext.factPrefix`), so the
// run's own facts are never overwritten: the same view is rebuilt from the journal on a re-run.

/// The facts only `rollback` journals (their keys start with ``prefix``).
public enum RollbackFact {
    /// What every fact rollback journals starts with.
    public static let prefix = "rollback."
    /// The claim the run created, which rollback deletes (the view's ``ClaimFact/claimUID``).
    public static let claimUID = Fact<String>(prefix + ClaimFact.claimUID.key)
    /// The new volume that claim is on, which rollback leaves (and finalize then deletes).
    public static let volume = Fact<String>(prefix + ClaimFact.volume.key)
    public static let volumeUID = Fact<String>(prefix + ClaimFact.volumeUID.key)
    /// Its Longhorn volume, when there is one.
    public static let longhornUID = Fact<String>(prefix + ClaimFact.longhornUID.key)
    /// Its Longhorn volume's name (the PV's `volumeHandle`), when it is not the PV's name.
    public static let longhornName = Fact<String>(prefix + ClaimFact.longhornName.key)
    /// The claim rollback created on the old volume.
    public static let claimCreated = Fact<String>(prefix + RecreateFact.newClaimUID.key)

    /// In the view only, never journaled: the run's old volume, which the claim moves back onto.
    static let previousVolume = RebindVolume(name: Fact("previous.pv.name"), uid: Fact("previous.pv.uid"))

    /// The facts the run's steps read during a rollback: the run's own, then the old volume under
    /// ``previousVolume``, the run's new claim forgotten (rollback's create-claim makes its own),
    /// and every `rollback.` fact under its plain key (which names the new claim and volume).
    static func view(of facts: Facts) -> Facts {
        var values = facts.values
        values[previousVolume.name.key] = facts.values[ClaimFact.volume.key]
        values[previousVolume.uid.key] = facts.values[ClaimFact.volumeUID.key]
        values[RecreateFact.newClaimUID.key] = nil
        values[ClaimFact.longhornUID.key] = nil
        values[ClaimFact.longhornName.key] = nil
        for (key, value) in facts.values where key.hasPrefix(prefix) { values[String(key.dropFirst(prefix.count))] = value }
        return Facts(values)
    }

    /// The new volume, as the volume a rolled-back run leaves for `finalize`.
    static func leftVolume(_ facts: Facts, run: String, longhornNamespace: String) -> KeptVolume? {
        guard let name = facts[volume], let uid = facts[volumeUID] else { return nil }
        return KeptVolume(name: name, uid: uid, longhornName: facts[longhornName], longhornUID: facts[longhornUID], longhornNamespace: longhornNamespace, run: run)
    }
}

/// A strategy whose runs `repave rollback` can take back after the swap: the claim's name on the
/// old volume again, on the old class.
public protocol RollsBack: KeepsVolume {
    /// Rollback's steps for `run`, whose claim goes back to storage class `oldClass`; each step's
    /// id starts with `rollback-`.
    func rollbackSteps(for run: RunInfo, oldClass: String) -> [any Step]
    /// The Longhorn namespace of the plan (where the new volume's Longhorn volume lives).
    var longhornNamespace: String { get }
}

extension RollsBack {
    /// What a rolled-back run leaves for finalize (the new volume), or else the kept one.
    func volumeToFinalize(_ history: RunHistory, run: String) -> KeptVolume? {
        history.rolledBack != nil ? RollbackFact.leftVolume(history.facts, run: run, longhornNamespace: longhornNamespace) : keptVolume(history.facts, run: run)
    }
}

extension MigrateStrategy: RollsBack {
    public var longhornNamespace: String { plan.verify.namespace }

    public func rollbackSteps(for run: RunInfo, oldClass: String) -> [any Step] {
        let plan = self.plan
        let permissions: @Sendable () -> [KubeClient.AccessQuestion] = { MigrateStrategy(plan: plan).permissions() }
        let claimRun = ClaimRun(plan: plan, run: run, permissions: permissions)
        let onOldClass = ClaimRun(plan: OnClass(plan: plan, className: oldClass), run: run, permissions: permissions)
        return Rollback.steps(claimRun: claimRun, onOldClass: onOldClass, detach: AwaitDetach(claimRun: claimRun))
    }
}

/// A recreate that kept its old volume (`retain-until-verified`) can be rolled back as well: the
/// claim goes back to the old volume, and the new (re-provisioned) one is retained for finalize.
extension RecreateStrategy: RollsBack {
    public var longhornNamespace: String { plan.verify.namespace }

    public func rollbackSteps(for run: RunInfo, oldClass: String) -> [any Step] {
        let plan = self.plan
        let claimRun = ClaimRun(plan: plan, run: run)
        let onOldClass = ClaimRun(plan: OnClass(plan: plan, className: oldClass), run: run) { RecreateStrategy(plan: plan).permissions() }
        return Rollback.steps(claimRun: claimRun, onOldClass: onOldClass, detach: nil)
    }
}

enum Rollback {
    /// The step name rollback's own records carry (its steps are `rollback-…`).
    static let step = "rollback"

    /// The sequence: scale down, await detach; Retain on the new volume (again: a
    /// recreate's new volume has its class's policy); delete the claim (uid); pre-bind the old
    /// volume; create the claim with `volumeName` on the old class; await Bound; scale up.
    static func steps(claimRun: ClaimRun, onOldClass: ClaimRun, detach: (any Step)?) -> [any Step] {
        let old = RollbackFact.previousVolume
        let className = onOldClass.plan.storageClass.name
        var steps: [any Step] = [
            Renamed(ScaleDown(claimRun: claimRun), "rollback-scale-down"),
        ]
        if let detach { steps.append(Renamed(detach, "rollback-await-detach", summary: "wait until the new volume is detached (no VolumeAttachment left)")) }
        steps += [
            Renamed(RetainOldVolume(claimRun: claimRun, id: "rollback-retain-new-volume"), "rollback-retain-new-volume",
                    summary: "set the new volume's reclaim policy to Retain (again), so deleting the claim keeps what was written on it since the swap, annotated with the run"),
            Renamed(DeleteClaim(claimRun: claimRun), "rollback-delete-claim",
                    summary: "delete persistentvolumeclaim \(claimRun.namespace)/\(claimRun.claim), the one on the new volume (uid-guarded), and wait until it is gone and the new volume released"),
            Renamed(PrebindVolume(claimRun: claimRun, volume: old), "rollback-prebind-volume",
                    summary: "pre-bind the old volume to \(claimRun.namespace)/\(claimRun.claim) (claimRef uid and resourceVersion nulled, resourceVersion-guarded)"),
            Renamed(CreateClaim(claimRun: onOldClass, volume: old), "rollback-create-claim",
                    summary: "create the claim again, same name, on storageclass \(className), bound to the old volume (volumeName)"),
            Renamed(AwaitBound(claimRun: onOldClass, volume: old), "rollback-await-bound",
                    summary: "wait until the claim is Bound to the old volume, whose claimRef names its uid"),
            Renamed(ScaleUp(claimRun: claimRun), "rollback-scale-up"),
        ]
        return steps
    }
}

/// A step of the run under another id (rollback's `rollback-…`): its records, failpoints and
/// `step_done` carry that id, so the run's own records of the same step are not taken for it.
struct Renamed: Step {
    let step: any Step
    let id: String
    let summary: String

    init(_ step: any Step, _ id: String, summary: String? = nil) {
        self.step = step
        self.id = id
        self.summary = summary ?? step.summary
    }

    var mutates: Bool { step.mutates }
    var isPointOfNoReturn: Bool { step.isPointOfNoReturn }
    var estimate: Duration { step.estimate }
    var needsWindow: Bool { step.needsWindow }
    var permissions: [KubeClient.AccessQuestion] { step.permissions }
    func estimate(given facts: Facts) -> Duration { step.estimate(given: facts) }
    func observe(_ context: StepContext) async throws -> Bool { try await step.observe(context) }
    func apply(_ context: StepContext) async throws { try await step.apply(context) }
    func await(_ context: StepContext) async throws { try await step.await(context) }
    func undo(_ context: StepContext) async throws -> [String] { try await step.undo(context) }
    func rehearse(_ context: StepContext) async throws -> [CheckResult] { try await step.rehearse(context) }
}

/// A claim plan whose claim goes on another storage class: rollback's create-claim and
/// await-bound put the claim back on the class it had.
struct OnClass<Plan: ClaimPlan>: ClaimPlan {
    let plan: Plan
    let className: String

    var name: String { plan.name }
    var target: RecreatePlan.Target { plan.target }
    var acknowledge: [RecreatePlan.Reconciler] { plan.acknowledge }
    var storageClass: RecreatePlan.StorageClassSpec {
        var spec = plan.storageClass
        spec.name = className
        // Bound to a named volume: the claim binds at once, whatever the class's mode.
        spec.volumeBindingMode = "Immediate"
        return spec
    }
    var gitPreflight: RecreatePlan.GitPreflight? { plan.gitPreflight }
    var verify: RecreatePlan.LonghornCheck { plan.verify }
    var timeouts: Plan.Timeouts { plan.timeouts }
    var deletesOldVolume: Bool { false }
}
