import Foundation
import KubeAPI

public typealias Workload = RecreatePlan.Workload

/// What every strategy that acts on a claim shares: the claim, its namespace, the workloads that
/// mount it (the plan's, or those the preflight found and journaled), and the reads about them —
/// who mounts the claim, whether the workloads are down, which workload owns a pod.
public struct ClaimTarget: Sendable, Equatable {
    public let namespace: String
    public let claim: String
    /// Empty: discovered from the pods that mount the claim.
    public let plannedWorkloads: [Workload]

    public init(namespace: String, claim: String, workloads: [Workload]) {
        self.namespace = namespace
        self.claim = claim
        plannedWorkloads = workloads
    }

    /// The header's key for the claim (`RunHeader.targets`).
    public var bindingKey: String { RunHeader.claimTarget(namespace: namespace, claim: claim) }

    /// The plan's workloads, or (none listed) any Deployment or StatefulSet: what the permission
    /// check asks about.
    public var plannedWorkloadsOrAny: [Workload] {
        plannedWorkloads.isEmpty ? [.init(kind: .deployment, name: "*"), .init(kind: .statefulSet, name: "*")] : plannedWorkloads
    }

    /// The claim's uid, when it exists (``Strategy/bindings(_:)``).
    public func bindings(_ client: KubeClient) async throws -> [String: String] {
        guard let object = try await client.getIfPresent(.persistentVolumeClaims, named: claim, in: namespace) else { return [:] }
        return [bindingKey: PersistentVolumeClaim(object).uid]
    }

    /// The claim, the plan's workloads and the Lease as the cluster has them now.
    public func liveState(_ client: KubeClient, lease: MaintenanceTarget) async throws -> [String: String] {
        var state: [String: String] = [:]
        if let claim = try await client.getIfPresent(.persistentVolumeClaims, named: claim, in: namespace).map(PersistentVolumeClaim.init) {
            state["claim"] = "\(namespace)/\(claim.name) uid \(claim.uid), class \(claim.storageClassName ?? "-"), \(claim.phase)" + (claim.metadata.isTerminating ? ", terminating" : "")
        } else {
            state["claim"] = "\(namespace)/\(claim) does not exist"
        }
        for workload in plannedWorkloads {
            if let object = try await client.getIfPresent(Self.workloadType(workload.kind), named: workload.name, in: namespace) {
                state[Self.reference(workload)] = "\(Self.replicas(workload.kind, object)) replicas"
            }
        }
        let lock = ClusterLock(client: client, namespace: lease.namespace, claim: lease.name, holder: "")
        let held = try await client.getIfPresent(.leases, named: lock.name, in: lease.namespace).map(Lease.init)
        state["lease"] = held.map { "held by \($0.holderIdentity ?? "?"), renewed \($0.renewTime ?? "?")" } ?? "none"
        return state
    }

    /// `verbs` on each kind of workload the run may scale (any kind when the plan names none).
    func workloadQuestions(_ verbs: [String]) -> [KubeClient.AccessQuestion] {
        let kinds = Workload.Kind.allCases.filter { kind in plannedWorkloadsOrAny.contains { $0.kind == kind } }
        return kinds.flatMap { kind in verbs.map { KubeClient.AccessQuestion($0, Self.workloadType(kind), namespace: namespace) } }
    }

    /// `Deployment/name`.
    public static func reference(_ workload: Workload) -> String { "\(workload.kind.rawValue)/\(workload.name)" }

    static func workloadType(_ kind: Workload.Kind) -> ResourceType {
        kind == .deployment ? .deployments : .statefulSets
    }

    /// A workload object's `spec.replicas`.
    public static func replicas(_ kind: Workload.Kind, _ object: JSON) -> Int {
        kind == .deployment ? Deployment(object).replicas : StatefulSet(object).replicas
    }

    /// The workloads the run acts on: the plan's, or those recorded when the run started.
    func workloads(_ context: StepContext) -> [Workload] {
        context.facts[ClaimFact.workloads] ?? plannedWorkloads
    }

    /// Pods in the namespace that mount the claim (one list of the namespace's pods).
    /// The pods that use the claim: those that name it and have not ended (a Succeeded or Failed
    /// pod holds no volume, as the pvc-protection controller counts them too).
    func podsMountingClaim(_ client: KubeClient) async throws -> [Pod] {
        try await podsMountingClaimListed(client).pods
    }

    /// ``podsMountingClaim(_:)`` and the list's resourceVersion, to watch the pods from.
    func podsMountingClaimListed(_ client: KubeClient) async throws -> (pods: [Pod], resourceVersion: String) {
        let list = try await client.list(.pods, in: namespace)
        return (list.items.map(Pod.init).filter { $0.claimNames.contains(claim) && $0.phase != "Succeeded" && $0.phase != "Failed" }, list.resourceVersion)
    }

