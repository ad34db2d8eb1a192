import Foundation
import KubeAPI
import RepaveTestSupport
import Testing

/// The lab agent, seen through the real API server: what a kubelet and Longhorn would do.
@Suite("lab agent", .serialized)
struct LabAgentTests {
    let lab: Lab
    let client: KubeClient

    init() throws {
        lab = try Lab.current()
        client = try lab.adminClient(userAgent: "repave-test/lab-agent")
    }

    func uniqueClass(_ prefix: String) -> String { "\(prefix)-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))" }

    func withClass(_ object: JSON, _ body: () async throws -> Void) async throws {
        let created = StorageClass(try await client.create(.storageClasses, object))
        do {
            try await body()
        } catch {
            _ = try? await client.delete(.storageClasses, named: created.name, uid: created.uid)
            throw error
        }
        try await client.delete(.storageClasses, named: created.name, uid: created.uid)
    }

    func podsOf(_ app: String, in ns: String) async throws -> [Pod] {
        try await client.list(.pods, in: ns, labelSelector: "app=\(app)").items.map(Pod.init)
    }

    @Test("nodes lab-node-1..3 are Ready and untainted")
    func nodes() async throws {
        let nodes = try await client.list(.nodes).items.map(Node.init).filter { $0.name.hasPrefix("lab-node-") }
        #expect(nodes.map(\.name).sorted() == ["lab-node-1", "lab-node-2", "lab-node-3"])
        for node in nodes {
            #expect(node.isReady, "\(node.name)")
            #expect(node.taintKeys.isEmpty, "\(node.name): \(node.taintKeys)")
        }
        #expect(try await client.serves(.longhornVolumes))
    }

