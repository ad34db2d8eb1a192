import Foundation
import KubeAPI

extension Lab {
    /// A client for the lab as its admin.
    public func adminClient(userAgent: String = "repave-test") throws -> KubeClient {
        try KubeClient(connection: try KubeconfigLoader(explicitPath: adminKubeconfig).load(), userAgent: userAgent)
    }
}

/// A namespace for one test, with a unique name, deleted (uid-guarded) when the test ends. The
/// body starts once the namespace's default service account has its token: before that the API
/// server refuses every pod ("No API token found for service account"), a test's own pod at once
/// and a ReplicaSet's with a growing back-off, and the token controller is slowest in the first
/// minute of `make test`, when dozens of namespaces are made at once.
public func withTestNamespace(_ client: KubeClient, prefix: String, _ body: (String) async throws -> Void) async throws {
    let name = "\(prefix)-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
    let created = try await client.create(.namespaces, ["metadata": ["name": .string(name)]])
    let uid = Namespace(created).uid
    do {
        try await client.wait(for: .serviceAccounts, named: "default", in: name, timeout: labRolloutTimeout,
                              describedAs: "the default service account's token in \(name)") {
            $0?["secrets"]?.arrayValue?.isEmpty == false
        }
        try await body(name)
    } catch {
        _ = try? await client.delete(.namespaces, named: name, uid: uid)
        throw error
    }
    try await client.delete(.namespaces, named: name, uid: uid)
}

extension ResourceType {
    /// Tests wait for a namespace's default one; Repave itself never reads service accounts.
    static let serviceAccounts = ResourceType(group: "", version: "v1", plural: "serviceaccounts", kind: "ServiceAccount", namespaced: true)
}

/// Manifests the lab tests build on.
public enum LabFixtures {
    public static func storageClass(
        _ name: String, replicas: Int = 3, reclaimPolicy: String = "Delete", bindingMode: String = "Immediate",
        annotations: [String: String] = [:]
    ) -> JSON {
        ["apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
         "metadata": ["name": .string(name), "annotations": .object(annotations.mapValues { .string($0) })],
         "provisioner": "driver.longhorn.io",
         "parameters": ["numberOfReplicas": .string(String(replicas)), "staleReplicaTimeout": "30", "fsType": "ext4"],
         "reclaimPolicy": .string(reclaimPolicy), "volumeBindingMode": .string(bindingMode), "allowVolumeExpansion": true]
    }

    public static func claim(_ name: String, storageClass: String, size: String = "1Gi", annotations: [String: String] = [:]) -> JSON {
        ["apiVersion": "v1", "kind": "PersistentVolumeClaim",
         "metadata": ["name": .string(name), "annotations": .object(annotations.mapValues { .string($0) })],
         "spec": ["accessModes": ["ReadWriteOnce"], "storageClassName": .string(storageClass),
                  "resources": ["requests": ["storage": .string(size)]]]]
    }

    public static func deployment(_ name: String, claim: String, replicas: Int = 1, podAnnotations: [String: String] = [:]) -> JSON {
        ["apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": ["name": .string(name)],
         "spec": [
            "replicas": .integer(Int64(replicas)),
            "strategy": ["type": "Recreate"],
            "selector": ["matchLabels": ["app": .string(name)]],
            "template": [
                "metadata": ["labels": ["app": .string(name)], "annotations": .object(podAnnotations.mapValues { .string($0) })],
                "spec": ["containers": [["name": "workspace", "image": "codercom/enterprise-base:ubuntu"]],
                         "volumes": [["name": "home", "persistentVolumeClaim": ["claimName": .string(claim)]]]],
            ],
         ]]
    }
}
