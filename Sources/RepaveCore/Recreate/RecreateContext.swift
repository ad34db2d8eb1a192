import Foundation
import KubeAPI

/// What every recreate step knows: the plan, the run, where manifests go, and the fact keys the
/// steps share through the journal.
public struct Recreate: Sendable {
    public let plan: RecreatePlan
    public let run: String
    public let runDirectory: String
    /// This process has just checked every permission (`run` does, before it makes a journal):
    /// the preflight step does not ask the API server a second time.
    public let permissionsChecked: Bool

    public init(plan: RecreatePlan, run: String, runDirectory: String, permissionsChecked: Bool = false) {
        self.plan = plan
        self.run = run
        self.runDirectory = runDirectory
        self.permissionsChecked = permissionsChecked
    }

    var namespace: String { plan.target.namespace }
    var claim: String { plan.target.claim }
    static let runAnnotation = "repave/run-id"
    static let replicasAnnotation = "repave/original-replicas"

    /// The keys of the facts the recreate steps journal.
    public enum Fact {
        public static let claimUID = "claim.uid"
        public static let volume = "pv.name"
        static let volumeUID = "pv.uid"
        static let reclaimPolicy = "pv.reclaimPolicy"
        static let longhornUID = "longhorn.uid"     // the old Longhorn Volume, as saved
        static let workloads = "workloads"          // kind/name,kind/name
        public static let newClaimUID = "newclaim.uid"
        /// Set when the retained old volume vanished during the run (not by repave's hand).
        public static let oldVolumeLost = "pv.lost"
        static func replicas(_ workload: String) -> String { "replicas.\(workload)" }
        static func hpaMinimum(_ workload: String) -> String { "hpa.minReplicas.\(workload)" }
    }

    /// The steps of DESIGN.md's recreate strategy, in order.
    public func steps() -> [any Step] {
        [
            Preflight(recreate: self), SaveManifests(recreate: self), EnsureStorageClass(recreate: self),
            RetainOldVolume(recreate: self), ScaleDown(recreate: self), DeleteClaim(recreate: self),
            CreateClaim(recreate: self), AwaitBound(recreate: self), ScaleUp(recreate: self),
            Verify(recreate: self), ReleaseOldVolume(recreate: self),
        ]
    }

    // MARK: shared reads

    func workloadType(_ kind: RecreatePlan.Workload.Kind) -> ResourceType {
        kind == .deployment ? .deployments : .statefulSets
    }

    /// A workload object's `spec.replicas`.
    public static func replicas(_ kind: RecreatePlan.Workload.Kind, _ object: JSON) -> Int {
        kind == .deployment ? Deployment(object).replicas : StatefulSet(object).replicas
    }

    /// The workloads the run acts on: the plan's, or those recorded when the run started.
    func workloads(_ context: StepContext) -> [RecreatePlan.Workload] {
        if let recorded = context.facts[Fact.workloads] {
            return recorded.split(separator: ",").compactMap { item in
                let parts = item.split(separator: "/", maxSplits: 1).map(String.init)
                guard parts.count == 2, let kind = RecreatePlan.Workload.Kind(rawValue: parts[0]) else { return nil }
                return RecreatePlan.Workload(kind: kind, name: parts[1])
            }
        }
        return plan.target.workloads
    }

    /// Pods in the namespace that mount the claim (one list of the namespace's pods).
    /// The pods that use the claim: those that name it and have not ended (a Succeeded or Failed
    /// pod holds no volume, as the pvc-protection controller counts them too).
    func podsMountingClaim(_ client: KubeClient) async throws -> [Pod] {
        try await client.list(.pods, in: namespace).items.map(Pod.init)
            .filter { $0.claimNames.contains(claim) && $0.phase != "Succeeded" && $0.phase != "Failed" }
    }

    /// The workloads scaled back up since scale-down, each named with whoever last set its
    /// replicas (from `managedFields`). A workload deleted meanwhile (a stopped Coder workspace)
    /// runs no pod: it counts as down.
    func workloadsBackUp(_ context: StepContext) async throws -> [String] {
        var up: [String] = []
        for workload in workloads(context) {
            guard let object = try await context.client.getIfPresent(workloadType(workload.kind), named: workload.name, in: namespace) else { continue }
            let replicas = Recreate.replicas(workload.kind, object)
            guard replicas != 0 else { continue }
            let manager = Self.replicasManager(object).map { " (spec.replicas last set by \($0))" } ?? ""
            up.append("\(workload.kind.rawValue)/\(workload.name) is at \(replicas) replicas again\(manager)")
        }
        return up
    }

    /// Between scale-down and the new claim nothing may use the claim: a reconciler or a person
    /// scaling a workload back up, or any pod mounting it, stops the run (exit 3) before `before`
    /// happens. Before the point of no return (`abortable`) the operator may also abort.
    func requireWorkloadsDown(_ context: StepContext, before: String, abortable: Bool) async throws {
        let up = try await workloadsBackUp(context)
        let pods = try await podsMountingClaim(context.client)
        if up.isEmpty && pods.isEmpty { return }
        let hint = up.isEmpty
            ? "find what started \(pods.count == 1 ? "it" : "them") (a Job, a debug pod) and stop \(pods.count == 1 ? "it" : "them"), then 'repave resume'"
            : "stop whatever scales it (GitOps sync, HPA, an operator, a person), scale it to 0, then 'repave resume'"
        throw RepaveError(code: up.isEmpty ? "window.claim-in-use" : "window.scaled-up",
                          "stopped before \(before): " + (up.isEmpty ? "a pod uses the claim again" : "the workloads were scaled back up since scale-down"),
                          causes: up + pods.map { "pod \($0.name) mounts the claim" },
                          hint: hint + (abortable ? "; or 'repave abort' to put everything back" : ""),
                          exitStatus: .stoppedMidRun)
    }

    /// The field manager that last set `spec.replicas`, from the object's managedFields.
    static func replicasManager(_ object: JSON) -> String? {
        let entries = object[path: "metadata", "managedFields"]?.arrayValue ?? []
        return entries.filter { $0[path: "fieldsV1", "f:spec", "f:replicas"] != nil }
            .max { ($0["time"]?.stringValue ?? "") < ($1["time"]?.stringValue ?? "") }?["manager"]?.stringValue
    }

    /// The workload (Deployment through its ReplicaSet, or StatefulSet) that controls a pod.
    func owner(of pod: Pod, _ client: KubeClient) async throws -> RecreatePlan.Workload? {
        guard let controller = pod.metadata.controller else { return nil }
        switch controller.kind {
        case "StatefulSet": return .init(kind: .statefulSet, name: controller.name)
        case "ReplicaSet":
            guard let replicaSet = try await client.getIfPresent(.replicaSets, named: controller.name, in: namespace),
                  let deployment = ObjectMeta(replicaSet["metadata"] ?? [:]).controller, deployment.kind == "Deployment"
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

    func refuse(_ code: String, _ message: String, hint: String) -> RepaveError {
        RepaveError(code: "preflight.\(code)", message, hint: hint, exitStatus: .refused)
    }
}
