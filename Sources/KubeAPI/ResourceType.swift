/// A kind of object the client can address: its API group, version, plural and scope.
public struct ResourceType: Sendable, Hashable, CustomStringConvertible {
    public var group: String
    public var version: String
    public var plural: String
    public var kind: String
    public var namespaced: Bool

    public init(group: String, version: String, plural: String, kind: String, namespaced: Bool) {
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
        self.namespaced = namespaced
    }

    /// `v1` or `apps/v1`.
    public var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }

    /// `persistentvolumeclaims` or `deployments.apps`, as kubectl and RBAC name it.
    public var description: String { group.isEmpty ? plural : "\(plural).\(group)" }

    /// `/api/v1` or `/apis/apps/v1`.
    public var groupVersionPath: String { group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)" }

    /// The URL path of a collection or object: `/api/v1/namespaces/devpod/persistentvolumeclaims/home/status`.
    public func path(namespace: String? = nil, name: String? = nil, subresource: String? = nil) -> String {
        var path = groupVersionPath
        if namespaced, let namespace { path += "/namespaces/\(escape(namespace))" }
        path += "/\(plural)"
        if let name { path += "/\(escape(name))" }
        if let subresource { path += "/\(subresource)" }
        return path
    }

    private func escape(_ segment: String) -> String {
        segment.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? segment
    }

    public static let namespaces = ResourceType(group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false)
    public static let nodes = ResourceType(group: "", version: "v1", plural: "nodes", kind: "Node", namespaced: false)
    public static let pods = ResourceType(group: "", version: "v1", plural: "pods", kind: "Pod", namespaced: true)
    public static let configMaps = ResourceType(group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true)
    public static let events = ResourceType(group: "", version: "v1", plural: "events", kind: "Event", namespaced: true)
    public static let persistentVolumeClaims = ResourceType(group: "", version: "v1", plural: "persistentvolumeclaims", kind: "PersistentVolumeClaim", namespaced: true)
    public static let persistentVolumes = ResourceType(group: "", version: "v1", plural: "persistentvolumes", kind: "PersistentVolume", namespaced: false)
    public static let storageClasses = ResourceType(group: "storage.k8s.io", version: "v1", plural: "storageclasses", kind: "StorageClass", namespaced: false)
    /// Which node a volume is attached to (made by the attach/detach controller).
    public static let volumeAttachments = ResourceType(group: "storage.k8s.io", version: "v1", plural: "volumeattachments", kind: "VolumeAttachment", namespaced: false)
    public static let deployments = ResourceType(group: "apps", version: "v1", plural: "deployments", kind: "Deployment", namespaced: true)
    public static let statefulSets = ResourceType(group: "apps", version: "v1", plural: "statefulsets", kind: "StatefulSet", namespaced: true)
    public static let replicaSets = ResourceType(group: "apps", version: "v1", plural: "replicasets", kind: "ReplicaSet", namespaced: true)
    public static let leases = ResourceType(group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true)
    public static let horizontalPodAutoscalers = ResourceType(group: "autoscaling", version: "v1", plural: "horizontalpodautoscalers", kind: "HorizontalPodAutoscaler", namespaced: true)
    public static let customResourceDefinitions = ResourceType(group: "apiextensions.k8s.io", version: "v1", plural: "customresourcedefinitions", kind: "CustomResourceDefinition", namespaced: false)
    public static let selfSubjectRulesReviews = ResourceType(group: "authorization.k8s.io", version: "v1", plural: "selfsubjectrulesreviews", kind: "SelfSubjectRulesReview", namespaced: false)
    public static let selfSubjectAccessReviews = ResourceType(group: "authorization.k8s.io", version: "v1", plural: "selfsubjectaccessreviews", kind: "SelfSubjectAccessReview", namespaced: false)
    /// Longhorn's volume (`volumes.longhorn.io`), named like the PV it backs.
    public static let longhornVolumes = ResourceType(group: "longhorn.io", version: "v1beta2", plural: "volumes", kind: "Volume", namespaced: true)
    /// Longhorn's replica of a volume (`replicas.longhorn.io`), labelled `longhornvolume=<volume>`.
    public static let longhornReplicas = ResourceType(group: "longhorn.io", version: "v1beta2", plural: "replicas", kind: "Replica", namespaced: true)
    /// A volume's engine (`engines.longhorn.io`): which replicas it writes to, and their rebuilds' progress.
    public static let longhornEngines = ResourceType(group: "longhorn.io", version: "v1beta2", plural: "engines", kind: "Engine", namespaced: true)
    /// A node as Longhorn schedules replicas on it (`nodes.longhorn.io`), named like the Kubernetes node.
    public static let longhornNodes = ResourceType(group: "longhorn.io", version: "v1beta2", plural: "nodes", kind: "Node", namespaced: true)
    /// One of Longhorn's global settings (`settings.longhorn.io`), such as `default-replica-count`.
    public static let longhornSettings = ResourceType(group: "longhorn.io", version: "v1beta2", plural: "settings", kind: "Setting", namespaced: true)
}
