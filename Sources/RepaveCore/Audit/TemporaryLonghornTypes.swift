// TEMPORARY until the replicas branch's lab commit is cherry-picked (it defines these).
import KubeAPI
extension ResourceType {
    public static let longhornReplicas = ResourceType(group: "longhorn.io", version: "v1beta2", plural: "replicas", kind: "Replica", namespaced: true)
    public static let longhornSettings = ResourceType(group: "longhorn.io", version: "v1beta2", plural: "settings", kind: "Setting", namespaced: true)
}
