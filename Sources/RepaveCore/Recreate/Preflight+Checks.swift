import Foundation
import KubeAPI

extension Recreate {
    /// Every permission the run will use, as SelfSubjectAccessReview questions.
    func permissions(_ workloads: [RecreatePlan.Workload]) -> [KubeClient.AccessQuestion] {
        let ns = namespace
        var questions: [KubeClient.AccessQuestion] = [
            .init("get", .namespaces, name: "kube-system"),
            .init("get", .persistentVolumeClaims, namespace: ns), .init("list", .persistentVolumeClaims, namespace: ns),
            .init("watch", .persistentVolumeClaims, namespace: ns), .init("create", .persistentVolumeClaims, namespace: ns),
            .init("delete", .persistentVolumeClaims, namespace: ns),
            .init("get", .persistentVolumes), .init("patch", .persistentVolumes),
            .init("get", .storageClasses),
            .init("list", .pods, namespace: ns), .init("watch", .pods, namespace: ns),
            .init("get", .replicaSets, namespace: ns),
            .init("list", .horizontalPodAutoscalers, namespace: ns),
            .init("get", .leases, namespace: ns), .init("create", .leases, namespace: ns),
            .init("update", .leases, namespace: ns), .init("delete", .leases, namespace: ns),
            .init("get", .longhornVolumes, namespace: plan.verify.namespace),
            .init("list", .longhornVolumes, namespace: plan.verify.namespace), .init("watch", .longhornVolumes, namespace: plan.verify.namespace),
        ]
        if plan.storageClass.ensure { questions.append(.init("create", .storageClasses)) }
        if plan.oldVolume == .delete {
            questions += [.init("delete", .persistentVolumes), .init("delete", .longhornVolumes, namespace: plan.verify.namespace)]
        }
        for kind in Set(workloads.map(\.kind)) {
            let type = workloadType(kind)
            questions += ["get", "list", "watch", "patch"].map { .init($0, type, namespace: ns) }
        }
        return questions
    }

    /// The plan's workloads, or (none listed) any Deployment or StatefulSet: what the permission
    /// check asks about.
    public var plannedWorkloadsOrAny: [RecreatePlan.Workload] {
        plan.target.workloads.isEmpty ? [.init(kind: .deployment, name: "*"), .init(kind: .statefulSet, name: "*")] : plan.target.workloads
    }

    /// Asks the API server about every permission at once; refuses listing all that are missing,
    /// with the Role rules that would grant them.
    public func checkPermissions(_ client: KubeClient, workloads: [RecreatePlan.Workload]) async throws {
        // Namespaced questions: one rules review per namespace (falling back to single reviews
        // when the authorizer cannot list rules); cluster-scoped ones: one review each.
        var missing: [KubeClient.AccessQuestion] = []
        var rulesByNamespace: [String: [KubeClient.AccessRule]?] = [:]
        for question in permissions(workloads) {
            var allowed: Bool
            if let namespace = question.namespace {
                if rulesByNamespace[namespace] == nil { rulesByNamespace[namespace] = .some(try await client.rulesReview(in: namespace)) }
                if let known = rulesByNamespace[namespace] ?? nil {
                    allowed = known.contains { $0.allows(question) }
                } else {
                    allowed = try await client.accessReview(question).allowed
                }
            } else {
                allowed = try await client.accessReview(question).allowed
            }
            if !allowed { missing.append(question) }
        }
        guard !missing.isEmpty else { return }
        let lines = missing.map { "\($0.verb) \($0.type)" + ($0.namespace.map { " in \($0)" } ?? " (cluster-wide)") }
        var grouped: [String: [String]] = [:]
        for question in missing {
            grouped["\(question.type.group)|\(question.type.plural)|\(question.namespace ?? "*")", default: []].append(question.verb)
        }
        let rules = grouped.sorted { $0.key < $1.key }.map { key, verbs in
            let parts = key.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            return "{apiGroups: [\"\(parts[0])\"], resources: [\(parts[1])], verbs: [\(verbs.joined(separator: ", "))]}" + (parts[2] == "*" ? " (ClusterRole)" : " (Role in \(parts[2]))")
        }
        throw RepaveError(code: "preflight.permissions", "the user may not do everything the run needs: missing \(missing.count) permissions",
                          causes: lines, hint: "grant these rules (see deploy/rbac.yaml): " + rules.joined(separator: "; "), exitStatus: .refused)
    }

    /// Reconcilers that would undo or fight a scale-down, unless the plan acknowledges them.
    func checkReconcilers(_ objects: [(RecreatePlan.Workload, JSON)], autoscalers: [JSON]) throws {
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
        let unacknowledged = found.filter { !plan.acknowledge.contains($0.0) }
        guard !unacknowledged.isEmpty else { return }
        throw RepaveError(code: "preflight.reconcilers", "something would undo or fight the scale-down",
                          causes: unacknowledged.map(\.1), hint: "deal with each, then list it under acknowledge: in the plan", exitStatus: .refused)
    }
}
