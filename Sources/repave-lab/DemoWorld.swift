import ArgumentParser
import Foundation
import KubeAPI

/// `repave-lab demo-world`: the devpod's world in the lab (a 1-replica Longhorn class, the 60Gi
/// home claim on it, the workspace Deployment mounting it), or with `--show`, how the claim and
/// its Longhorn volume look now.
struct DemoWorld: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "demo-world", abstract: "Create (or show) the devpod scenario in the lab.")

    @Option var kubeconfig: String
    @Option var namespace = "devpod"
    @Flag var show = false
    @Flag(name: .customLong("real-node"), help: "The workspace is a real process (lab/mover:1, a shell loop that exits on SIGTERM), for LAB_NODES=real.")
    var realNode = false

    func run() async throws {
        let client = try KubeClient(connection: try KubeconfigLoader(explicitPath: kubeconfig).load(), userAgent: "repave-lab/demo")
        if show { return try await describe(client) }
        try await client.create(.namespaces, ["metadata": ["name": .string(namespace)]])
        // Shared by every world of the cluster (bench/copy.sh makes one per data shape).
        if try await client.getIfPresent(.storageClasses, named: "longhorn-1r") == nil {
            try await client.create(.storageClasses, [
                "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": ["name": "longhorn-1r"],
                "provisioner": "driver.longhorn.io", "parameters": ["numberOfReplicas": "1", "staleReplicaTimeout": "30", "fsType": "ext4"],
                "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate", "allowVolumeExpansion": true,
            ])
        }
        try await client.create(.persistentVolumeClaims, in: namespace, [
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": ["name": "coder-jeda-codespace-home", "labels": ["com.coder.resource": "true"]],
            "spec": ["accessModes": ["ReadWriteOnce"], "storageClassName": "longhorn-1r", "resources": ["requests": ["storage": "60Gi"]]],
        ])
        var workspace: JSON = ["name": "dev", "image": "codercom/enterprise-base:ubuntu", "volumeMounts": [["name": "home", "mountPath": "/home/coder"]]]
        if realNode {
            workspace = ["name": "dev", "image": "lab/mover:1", "imagePullPolicy": "Never",
                         "command": ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"],
                         "volumeMounts": [["name": "home", "mountPath": "/home/coder"]]]
        }
        try await client.create(.deployments, in: namespace, [
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "coder-jeda-codespace"],
            "spec": [
                "replicas": 1, "strategy": ["type": "Recreate"], "selector": ["matchLabels": ["app": "coder-jeda-codespace"]],
                "template": [
                    "metadata": ["labels": ["app": "coder-jeda-codespace"]],
                    "spec": ["containers": [workspace], "terminationGracePeriodSeconds": 10,
                             "volumes": [["name": "home", "persistentVolumeClaim": ["claimName": "coder-jeda-codespace-home"]]]],
                ],
            ],
        ])
        try await client.wait(for: .deployments, named: "coder-jeda-codespace", in: namespace, timeout: .seconds(60), describedAs: "the workspace to be available") {
            $0.map { Deployment($0).availableReplicas == 1 } ?? false
        }
        print("devpod world ready:")
        try await describe(client)
    }

    private func describe(_ client: KubeClient) async throws {
        let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "coder-jeda-codespace-home", in: namespace))
        let longhorn = try await client.getIfPresent(.longhornVolumes, named: claim.volumeName ?? "", in: "longhorn-system").map(LonghornVolume.init)
        let deployment = Deployment(try await client.get(.deployments, named: "coder-jeda-codespace", in: namespace))
        print("  claim \(namespace)/\(claim.name): uid \(claim.uid), class \(claim.storageClassName ?? "-"), \(claim.phase), \(claim.requestedStorage ?? "")")
        print("  volume \(claim.volumeName ?? "-"): Longhorn replicas \(longhorn?.numberOfReplicas ?? 0), \(longhorn?.state ?? "-"), \(longhorn?.robustness ?? "-")")
        print("  deployment coder-jeda-codespace: \(deployment.availableReplicas)/\(deployment.replicas) available")
    }
}
