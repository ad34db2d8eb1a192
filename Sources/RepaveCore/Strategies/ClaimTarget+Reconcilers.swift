import Foundation
import KubeAPI

extension ClaimTarget {
    /// Reconcilers that would undo or fight a scale-down, unless the plan acknowledges them.
    static func checkReconcilers(_ objects: [(Workload, JSON)], autoscalers: [JSON], acknowledged: [RecreatePlan.Reconciler]) throws {
        var found: [(RecreatePlan.Reconciler, String)] = []
        let workloads = objects.map(\.0)
        for (workload, object) in objects {
            let meta = ObjectMeta(object["metadata"] ?? [:])
            let name = "\(workload.kind.rawValue)/\(workload.name)"
            if meta.annotations["argocd.argoproj.io/tracking-id"] != nil || meta.labels["app.kubernetes.io/instance"] != nil {
                found.append((.argocd, "\(name) is tracked by Argo CD; with self-heal it scales back up: disable auto-sync for the Application (or a deny sync window), then add 'argocd' to acknowledge"))
            }
            if meta.labels.keys.contains(where: { $0.hasPrefix("kustomize.toolkit.fluxcd.io/") || $0.hasPrefix("helm.toolkit.fluxcd.io/") }) {
                found.append((.flux, "\(name) is applied by Flux: suspend its Kustomization or HelmRelease (flux suspend …), then add 'flux' to acknowledge"))
            }
            if (Array(meta.labels.keys) + Array(meta.annotations.keys)).contains(where: { $0.hasPrefix("com.coder.") }) {
                found.append((.coder, "\(name) belongs to a Coder workspace, which creates and deletes it itself: stop the workspace's autostart and make sure no build runs in the window, then add 'coder' to acknowledge"))
            }
        }
        for hpa in autoscalers {
            let target = hpa[path: "spec", "scaleTargetRef"]
            if let kind = target?["kind"]?.stringValue, let name = target?["name"]?.stringValue,
               workloads.contains(where: { $0.kind.rawValue == kind && $0.name == name }) {
                found.append((.hpa, "HorizontalPodAutoscaler \(ObjectMeta(hpa["metadata"] ?? [:]).name) scales \(kind)/\(name); scale-up restores at least its minReplicas: add 'hpa' to acknowledge"))
            }
        }
        let unacknowledged = found.filter { !acknowledged.contains($0.0) }
        guard !unacknowledged.isEmpty else { return }
        throw RepaveError(.reconcilers, "something would undo or fight the scale-down",
                          causes: unacknowledged.map(\.1), hint: "deal with each, then list it under acknowledge: in the plan")
    }
}