    /// The workloads scaled back up since scale-down, each named with whoever last set its
    /// replicas (from `managedFields`). A workload deleted meanwhile (a stopped Coder workspace)
    /// runs no pod: it counts as down.
    func workloadsBackUp(_ context: StepContext) async throws -> [String] {
        var up: [String] = []
        for workload in workloads(context) {
            // Fresh, and kept for a write that follows (scale-up's patch, resourceVersion-guarded).
            guard let object = try await context.read(Self.workloadType(workload.kind), named: workload.name, in: namespace) else { continue }
            let replicas = Self.replicas(workload.kind, object)
            guard replicas != 0 else { continue }
            let manager = Self.replicasManager(object).map { " (spec.replicas last set by \($0))" } ?? ""
            up.append("\(workload.kind.rawValue)/\(workload.name) is at \(replicas) replicas again\(manager)")
        }
        return up
    }

    /// Between scale-down and the new claim nothing may use the claim: a reconciler or a person
    /// scaling a workload back up, or any pod mounting it, stops the run (exit 3) before `before`
    /// happens. Before the point of no return (`abortable`) the operator may also abort.
    /// - Parameter listed: the pods that mount the claim, when the caller listed them a moment
    ///   ago (nil: listed here).
    func requireWorkloadsDown(_ context: StepContext, before: String, abortable: Bool, listed: [Pod]? = nil) async throws {
        let up = try await workloadsBackUp(context)
        let pods: [Pod]
        if let listed { pods = listed } else { pods = try await podsMountingClaim(context.client) }
        if up.isEmpty && pods.isEmpty { return }
        let hint = up.isEmpty
            ? "find what started \(pods.count == 1 ? "it" : "them") (a Job, a debug pod) and stop \(pods.count == 1 ? "it" : "them"), then 'repave resume'"
            : "stop whatever scales it (GitOps sync, HPA, an operator, a person), scale it to 0, then 'repave resume'"
        throw RepaveError(up.isEmpty ? .claimInUse : .scaledUp,
                          "stopped before \(before): " + (up.isEmpty ? "a pod uses the claim again" : "the workloads were scaled back up since scale-down"),
                          causes: up + pods.map { "pod \($0.name) mounts the claim" },
                          hint: hint + (abortable ? "; or 'repave abort' to put everything back" : ""))
    }

    /// The field manager that last set `spec.replicas`, from the object's managedFields.
    static func replicasManager(_ object: JSON) -> String? {
        let entries = object[path: "metadata", "managedFields"]?.arrayValue ?? []
        return entries.filter { $0[path: "fieldsV1", "f:spec", "f:replicas"] != nil }
            .max { ($0["time"]?.stringValue ?? "") < ($1["time"]?.stringValue ?? "") }?["manager"]?.stringValue
    }

    /// The workload (Deployment through its ReplicaSet, or StatefulSet) that controls a pod.
    /// - Parameter replicaSets: the ReplicaSets read so far, by name (nil: absent): the pods of
    ///   one ReplicaSet cost one read between them.
    func owner(of pod: Pod, _ client: KubeClient, replicaSets: inout [String: JSON?]) async throws -> Workload? {
        guard let controller = pod.metadata.controller else { return nil }
        switch controller.kind {
        case "StatefulSet": return .init(kind: .statefulSet, name: controller.name)
        case "ReplicaSet":
            let replicaSet: JSON?
            if let known = replicaSets[controller.name] {
                replicaSet = known
            } else {
                replicaSet = try await client.getIfPresent(.replicaSets, named: controller.name, in: namespace)
                replicaSets[controller.name] = .some(replicaSet)
            }
            guard let replicaSet, let deployment = ObjectMeta(replicaSet["metadata"] ?? [:]).controller, deployment.kind == "Deployment"
            else { return nil }
            return .init(kind: .deployment, name: deployment.name)
        default: return nil
        }
    }

    /// When repave itself runs in a pod that mounts the claim (in-cluster, same namespace, the
    /// pod's name as hostname), the name of that pod.
    public static func insidePodMountingClaim(pods: [String], namespace: String, hostname: String, environment: [String: String],
                                              serviceAccountNamespace: String? = try? String(contentsOfFile: "/var/run/secrets/kubernetes.io/serviceaccount/namespace", encoding: .utf8)) -> String? {
        guard environment["KUBERNETES_SERVICE_HOST"] != nil,
              serviceAccountNamespace?.trimmingCharacters(in: .whitespacesAndNewlines) == namespace,
              pods.contains(hostname)
        else { return nil }
        return hostname
    }

