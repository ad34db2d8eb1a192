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
                try await client.wait(for: .deployments, named: "ws", in: ns, timeout: .seconds(30), describedAs: "ws available") {
                    $0.map { Deployment($0).rolloutState == .complete && Deployment($0).availableReplicas == 1 } ?? false
                }
                let bound = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "home", in: ns))
                #expect(bound.isBound)
                #expect(bound.volumeName == "pvc-\(claim.uid)")
                let pv = PersistentVolume(try await client.get(.persistentVolumes, named: "pvc-\(claim.uid)"))
                #expect(pv.csiDriver == "driver.longhorn.io")
                #expect(pv.volumeHandle == pv.name)
                #expect(pv.claimRef?.uid == claim.uid)
                #expect(pv.reclaimPolicy == "Delete")
                let volume = try await client.wait(for: .longhornVolumes, named: pv.name, in: "longhorn-system", timeout: .seconds(10), describedAs: "volume attached") {
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
                try await client.wait(for: .pods, named: pod.name, in: ns, timeout: .seconds(20), describedAs: "pod gone") { $0 == nil }
                #expect(try await podsOf("ws", in: ns).isEmpty)
                try await client.wait(for: .longhornVolumes, named: pv.name, in: "longhorn-system", timeout: .seconds(10), describedAs: "volume detached") {
                    $0.map { LonghornVolume($0).state == "detached" && LonghornVolume($0).robustness == "unknown" } ?? false
                }

                try await client.delete(.persistentVolumeClaims, named: "home", in: ns, uid: claim.uid)
                try await client.wait(for: .persistentVolumes, named: pv.name, timeout: .seconds(20), describedAs: "PV reclaimed") { $0 == nil }
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
                try await client.wait(for: .persistentVolumeClaims, named: "data", in: ns, timeout: .seconds(20), describedAs: "bound") {
                    $0.map { PersistentVolumeClaim($0).isBound } ?? false
                }
                let pvName = "pvc-\(claim.uid)"
                try await client.delete(.persistentVolumeClaims, named: "data", in: ns, uid: claim.uid)
                let released = try await client.wait(for: .persistentVolumes, named: pvName, timeout: .seconds(20), describedAs: "released") {
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
                try await client.wait(for: .deployments, named: "consumer", in: ns, timeout: .seconds(40), describedAs: "consumer available") {
                    $0.map { Deployment($0).availableReplicas == 1 } ?? false
                }
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
                try await client.wait(for: .deployments, named: "slow", in: ns, timeout: .seconds(30), describedAs: "slow available") {
                    $0.map { Deployment($0).availableReplicas == 1 } ?? false
                }
                let weak = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "weak", in: ns))
                let volume = try await client.wait(for: .longhornVolumes, named: try #require(weak.volumeName), in: "longhorn-system", timeout: .seconds(10), describedAs: "attached") {
                    $0.map { LonghornVolume($0).state == "attached" } ?? false
                }.map(LonghornVolume.init)
                #expect(volume?.robustness == "degraded")

                let pod = try #require(try await podsOf("slow", in: ns).first)
                let clock = ContinuousClock()
                let start = clock.now
                try await client.patch(.deployments, named: "slow", in: ns, .merge(["spec": ["replicas": 0]]))
                try await client.wait(for: .pods, named: pod.name, in: ns, timeout: .seconds(20), describedAs: "slow pod gone") { $0 == nil }
                // The Deployment says 0/0 at once; the pod, and so the claim's use, lasts the delay.
                #expect(clock.now - start >= .milliseconds(1800))
            }
        }
    }
}
