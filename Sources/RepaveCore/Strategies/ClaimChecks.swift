import Foundation
import KubeAPI

/// One named check of a preflight or of `verify`. Checks run in order and share what they have
/// read or found (`Findings`): a preflight check refuses by throwing; a verify check adds what it
/// finds wrong. Strategies compose their checks from the shared ones below and their own.
public struct NamedCheck<Findings: CheckFindings>: Sendable {
    public let name: String
    let run: @Sendable (_ findings: inout Findings, _ context: StepContext) async throws -> Void

    init(_ name: String, _ run: @escaping @Sendable (_ findings: inout Findings, _ context: StepContext) async throws -> Void) {
        self.name = name
        self.run = run
    }

    /// Runs `checks` in order, until one throws or the findings say there is nothing further
    /// to look at.
    static func run(_ checks: [NamedCheck], _ context: StepContext, from start: Findings = Findings()) async throws -> Findings {
        var findings = start
        for check in checks where !findings.stop { try await check.run(&findings, context) }
        return findings
    }
}

/// What a list of checks accumulates.
public protocol CheckFindings: Sendable {
    init()
    /// Nothing further to look at (a verify whose claim is missing).
    var stop: Bool { get }
}

public typealias PreflightCheck = NamedCheck<PreflightFindings>
public typealias VerifyCheck = NamedCheck<VerifyFindings>

/// What a preflight's checks have read so far.
public struct PreflightFindings: CheckFindings {
    public var claim: PersistentVolumeClaim?
    /// The pods that mount the claim, and the workloads they belong to (`Kind/name`).
    public var mounting: [Pod] = []
    public var owners: Set<String> = []
    /// The workloads the run acts on (the plan's, or those found mounting the claim), each with
    /// its object as read.
    public var workloads: [(Workload, JSON)] = []
    public var autoscalers: [JSON] = []
    /// A preflight stops only by refusing.
    public var stop: Bool { false }

    public init() {}
}

/// What verify found: its problems, the Longhorn volume's apart (they heal by themselves, so
/// verify watches that volume when they are all that is wrong).
public struct VerifyFindings: CheckFindings {
    public var problems: [String] = []
    public var volumeProblems: [String] = []
    /// The claim's volume, once the claim check found it Bound.
    public var volume: String?
    /// The claim is missing or not Bound: nothing further to check.
    public var stop = false
    /// The checks may take what this process read last (``StepContext/recent(_:named:in:)``):
    /// for the first round of a wait, right after `observe` read everything.
    public var reusingReads = false

    public init() {}

    /// A fresh read, or the one just made when ``reusingReads``.
    func read(_ type: ResourceType, named name: String, in namespace: String, _ context: StepContext) async throws -> JSON? {
        reusingReads ? try await context.recent(type, named: name, in: namespace) : try await context.read(type, named: name, in: namespace)
    }

    public var all: [String] { problems + volumeProblems }
    /// The volume to watch: only its state is wrong.
    public var volumeToWatch: String? { problems.isEmpty && !volumeProblems.isEmpty ? volume : nil }
}

/// What a Longhorn volume must show: a replica count, and a robustness while a workload runs on
/// it (a detached volume reports robustness unknown).
public struct VolumeExpectation: Sendable {
    public let replicas: Int
    public let robustness: String?

    public func problems(_ longhorn: LonghornVolume) -> [String] {
        var problems: [String] = []
        if longhorn.numberOfReplicas != replicas {
            problems.append("the Longhorn volume has \(longhorn.numberOfReplicas) replicas, not \(replicas)")
        }
        if let robustness, longhorn.robustness != robustness {
            problems.append("the Longhorn volume is \(longhorn.state) and \(longhorn.robustness), not \(robustness)")
        }
        return problems
    }
}

extension ClaimTarget {
    // MARK: preflight checks every claim strategy shares

    /// The claim exists and holds a volume.
    var claimBound: PreflightCheck {
        PreflightCheck("claim-bound") { findings, context in
            // Kept for save-manifests, which follows before any change (`StepContext.recent`).
            guard let object = try await context.read(.persistentVolumeClaims, named: claim, in: namespace) else {
                throw RepaveError(.noClaim, "persistentvolumeclaim \(namespace)/\(claim) does not exist", hint: "check target.namespace and target.claim in the plan")
            }
            let found = PersistentVolumeClaim(object)
            guard found.isBound, found.volumeName != nil else {
                throw RepaveError(.claimNotBound, "persistentvolumeclaim \(namespace)/\(claim) is \(found.phase), not Bound", hint: "recreate a claim only once it holds a volume")
            }
            findings.claim = found
        }
    }

    /// Everything that mounts the claim belongs to the plan's workloads (or, when the plan names
    /// none, to some Deployment or StatefulSet): anything else would keep the claim in use.
    var mountedOnlyByWorkloads: PreflightCheck {
        PreflightCheck("mounted-only-by-workloads") { findings, context in
            findings.mounting = try await podsMountingClaim(context.client)
            var replicaSets: [String: JSON?] = [:]   // each ReplicaSet read once, not once per pod
            for pod in findings.mounting {
                guard let owner = try await owner(of: pod, context.client, replicaSets: &replicaSets) else {
                    throw RepaveError(.foreignPod, "pod \(namespace)/\(pod.name) mounts the claim and belongs to no Deployment or StatefulSet",
                                      hint: "stop or move that pod before the window")
                }
                if !plannedWorkloads.isEmpty && !plannedWorkloads.contains(owner) {
                    throw RepaveError(.foreignWorkload, "pod \(pod.name) of \(Self.reference(owner)) mounts the claim but is not in the plan's workloads",
                                      hint: "add it to target.workloads, or stop it before the window")
                }
                findings.owners.insert(Self.reference(owner))
            }
        }
    }