    /// When the run directory lies on the claim's own volume (repave on the node or in a pod that
    /// mounts it), the mount that holds it: the journal must not live on what the run deletes.
    /// `mountInfo` is /proc/self/mountinfo; the mount whose point is the longest prefix of the
    /// directory's real path is the one that holds it, and it is the claim's when its mount point
    /// or source names the volume (kubelet: `…/kubernetes.io~csi/pvc-…/mount`; Longhorn:
    /// `/dev/longhorn/pvc-…`).
    public static func runDirectoryOnVolume(_ directory: String, volume: String, mountInfo: String) -> String? {
        // The run directory may not exist yet: symlinks are resolved in its nearest existing ancestor.
        var existing = URL(fileURLWithPath: directory).standardizedFileURL.path, rest: [String] = []
        while !FileManager.default.fileExists(atPath: existing), existing != "/" {
            rest.insert((existing as NSString).lastPathComponent, at: 0)
            existing = (existing as NSString).deletingLastPathComponent
        }
        let resolved = URL(fileURLWithPath: existing).resolvingSymlinksInPath().path
        let path = rest.isEmpty ? resolved : (resolved == "/" ? "" : resolved) + "/" + rest.joined(separator: "/")
        func unescape(_ field: Substring) -> String {
            field.replacingOccurrences(of: "\\040", with: " ").replacingOccurrences(of: "\\011", with: "\t")
                .replacingOccurrences(of: "\\012", with: "\n").replacingOccurrences(of: "\\134", with: "\\")
        }
        var holder: (point: String, source: String)?
        for line in mountInfo.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 4, let separator = fields.firstIndex(of: "-") else { continue }
            let point = unescape(fields[4])
            let source = separator + 2 < fields.count ? unescape(fields[separator + 2]) : ""
            let contains = point == "/" || path == point || path.hasPrefix(point + "/")
            if contains, point.count >= (holder?.point.count ?? -1) { holder = (point, source) }
        }
        guard let holder else { return nil }
        let names = { (text: String) in text.split(separator: "/").contains { $0 == volume } }
        return names(holder.point) || names(holder.source) ? holder.point : nil
    }
}

/// The annotations a run puts on a volume it retains, so that `repave audit` and a person can
/// tell which run kept it, and for which claim.
public enum RetainedVolume {
    public static let runAnnotation = "repave/run-id"
    /// `namespace/claim`.
    public static let claimAnnotation = "repave/claim"

    /// The merge patch's `metadata.annotations`: the run's marks (`namespace/claim`), or (both
    /// nil) their removal.
    static func annotations(run: String?, claim: String?) -> JSON {
        [.init(runAnnotation): run.map(JSON.string) ?? .null, .init(claimAnnotation): claim.map(JSON.string) ?? .null]
    }
}

/// The facts every claim strategy journals (see ``StepContext/remember(_:_:)``).
public enum ClaimFact {
    public static let claimUID = Fact<String>("claim.uid")
    public static let volume = Fact<String>("pv.name")
    public static let volumeUID = Fact<String>("pv.uid")
    public static let reclaimPolicy = Fact<String>("pv.reclaimPolicy")
    /// The old Longhorn Volume, as saved.
    public static let longhornUID = Fact<String>("longhorn.uid")
    /// The old Longhorn Volume's name (the PV's `spec.csi.volumeHandle`), journaled only when it
    /// is not the PV's name (a volume provisioned by hand or restored from a backup); otherwise
    /// the PV's name. ``longhornVolume(_:)`` reads it.
    public static let longhornName = Fact<String>("longhorn.name")
    /// The old Longhorn Volume's name, as the run saved it.
    public static func longhornVolume(_ facts: Facts) -> String? { facts[longhornName] ?? facts[volume] }
    /// The workloads the run acts on, fixed at its start.
    public static let workloads = Fact<[Workload]>("workloads")
    /// The replicas a workload had before the run scaled it down.
    public static func replicas(_ workload: Workload) -> Fact<Int> { Fact("replicas.\(ClaimTarget.reference(workload))") }
    /// The `minReplicas` of the HorizontalPodAutoscaler that scales the workload.
    public static func hpaMinimum(_ workload: Workload) -> Fact<Int> { Fact("hpa.minReplicas.\(ClaimTarget.reference(workload))") }
}

/// `kind/name,kind/name` in the journal.
extension [Workload]: FactValue {
    public init?(journaled: String) {
        var workloads: [Workload] = []
        for item in journaled.split(separator: ",") {
            let parts = item.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2, let kind = Workload.Kind(rawValue: parts[0]) else { return nil }
            workloads.append(Workload(kind: kind, name: parts[1]))
        }
        self = workloads
    }

    public var journaled: String { map(ClaimTarget.reference).joined(separator: ",") }
}
