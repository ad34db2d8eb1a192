import Foundation
import KubeAPI
import Subprocess
import SystemPackage

/// The devpod's world in the lab, built fresh for every measured run: a 1-replica Longhorn class,
/// the 60Gi home claim on it, the workspace Deployment mounting it (what `repave-lab demo-world`
/// and the recreate tests build), in a namespace and with class names of its own, so that no run
/// sees what an earlier one left.
struct DevpodWorld {
    static let claim = "coder-jeda-codespace-home"
    static let deployment = "coder-jeda-codespace"

    /// The lab agent's per-object knobs (docs/lab.md): how long a pod takes to terminate, how
    /// long the provisioner takes to create a volume. Both tools carry the claim's annotation
    /// over to the claim they re-create, and the pods get theirs from the Deployment's template.
    struct Delays {
        var terminate: String
        var provision: String
        var isZero: Bool { [terminate, provision].allSatisfy { Double($0.filter { $0.isNumber || $0 == "." }) == 0 } }
    }

    let id = String(UInt32.random(in: 0...UInt32.max), radix: 36)
    var namespace: String { "bench-\(id)" }
    var oldClass: String { "bench-1r-\(id)" }
    var newClass: String { "bench-3r-\(id)" }

    /// Builds it and waits until the workspace is available; returns the claim as it is then.
    func create(_ client: KubeClient, delays: Delays) async throws -> PersistentVolumeClaim {
        try await client.create(.namespaces, ["metadata": ["name": .string(namespace)]])
        try await client.create(.storageClasses, [
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": ["name": .string(oldClass)],
            "provisioner": "driver.longhorn.io", "parameters": ["numberOfReplicas": "1", "staleReplicaTimeout": "30", "fsType": "ext4"],
            "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate", "allowVolumeExpansion": true,
        ])
        try await client.create(.persistentVolumeClaims, in: namespace, [
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": ["name": .string(Self.claim), "labels": ["com.coder.resource": "true"]],
            "spec": ["accessModes": ["ReadWriteOnce"], "storageClassName": .string(oldClass), "resources": ["requests": ["storage": "60Gi"]]],
        ])
        try await client.create(.deployments, in: namespace, [
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": .string(Self.deployment)],
            "spec": [
                "replicas": 1, "strategy": ["type": "Recreate"], "selector": ["matchLabels": ["app": .string(Self.deployment)]],
                "template": [
                    "metadata": ["labels": ["app": .string(Self.deployment)], "annotations": ["lab.repave/terminate-delay": .string(delays.terminate)]],
                    "spec": ["containers": [["name": "dev", "image": "codercom/enterprise-base:ubuntu",
                                             "volumeMounts": [["name": "home", "mountPath": "/home/coder"]]]],
                             "volumes": [["name": "home", "persistentVolumeClaim": ["claimName": .string(Self.claim)]]]],
                ],
            ],
        ])
        try await client.wait(for: .deployments, named: Self.deployment, in: namespace, timeout: .seconds(60), describedAs: "the workspace to be available") {
            $0.map { Deployment($0).availableReplicas == 1 } ?? false
        }
        // Set once the claim is Bound: the delay is for the claim the tools re-create from it.
        return PersistentVolumeClaim(try await client.patch(.persistentVolumeClaims, named: Self.claim, in: namespace,
                                                            .merge(["metadata": ["annotations": ["lab.repave/provision-delay": .string(delays.provision)]]])))
    }

