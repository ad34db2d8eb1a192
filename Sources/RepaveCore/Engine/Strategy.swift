import Foundation
import Journal
import KubeAPI

/// What one kind of maintenance (recreate, migrate, replicas; a test-only one in the lab) gives
/// the engine. Everything else a run needs — the journal, `plan.json`, the confirmation, the
/// Lease, interruption, resume, abort, the server dry run and the permission check — is
/// ``MaintenanceSession``'s, the same for every strategy.
public protocol Strategy: Sendable {
    /// `recreate`: the plan's `strategy:`, recorded in the run's header.
    var kind: String { get }
    /// The plan's name (the run directory's prefix) and, as `plan.json`, its canonical form.
    var planName: String { get }
    var canonicalPlan: Data { get }
    var window: PlanWindow? { get }
    /// The plan's kube context (nil: the kubeconfig's current-context).
    var kubeContext: String? { get }
    /// What the operator types to confirm, and what the Lease is named after.
    var target: MaintenanceTarget { get }

    /// The steps, in order, for one run.
    func steps(for run: RunInfo) -> [any Step]
    /// The objects a run binds to (``RunHeader/targets``), as the cluster has them now: resume
    /// refuses when one of them has been replaced.
    func bindings(_ client: KubeClient) async throws -> [String: String]
    /// After a finished run: what the operator reports.
    func summary(of run: FinishedRun, client: KubeClient) async -> RunSummary
    /// The target as the cluster has it now, for `repave status` (one entry per object).
    func liveState(_ client: KubeClient) async throws -> [String: String]
    /// The plan with every default explicit, for `repave plan` (one line per setting).
    func describe(file: String) -> String
    /// The maintenance-window runbook (Markdown), for `repave runbook`.
    func runbook(planFile: String, evidence: RunbookEvidence?) -> String
}

extension Strategy {
    /// SHA-256 of the canonical plan: comments, formatting and the spelling of the plan's kind do
    /// not change it.
    public var planDigest: String { SHA256.hex(of: canonicalPlan) }

    /// Every permission a run uses: the session's own, then each step's, once each, in order.
    public func permissions() -> [KubeClient.AccessQuestion] {
        var seen = Set<KubeClient.AccessQuestion>()
        let session = MaintenanceSession.permissions(lease: target.lease ? target.namespace : nil)
        return (session + steps(for: .planning).flatMap(\.permissions)).filter { seen.insert($0).inserted }
    }
}

/// Where a run acts: `namespace/name`, the text the operator types to confirm, and whether the
/// run holds the Lease `repave-<name>` in that namespace while it works.
public struct MaintenanceTarget: Sendable, Equatable {
    public var namespace: String
    public var name: String
    public var lease: Bool

    public init(namespace: String, name: String, lease: Bool = true) {
        self.namespace = namespace
        self.name = name
        self.lease = lease
    }

    public var description: String { "\(namespace)/\(name)" }
}

/// The run a strategy's steps belong to: its id (annotated on what it creates), its directory
/// (manifests), and whether this process has just checked every permission.
public struct RunInfo: Sendable {
    public var id: String
    public var directory: String
    public var permissionsChecked: Bool

    public init(id: String, directory: String, permissionsChecked: Bool = false) {
        self.id = id
        self.directory = directory
        self.permissionsChecked = permissionsChecked
    }

    /// For questions about the steps themselves (permissions, the runbook): no run exists.
    public static let planning = RunInfo(id: "RUN", directory: "RUN-DIR")
}

/// A finished run, for its summary: its directory, journal records, and the downtime and total
/// this process measured (nil after a resume: the journal's times are used then).
public struct FinishedRun: Sendable {
    public var directory: String
    public var records: [JournalRecord]
    public var measured: (downtime: Duration, total: Duration)?
    /// What the last steps read after the run's last change, in this process (see
    /// `StepContext.recent`): a summary reports it instead of reading it again. Empty when a
    /// resume began past those steps.
    var reads: [String: StepContext.ReadObject] = [:]

    /// The object as the run last read it (`.some(nil)`: absent), or nil when it was not read
    /// after the run's last change: then ask the cluster.
    public func lastRead(_ type: ResourceType, named name: String, in namespace: String? = nil) -> JSON?? {
        reads[StepContext.key(type, name, namespace)].map(\.object)
    }
}

/// What a finished run reports: one headline (`finished: …`), the lines under it, and the
/// fields `-o json` adds to its result.
public struct RunSummary: Sendable, Equatable {
    public var headline: String
    public var lines: [String] = []
    public var fields: [String: String] = [:]

    public init(headline: String, lines: [String] = [], fields: [String: String] = [:]) {
        self.headline = headline
        self.lines = lines
        self.fields = fields
    }
}

/// One line of a check: the preflight, a rehearsed change.
public struct CheckResult: Codable, Sendable, Equatable {
    public var check: String
    public var passed: Bool
    /// Why it failed: the API server's reason and message.
    public var detail: String?

    public init(check: String, passed: Bool = true, detail: String? = nil) {
        self.check = check
        self.passed = passed
        self.detail = detail
    }

    /// `request` sent with dryRun=All: passed, or failed with the server's reason.
    public static func attempt(_ check: String, _ request: () async throws -> Void) async -> CheckResult {
        do {
            try await request()
            return CheckResult(check: check)
        } catch let error as KubeAPIError {
            return CheckResult(check: check, passed: false, detail: "\(error.reason.rawValue): \(error.message)")
        } catch {
            return CheckResult(check: check, passed: false, detail: "\(error)")
        }
    }

    /// `ok   what` or `FAIL what: why`, as `plan` prints it.
    public var line: String { passed ? "ok   \(check)" : "FAIL \(check)" + (detail.map { ": \($0)" } ?? "") }
}