    @Test("a Deployment on a Longhorn claim becomes Available; scale to 0 removes its pods; Delete reclaims PV and volume")
    func deploymentLifecycle() async throws {
        let className = uniqueClass("lh3")
        try await withClass(LabFixtures.storageClass(className, replicas: 3)) {
            try await withTestNamespace(client, prefix: "agent") { ns in
                let claim = PersistentVolumeClaim(try await client.create(.persistentVolumeClaims, in: ns, LabFixtures.claim("home", storageClass: className)))
                try await client.create(.deployments, in: ns, LabFixtures.deployment("ws", claim: "home"))
                try await client.waitAvailable("ws", in: ns, complete: true, describedAs: "ws available")
                let bound = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "home", in: ns))
                #expect(bound.isBound)
                #expect(bound.volumeName == "pvc-\(claim.uid)")
                let pv = PersistentVolume(try await client.get(.persistentVolumes, named: "pvc-\(claim.uid)"))
                #expect(pv.csiDriver == "driver.longhorn.io")
                #expect(pv.volumeHandle == pv.name)
                #expect(pv.claimRef?.uid == claim.uid)
                #expect(pv.reclaimPolicy == "Delete")
                let volume = try await client.wait(for: .longhornVolumes, named: pv.name, in: "longhorn-system", timeout: .seconds(30), describedAs: "volume attached") {
                    $0.map { LonghornVolume($0).state == "attached" } ?? false
                }.map(LonghornVolume.init)
                #expect(volume?.numberOfReplicas == 3)
                #expect(volume?.robustness == "healthy")
                #expect(volume?.size == String(1 << 30))
                let pod = try #require(try await podsOf("ws", in: ns).first)
                #expect(pod.phase == "Running")
                #expect(pod.isReady)
                #expect(pod.nodeName?.hasPrefix("lab-node-") == true)

                try await client.patch(.deployments, named: "ws", in: ns, .merge(["spec": ["replicas": 0]]))
                try await client.wait(for: .pods, named: pod.name, in: ns, timeout: .seconds(45), describedAs: "pod gone") { $0 == nil }
                #expect(try await podsOf("ws", in: ns).isEmpty)
                try await client.wait(for: .longhornVolumes, named: pv.name, in: "longhorn-system", timeout: .seconds(30), describedAs: "volume detached") {
                    $0.map { LonghornVolume($0).state == "detached" && LonghornVolume($0).robustness == "unknown" } ?? false
                }

                try await client.delete(.persistentVolumeClaims, named: "home", in: ns, uid: claim.uid)
                try await client.wait(for: .persistentVolumes, named: pv.name, timeout: .seconds(45), describedAs: "PV reclaimed") { $0 == nil }
                #expect(try await client.getIfPresent(.longhornVolumes, named: pv.name, in: "longhorn-system") == nil)
            }
        }
    }

    @Test("a Retain PV and its Longhorn volume survive the claim's deletion, Released")
    func retainKeepsVolume() async throws {
        let className = uniqueClass("lhretain")
        try await withClass(LabFixtures.storageClass(className, replicas: 1, reclaimPolicy: "Retain")) {
            try await withTestNamespace(client, prefix: "agent") { ns in
                let claim = PersistentVolumeClaim(try await client.create(.persistentVolumeClaims, in: ns, LabFixtures.claim("data", storageClass: className)))
                try await client.wait(for: .persistentVolumeClaims, named: "data", in: ns, timeout: .seconds(45), describedAs: "bound") {
                    $0.map { PersistentVolumeClaim($0).isBound } ?? false
                }
                let pvName = "pvc-\(claim.uid)"
                try await client.delete(.persistentVolumeClaims, named: "data", in: ns, uid: claim.uid)
                let released = try await client.wait(for: .persistentVolumes, named: pvName, timeout: .seconds(45), describedAs: "released") {
                    $0.map { PersistentVolume($0).phase == "Released" } ?? false
                }.map(PersistentVolume.init)
                // Give the agent time to (wrongly) reclaim it.
                try await Task.sleep(for: .seconds(1))
                #expect(try await client.getIfPresent(.persistentVolumes, named: pvName) != nil)
                #expect(try await client.getIfPresent(.longhornVolumes, named: pvName, in: "longhorn-system") != nil)
                #expect(released?.reclaimPolicy == "Retain")
                // Clean up what Retain kept.
                if let pv = released {
                    try await client.delete(.persistentVolumes, named: pv.name, uid: pv.uid)
                    let backing = LonghornVolume(try await client.get(.longhornVolumes, named: pvName, in: "longhorn-system"))
                    try await client.delete(.longhornVolumes, named: pvName, in: "longhorn-system", uid: backing.uid)
                }
            }
        }
    }

    @Test("WaitForFirstConsumer: provisioned on the node the scheduler selected, then the pod runs")
    func waitForFirstConsumer() async throws {
        let className = uniqueClass("lhwffc")
        try await withClass(LabFixtures.storageClass(className, bindingMode: "WaitForFirstConsumer")) {
            try await withTestNamespace(client, prefix: "agent") { ns in
                try await client.create(.persistentVolumeClaims, in: ns, LabFixtures.claim("late", storageClass: className))
                try await Task.sleep(for: .milliseconds(700))
                #expect(PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "late", in: ns)).phase == "Pending")
                try await client.create(.deployments, in: ns, LabFixtures.deployment("consumer", claim: "late"))
                try await client.waitAvailable("consumer", in: ns, describedAs: "consumer available")
                let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "late", in: ns))
                let selected = try #require(claim.metadata.annotations["volume.kubernetes.io/selected-node"])
                let pv = PersistentVolume(try await client.get(.persistentVolumes, named: try #require(claim.volumeName)))
                #expect(pv.raw[path: "spec", "nodeAffinity", "required", "nodeSelectorTerms"]?[0]?[path: "matchExpressions"]?[0]?["values"] == [.string(selected)])
                #expect(try await podsOf("consumer", in: ns).first?.nodeName == selected)
            }
        }
    }

    @Test("per-object knobs: provision fail keeps pod and claim pending; robustness degraded; terminate delay")
    func knobs() async throws {
        let className = uniqueClass("lhknob")
        try await withClass(LabFixtures.storageClass(className)) {
            try await withTestNamespace(client, prefix: "agent") { ns in
                try await client.create(.persistentVolumeClaims, in: ns, LabFixtures.claim("broken", storageClass: className, annotations: ["lab.repave/provision": "fail"]))
                try await client.create(.deployments, in: ns, LabFixtures.deployment("stuck", claim: "broken"))
                try await Task.sleep(for: .seconds(2))
                #expect(PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "broken", in: ns)).phase == "Pending")
                #expect(try await podsOf("stuck", in: ns).allSatisfy { $0.phase == "Pending" && !$0.isReady })

                try await client.create(.persistentVolumeClaims, in: ns, LabFixtures.claim("weak", storageClass: className, annotations: ["lab.repave/robustness": "degraded"]))
                try await client.create(.deployments, in: ns, LabFixtures.deployment("slow", claim: "weak", podAnnotations: ["lab.repave/terminate-delay": "2s"]))
                try await client.waitAvailable("slow", in: ns, describedAs: "slow available")
                let weak = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "weak", in: ns))
                let volume = try await client.wait(for: .longhornVolumes, named: try #require(weak.volumeName), in: "longhorn-system", timeout: .seconds(30), describedAs: "attached") {
                    $0.map { LonghornVolume($0).state == "attached" } ?? false
                }.map(LonghornVolume.init)
                #expect(volume?.robustness == "degraded")

                let pod = try #require(try await podsOf("slow", in: ns).first)
                let clock = ContinuousClock()
                let start = clock.now
                try await client.patch(.deployments, named: "slow", in: ns, .merge(["spec": ["replicas": 0]]))
                try await client.wait(for: .pods, named: pod.name, in: ns, timeout: .seconds(45), describedAs: "slow pod gone") { $0 == nil }
                // The Deployment says 0/0 at once; the pod, and so the claim's use, lasts the delay.
                #expect(clock.now - start >= .milliseconds(1800))
            }
        }
    }

    // MARK: Longhorn's replicas, nodes and settings

    func replicasOf(_ volume: String) async throws -> [LonghornReplica] {
        try await client.list(.longhornReplicas, in: "longhorn-system", labelSelector: "longhornvolume=\(volume)").items.map(LonghornReplica.init)
    }

    /// A running Deployment on a new claim of a class with `replicas`; returns the volume's name.
    func attachedVolume(_ ns: String, className: String, claimAnnotations: [String: String] = [:], deploy: Bool = true) async throws -> String {
        try await client.create(.persistentVolumeClaims, in: ns, LabFixtures.claim("data", storageClass: className, annotations: claimAnnotations))
        let bound = try await client.wait(for: .persistentVolumeClaims, named: "data", in: ns, timeout: .seconds(45), describedAs: "bound") {
            $0.map { PersistentVolumeClaim($0).isBound } ?? false
        }.map(PersistentVolumeClaim.init)
        let volume = try #require(bound?.volumeName)
        if deploy {
            try await client.create(.deployments, in: ns, LabFixtures.deployment("ws", claim: "data"))
            try await client.wait(for: .longhornVolumes, named: volume, in: "longhorn-system", timeout: .seconds(30), describedAs: "attached, healthy") {
                $0.map { LonghornVolume($0).state == "attached" && LonghornVolume($0).robustness == "healthy" } ?? false
            }
        }
        return volume
    }

    @Test("Longhorn nodes lab-node-1..3 and settings at Longhorn's defaults; a new volume gets its replicas on distinct nodes")
    func longhornObjects() async throws {
        let nodes = try await client.list(.longhornNodes, in: "longhorn-system").items.map(LonghornNode.init)
        #expect(nodes.map(\.name).sorted() == ["lab-node-1", "lab-node-2", "lab-node-3"])
        #expect(nodes.allSatisfy { $0.isSchedulable })
        let settings = Dictionary(try await client.list(.longhornSettings, in: "longhorn-system").items.map { (LonghornSetting($0).name, LonghornSetting($0).value) },
                                  uniquingKeysWith: { a, _ in a })
        #expect(settings["default-replica-count"] == "3")
        #expect(settings["replica-soft-anti-affinity"] == "false")
        #expect(settings["offline-replica-rebuilding"] == "false")

        let className = uniqueClass("lh2")
        try await withClass(LabFixtures.storageClass(className, replicas: 2)) {
            try await withTestNamespace(client, prefix: "agent") { ns in
                let volume = try await attachedVolume(ns, className: className)
                let replicas = try await replicasOf(volume)
                #expect(replicas.count == 2)
                #expect(Set(replicas.map(\.nodeID)).count == 2)
                #expect(replicas.allSatisfy { $0.isHealthy && $0.currentState == "running" })
                let lh = LonghornVolume(try await client.get(.longhornVolumes, named: volume, in: "longhorn-system"))
                #expect(lh.scheduled?.status == "True")
            }
        }
    }

    @Test("more replicas on an attached volume: rebuilt one at a time, degraded until done, then healthy on distinct nodes")
    func rebuildOnline() async throws {
        let className = uniqueClass("lh1")
        try await withClass(LabFixtures.storageClass(className, replicas: 1)) {
            try await withTestNamespace(client, prefix: "agent") { ns in
                // 3 s a replica: a loaded machine's agent passes and this loop's reads both fit in
                // a rebuild, so its progress (in steps of 10 %) shows (1 s once went unseen).
                let volume = try await attachedVolume(ns, className: className, claimAnnotations: ["lab.repave/rebuild-delay": "3s"])
                #expect(try await replicasOf(volume).count == 1)
                try await client.patch(.longhornVolumes, named: volume, in: "longhorn-system", .merge(["spec": ["numberOfReplicas": 3]]))
                var sawDegraded = false
                var mostRebuilding = 0
                var sawProgress = false
                let deadline = ContinuousClock.now + .seconds(60)
                while ContinuousClock.now < deadline {
                    let replicas = try await replicasOf(volume)
                    mostRebuilding = max(mostRebuilding, replicas.count(where: { $0.isRebuilding }))
                    if let rebuilt = replicas.first(where: { $0.isRebuilding }), let address = rebuilt.address,
                       let engine = try await client.list(.longhornEngines, in: "longhorn-system", labelSelector: "longhornvolume=\(volume)").items.first,
                       (LonghornEngine(engine).rebuildProgress(of: address) ?? 0) > 0 {
                        sawProgress = true
                    }
                    let lh = LonghornVolume(try await client.get(.longhornVolumes, named: volume, in: "longhorn-system"))
                    if lh.robustness == "degraded" { sawDegraded = true }
                    if replicas.count(where: { $0.isHealthy }) == 3 && lh.robustness == "healthy" { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                let replicas = try await replicasOf(volume)
                #expect(replicas.count(where: { $0.isHealthy }) == 3)
                #expect(Set(replicas.map(\.nodeID)).count == 3)
                #expect(sawDegraded)
                #expect(mostRebuilding == 1)
                #expect(sawProgress, "the engine never reported a rebuild's progress")
                let engine = try #require(try await client.list(.longhornEngines, in: "longhorn-system", labelSelector: "longhornvolume=\(volume)").items.first.map(LonghornEngine.init))
                #expect(Set(engine.replicaModes.values) == ["RW"] && engine.replicaModes.count == 3)
            }
        }
    }

    @Test("fewer schedulable Longhorn nodes than replicas: Scheduled=False, ReplicaSchedulingFailure; a lower count keeps built replicas")
    func schedulingFailure() async throws {
        let className = uniqueClass("lh1")
        try await withClass(LabFixtures.storageClass(className, replicas: 1)) {
            try await withTestNamespace(client, prefix: "agent") { ns in
                let volume = try await attachedVolume(ns, className: className, claimAnnotations: ["lab.repave/schedulable-nodes": "2"])
                try await client.patch(.longhornVolumes, named: volume, in: "longhorn-system", .merge(["spec": ["numberOfReplicas": 3]]))
                let failed = try await client.wait(for: .longhornVolumes, named: volume, in: "longhorn-system", timeout: .seconds(45), describedAs: "scheduling failure") {
                    $0.map { LonghornVolume($0).scheduled?.reason == "ReplicaSchedulingFailure" } ?? false
                }.map(LonghornVolume.init)
                #expect(failed?.scheduled?.status == "False")
                #expect(failed?.scheduled?.message.contains("2 schedulable node") == true)
                try await client.wait(for: .longhornVolumes, named: volume, in: "longhorn-system", timeout: .seconds(30), describedAs: "degraded") {
                    $0.map { LonghornVolume($0).robustness == "degraded" } ?? false
                }
                try await client.patch(.longhornVolumes, named: volume, in: "longhorn-system", .merge(["spec": ["numberOfReplicas": 1]]))
                try await client.wait(for: .longhornVolumes, named: volume, in: "longhorn-system", timeout: .seconds(30), describedAs: "scheduled, healthy") {
                    $0.map { LonghornVolume($0).scheduled?.status == "True" && LonghornVolume($0).robustness == "healthy" } ?? false
                }
                #expect(try await replicasOf(volume).count(where: { $0.isHealthy }) == 2)
            }
        }
    }

    @Test("a detached volume rebuilds only with offline rebuilding, attached for the rebuild and detached after")
    func offlineRebuilding() async throws {
        let className = uniqueClass("lh1")
        try await withClass(LabFixtures.storageClass(className, replicas: 1)) {
            try await withTestNamespace(client, prefix: "agent") { ns in
                let volume = try await attachedVolume(ns, className: className, deploy: false)
                // The agent makes the first replica soon after the volume: a loaded machine may take a moment.
                #expect(try await poll(attempts: 100, every: .milliseconds(100)) { try await !replicasOf(volume).isEmpty })
                try await client.patch(.longhornVolumes, named: volume, in: "longhorn-system", .merge(["spec": ["numberOfReplicas": 2]]))
                try await Task.sleep(for: .seconds(1))
                #expect(try await replicasOf(volume).count == 1)
                #expect(LonghornVolume(try await client.get(.longhornVolumes, named: volume, in: "longhorn-system")).state == "detached")

                try await client.patch(.longhornVolumes, named: volume, in: "longhorn-system", .merge(["spec": ["offlineRebuilding": "enabled"]]))
                let deadline = ContinuousClock.now + .seconds(20)
                while try await replicasOf(volume).count(where: { $0.isHealthy }) < 2, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(try await replicasOf(volume).count(where: { $0.isHealthy }) == 2)
                try await client.wait(for: .longhornVolumes, named: volume, in: "longhorn-system", timeout: .seconds(30), describedAs: "detached again") {
                    $0.map { LonghornVolume($0).state == "detached" && LonghornVolume($0).robustness == "unknown" } ?? false
                }
            }
        }
    }

    @Test("lab.repave/replicas: manual on a Longhorn Volume: the agent makes no replica or engine for it")
    func manualReplicas() async throws {
        let name = "manual-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
        let created = LonghornVolume(try await client.create(.longhornVolumes, in: "longhorn-system", [
            "apiVersion": "longhorn.io/v1beta2", "kind": "Volume",
            "metadata": ["name": .string(name), "annotations": ["lab.repave/replicas": "manual"]],
            "spec": ["numberOfReplicas": 3, "size": "1073741824"],
        ]))
        // The agent reports its status (it has seen the volume) and makes nothing for it.
        try await client.wait(for: .longhornVolumes, named: name, in: "longhorn-system", timeout: .seconds(30), describedAs: "status") {
            $0.map { LonghornVolume($0).scheduled != nil } ?? false
        }
        try await Task.sleep(for: .seconds(1))
        #expect(try await replicasOf(name).isEmpty)
        #expect(try await client.list(.longhornEngines, in: "longhorn-system", labelSelector: "longhornvolume=\(name)").items.isEmpty)
        try await client.delete(.longhornVolumes, named: name, in: "longhorn-system", uid: created.uid)
    }
}