    /// What both tools must leave behind, checked after each run so that only finished work is
    /// timed: a new claim on the new class, Bound, its Longhorn volume with 3 healthy replicas,
    /// the workspace available again.
    func checkRecreated(_ client: KubeClient, original: PersistentVolumeClaim, tool: String) async throws {
        let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: Self.claim, in: namespace))
        var problems: [String] = []
        if claim.uid == original.uid { problems.append("the claim was not re-created") }
        if claim.storageClassName != newClass { problems.append("the claim's class is \(claim.storageClassName ?? "none")") }
        if !claim.isBound { problems.append("the claim is \(claim.phase)") }
        let volume = try await client.getIfPresent(.longhornVolumes, named: claim.volumeName ?? "", in: "longhorn-system").map(LonghornVolume.init)
        if volume?.numberOfReplicas != 3 || volume?.robustness != "healthy" {
            problems.append("the Longhorn volume has \(volume?.numberOfReplicas ?? 0) replicas, \(volume?.robustness ?? "no volume")")
        }
        if Deployment(try await client.get(.deployments, named: Self.deployment, in: namespace)).availableReplicas != 1 {
            problems.append("the workspace is not available")
        }
        if !problems.isEmpty { throw BenchError("\(tool) left \(namespace) unfinished: " + problems.joined(separator: "; ")) }
    }

    /// Everything the world and the run made but its namespace: the workspace, the new claim
    /// (its volume goes with it: reclaim policy Delete), both classes, and the old volume both
    /// tools kept (Retain). Waits until the claim is gone (after the workspace's pod), so that
    /// nothing is still being deleted while the next run is measured. The namespaces go at the
    /// end (``removeNamespaces(_:_:)``): the namespace controller starts on one only 5 s after
    /// its deletion, which would land in the middle of the next run.
    func remove(_ client: KubeClient, oldVolume: String?) async {
        do {
            if let deployment = try await client.getIfPresent(.deployments, named: Self.deployment, in: namespace) {
                try await client.delete(.deployments, named: Self.deployment, in: namespace, uid: Deployment(deployment).uid, propagationPolicy: .background)
            }
            if let claim = try await client.getIfPresent(.persistentVolumeClaims, named: Self.claim, in: namespace) {
                try await client.delete(.persistentVolumeClaims, named: Self.claim, in: namespace, uid: PersistentVolumeClaim(claim).uid)
                try await client.wait(for: .persistentVolumeClaims, named: Self.claim, in: namespace, timeout: .seconds(60),
                                      describedAs: "the claim to be gone") { $0 == nil }
            }
            for name in [oldClass, newClass] {
                if let object = try await client.getIfPresent(.storageClasses, named: name) {
                    try await client.delete(.storageClasses, named: name, uid: StorageClass(object).uid)
                }
            }
            if let oldVolume {
                if let pv = try await client.getIfPresent(.persistentVolumes, named: oldVolume) {
                    try await client.delete(.persistentVolumes, named: oldVolume, uid: PersistentVolume(pv).uid)
                }
                if let volume = try await client.getIfPresent(.longhornVolumes, named: oldVolume, in: "longhorn-system") {
                    try await client.delete(.longhornVolumes, named: oldVolume, in: "longhorn-system", uid: LonghornVolume(volume).uid)
                }
            }
        } catch {
            Report.note("warning: cleaning up \(namespace): \(error)")
        }
    }

    /// Deletes the worlds' namespaces (emptied by ``remove(_:oldVolume:)``) and waits until
    /// they are gone.
    static func removeNamespaces(_ worlds: [DevpodWorld], _ client: KubeClient) async {
        do {
            for world in worlds {
                if let object = try await client.getIfPresent(.namespaces, named: world.namespace) {
                    try await client.delete(.namespaces, named: world.namespace, uid: Namespace(object).uid)
                }
            }
            for world in worlds {
                try await client.wait(for: .namespaces, named: world.namespace, timeout: .seconds(120), describedAs: "namespace \(world.namespace) to be gone") { $0 == nil }
            }
        } catch {
            Report.note("warning: removing the benchmark's namespaces: \(error)")
        }
    }

    /// plans/devpod-home.yaml pointed at this world: its namespace, its new class, the lab (no
    /// kubeconfig context) and a git report made for it. Every other line is the plan as shipped.
    func plan(from template: String, gitReport: String) throws -> String {
        var text = template
        for (old, new) in [
            ("cluster:\n  context: ardenone-cluster\n", ""),
            ("target:\n  namespace: devpod\n", "target:\n  namespace: \(namespace)\n"),
            ("storageClass:\n  name: longhorn-3r\n", "storageClass:\n  name: \(newClass)\n"),
            ("  report: git-report.json\n", "  report: \(gitReport)\n"),
        ] {
            guard text.components(separatedBy: old).count == 2 else {
                throw BenchError("the devpod plan no longer has \(old.debugDescription): update DevpodWorld.plan(from:gitReport:)")
            }
            text = text.replacingOccurrences(of: old, with: new)
        }
        return text
    }
}

/// A workspace home for the plan's git preflight: two repositories, committed and pushed, and a
/// node_modules directory the plan ignores. The report itself is made per world (it names the
/// claim), outside the timed region, as it is made inside the workspace before the window.
struct GitHome {
    let path: String

    init(in scratch: String) async throws {
        path = scratch + "/home"
        let environment: [Environment.Key: String?] = [
            "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@repave.invalid", "GIT_COMMITTER_NAME": "bench",
            "GIT_COMMITTER_EMAIL": "bench@repave.invalid", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
        ]
        func git(_ arguments: String...) async throws {
            let result = try await Subprocess.run(.name("git"), arguments: Arguments(arguments), environment: .inherit.updating(environment),
                                                  output: .discarded, error: .string(limit: 4096))
            guard result.terminationStatus.isSuccess else {
                throw BenchError("git \(arguments.joined(separator: " ")): \(result.standardError)")
            }
        }
        for repository in ["api", "web"] {
            let remote = scratch + "/remotes/\(repository).git", clone = path + "/Research/\(repository)"
            try await git("init", "-q", "--bare", "-b", "main", remote)
            try await git("init", "-q", "-b", "main", clone)
            try "# \(repository)\n".write(toFile: clone + "/README.md", atomically: true, encoding: .utf8)
            try await git("-C", clone, "add", "README.md")
            try await git("-C", clone, "commit", "-qm", "start \(repository)")
            try await git("-C", clone, "remote", "add", "origin", remote)
            try await git("-C", clone, "push", "-q", "-u", "origin", "main")
        }
        try FileManager.default.createDirectory(atPath: path + "/Research/web/node_modules/left-pad", withIntermediateDirectories: true)
        try "module.exports = 1\n".write(toFile: path + "/Research/web/node_modules/left-pad/index.js", atomically: true, encoding: .utf8)
    }

    /// `repave git-check` for this world's claim, written to `report`.
    func report(for world: DevpodWorld, repave: String, to report: String) async throws {
        let result = try await Subprocess.run(
            .path(FilePath(repave)), arguments: ["git-check", path, "--ignore", "**/node_modules/**", "--report", report,
                                                 "--for", "\(world.namespace)/\(DevpodWorld.claim)"],
            output: .discarded, error: .string(limit: 65536))
        guard result.terminationStatus.isSuccess else { throw BenchError("repave git-check failed: \(result.standardError)") }
    }
}