    /// Each workload the run acts on exists (read once, for the checks after this one).
    var workloadsExist: PreflightCheck {
        PreflightCheck("workloads-exist") { findings, context in
            let workloads = plannedWorkloads.isEmpty
                ? findings.owners.sorted().compactMap { item -> Workload? in
                    let parts = item.split(separator: "/", maxSplits: 1).map(String.init)
                    return Workload.Kind(rawValue: parts[0]).map { .init(kind: $0, name: parts[1]) }
                }
                : plannedWorkloads
            for workload in workloads {
                guard let object = try await context.read(Self.workloadType(workload.kind), named: workload.name, in: namespace) else {
                    throw RepaveError(.noWorkload, "\(workload.kind.rawValue) \(namespace)/\(workload.name) does not exist",
                                      hint: "a Coder workspace that was stopped has no Deployment: start it, or remove it from target.workloads")
                }
                findings.workloads.append((workload, object))
            }
        }
    }

    /// Nothing would undo or fight the scale-down (Argo CD, Flux, Coder, an HPA) unless the plan
    /// acknowledges it.
    func reconcilersAcknowledged(_ acknowledged: [RecreatePlan.Reconciler]) -> PreflightCheck {
        PreflightCheck("reconcilers-acknowledged") { findings, context in
            findings.autoscalers = try await context.client.list(.horizontalPodAutoscalers, in: namespace).items
            try Self.checkReconcilers(findings.workloads, autoscalers: findings.autoscalers, acknowledged: acknowledged)
        }
    }

    /// Repave does not run inside a pod that mounts the claim (scale-down would stop it).
    var notInsideThePod: PreflightCheck {
        PreflightCheck("not-inside-the-pod") { findings, _ in
            if let podName = Self.insidePodMountingClaim(pods: findings.mounting.map(\.name), namespace: namespace,
                                                         hostname: ProcessInfo.processInfo.hostName, environment: ProcessInfo.processInfo.environment) {
                throw RepaveError(.insideThePod, "repave runs inside pod \(podName), which mounts the claim: scale-down would stop repave itself, and the journal would go with the claim",
                                  hint: "run repave from outside the workload (your machine, or another pod)")
            }
        }
    }

    /// The run directory is not on the claim's own volume.
    func runDirectoryOffTheClaim(_ directory: String) -> PreflightCheck {
        PreflightCheck("run-directory-off-the-claim") { findings, _ in
            if let volume = findings.claim?.volumeName, let mountInfo = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8),
               let mount = Self.runDirectoryOnVolume(directory, volume: volume, mountInfo: mountInfo) {
                throw RepaveError(.runDirectoryOnClaim, "the run directory \(directory) is on the claim's own volume \(volume) (mounted at \(mount)): the journal would be deleted with it",
                                  hint: "pass --state-dir on another filesystem")
            }
        }
    }

    // MARK: verify checks

    /// The claim exists, is Bound, and (when `storageClass` is given) is on that class.
    func claimBound(onClass storageClass: String?) -> VerifyCheck {
        VerifyCheck("claim-bound") { findings, context in
            // Fresh reads, each kept for the run's summary (`RecreateStrategy.summary`).
            guard let object = try await findings.read(.persistentVolumeClaims, named: claim, in: namespace, context) else {
                findings.problems.append("the claim does not exist")
                findings.stop = true
                return
            }
            let found = PersistentVolumeClaim(object)
            if let storageClass, found.storageClassName != storageClass { findings.problems.append("the claim's class is \(found.storageClassName ?? "none")") }
            guard found.isBound, let volume = found.volumeName else {
                findings.problems.append("the claim is \(found.phase), not Bound")
                findings.stop = true
                return
            }
            findings.volume = volume
        }
    }

    /// The claim's Longhorn volume shows what `expectation` asks.
    func longhornVolume(in longhornNamespace: String, _ expectation: @escaping @Sendable (StepContext) -> VolumeExpectation) -> VerifyCheck {
        VerifyCheck("longhorn-volume") { findings, context in
            guard let volume = findings.volume else { return }
            if let longhorn = try await findings.read(.longhornVolumes, named: volume, in: longhornNamespace, context).map(LonghornVolume.init) {
                findings.volumeProblems = expectation(context).problems(longhorn)
            } else {
                findings.problems.append("no Longhorn volume \(longhornNamespace)/\(volume)")
            }
        }
    }

    /// Every workload the run acts on is available again.
    var workloadsAvailable: VerifyCheck {
        VerifyCheck("workloads-available") { findings, context in
            for workload in workloads(context) {
                let type = Self.workloadType(workload.kind)
                guard let object = try await findings.read(type, named: workload.name, in: namespace, context) else {
                    findings.problems.append("\(workload.kind.rawValue) \(workload.name) does not exist")
                    continue
                }
                switch workload.kind {
                case .deployment:
                    if Deployment(object).rolloutState != .complete { findings.problems.append("deployment \(workload.name) is not available") }
                case .statefulSet:
                    let set = StatefulSet(object)
                    if set.readyReplicas < set.replicas { findings.problems.append("statefulset \(workload.name) has \(set.readyReplicas) of \(set.replicas) replicas ready") }
                }
            }
        }
    }
}
