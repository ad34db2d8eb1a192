import Blocking
import Foundation
import KubeAPI

/// What the plans of the strategies that replace a claim (recreate, migrate) share, so that
/// their common steps (preflight, save-manifests, ensure-storage-class, retain-old-volume,
/// scale-down, delete-claim, create-claim, await-bound, scale-up, verify) are one implementation.
protocol ClaimPlan: Sendable {
    associatedtype Timeouts: ClaimTimeouts & Sendable
    var name: String { get }
    var target: RecreatePlan.Target { get }
    var acknowledge: [RecreatePlan.Reconciler] { get }
    var storageClass: RecreatePlan.StorageClassSpec { get }
    var gitPreflight: RecreatePlan.GitPreflight? { get }
    var verify: RecreatePlan.LonghornCheck { get }
    var timeouts: Timeouts { get }
    /// The old volume is deleted once the new one verifies (recreate's `oldVolume: delete`).
    var deletesOldVolume: Bool { get }
}

extension RecreatePlan: ClaimPlan {
    var deletesOldVolume: Bool { oldVolume == .delete }
}

extension MigratePlan: ClaimPlan {
    /// Migrate keeps it until `repave finalize`.
    var deletesOldVolume: Bool { false }
}

/// What every step of a claim strategy knows: the plan, the run, where manifests go, the claim,
/// and the permissions the whole run needs (the preflight checks them when `run` has not).
struct ClaimRun: Sendable {
    let plan: any ClaimPlan
    let run: String
    let runDirectory: String
    let target: ClaimTarget
    /// This process has just checked every permission (`run` does, before it makes a journal):
    /// the preflight step does not ask the API server a second time.
    let permissionsChecked: Bool
    /// Every permission the strategy's run uses.
    let permissions: @Sendable () -> [KubeClient.AccessQuestion]

    init(plan: some ClaimPlan, run: RunInfo, permissions: @escaping @Sendable () -> [KubeClient.AccessQuestion]) {
        self.plan = plan
        self.run = run.id
        runDirectory = run.directory
        target = ClaimTarget(namespace: plan.target.namespace, claim: plan.target.claim, workloads: plan.target.workloads)
        permissionsChecked = run.permissionsChecked
        self.permissions = permissions
    }

    /// A recreate run (its permissions are recreate's).
    init(plan: RecreatePlan, run: RunInfo) {
        self.init(plan: plan, run: run) { RecreateStrategy(plan: plan).permissions() }
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

/// The first name of ``ClaimRun``, when recreate was the only claim strategy.
typealias RecreateRun = ClaimRun
