import Foundation
import KubeAPI
import RepaveTestSupport
import Testing

/// The data on a volume, on the lab's real node (`LAB_NODES=real scripts/lab up`, which
/// `scripts/test` starts beside the simulated lab): pods run real processes from `lab/mover:1`,
/// and each Longhorn volume is a directory `VOLUME_DIR/<volume name>` that the node's CSI plugin
/// bind-mounts into them. Without that lab every test here fails with "lab not running".
@Suite("data on the real node", .serialized)
struct RealNodeTests: DevpodTesting {
    let lab: Lab
    let client: KubeClient

    init() throws {
        lab = try Lab.realNode()
        client = try lab.adminClient(userAgent: "repave-test/real-node")
    }

    // MARK: helpers

    func kubectl(_ arguments: [String]) async throws -> ProcessResult {
        try await runProcess(try lab.value("KUBECTL"), ["--kubeconfig", lab.adminKubeconfig] + arguments)
    }

    /// A pod of `lab/mover:1` running `script` with `claim` at `/data`.
    static func pod(_ name: String, claim: String, script: String, grace: Int = 2) -> JSON {
        ["apiVersion": "v1", "kind": "Pod", "metadata": ["name": .string(name)],
         "spec": ["terminationGracePeriodSeconds": .integer(Int64(grace)), "restartPolicy": "Never",
                  "containers": [["name": "main", "image": "lab/mover:1", "imagePullPolicy": "Never",
                                  "command": ["sh", "-c", .string(script)], "volumeMounts": [["name": "data", "mountPath": "/data"]]]],
                  "volumes": [["name": "data", "persistentVolumeClaim": ["claimName": .string(claim)]]]]]
    }

    /// The devpod's workspace as a real process: a shell loop; `script` decides how it meets SIGTERM.
    static func workspace(script: String, grace: Int) -> JSON {
        ["apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": ["name": "coder-jeda-codespace"],
         "spec": [
            "replicas": 1, "strategy": ["type": "Recreate"],
            "selector": ["matchLabels": ["app": "coder-jeda-codespace"]],
            "template": [
                "metadata": ["labels": ["app": "coder-jeda-codespace"]],
                "spec": [
                    "terminationGracePeriodSeconds": .integer(Int64(grace)),
                    "containers": [["name": "workspace", "image": "lab/mover:1", "imagePullPolicy": "Never",
                                    "command": ["sh", "-c", .string(script)], "volumeMounts": [["name": "home", "mountPath": "/home/coder"]]]],
                    "volumes": [["name": "home", "persistentVolumeClaim": ["claimName": "coder-jeda-codespace-home"]]],
                ],
            ],
         ]]
    }

    struct World {
        let namespace: String, original: PersistentVolumeClaim, oldVolume: String, planFile: String
        let scratch: ScratchDirectory, newClass: String
    }

    static let exitsOnTerm = "trap 'exit 0' TERM; while :; do sleep 0.2; done"

    func waitForPhase(_ pod: String, in namespace: String, _ phases: Set<String>, timeout: Duration = .seconds(60)) async throws {
        try await client.wait(for: .pods, named: pod, in: namespace, timeout: timeout, describedAs: "pod \(pod) \(phases.sorted().joined(separator: " or "))") {
            $0.map { phases.contains(Pod($0).phase) } ?? false
        }
    }

    func runningPods(_ namespace: String) async throws -> [Pod] {
        try await client.list(.pods, in: namespace, labelSelector: "app=coder-jeda-codespace").items.map(Pod.init)
            .filter { $0.phase == "Running" && !$0.metadata.isTerminating }
    }

    /// The devpod's world with a real workspace, on either lab; the plan recreates the claim.
    func withRealWorkspace(on lab: Lab, script: String = exitsOnTerm, grace: Int = 5,
                           _ body: (KubeClient, World) async throws -> Void) async throws {
        let client = try lab.adminClient(userAgent: "repave-test/real-node")
        let scratch = try ScratchDirectory()
        let id = suffix()
        let oldClass = "longhorn-1r-\(id)", newClass = "longhorn-3r-\(id)"
        var oldVolume: String?
        do {
            try await withTestNamespace(client, prefix: "realnode") { namespace in
                try await client.create(.storageClasses, LabFixtures.storageClass(oldClass, replicas: 1))
                let claim = PersistentVolumeClaim(try await client.create(.persistentVolumeClaims, in: namespace,
                    LabFixtures.claim("coder-jeda-codespace-home", storageClass: oldClass, size: "60Gi")))
                try await client.create(.deployments, in: namespace, Self.workspace(script: script, grace: grace))
                try await client.waitAvailable("coder-jeda-codespace", in: namespace, describedAs: "workspace available")
                let volume = try #require(PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: claim.name, in: namespace)).volumeName)
                oldVolume = volume
                let planFile = scratch.file("plan.yaml")
                try plan(namespace: namespace, newClass: newClass).write(toFile: planFile, atomically: true, encoding: .utf8)
                try await body(client, World(namespace: namespace, original: claim, oldVolume: volume, planFile: planFile,
                                             scratch: scratch, newClass: newClass))
            }
        } catch {
            await cleanUp(client, classes: [oldClass, newClass], volume: oldVolume)
            throw error
        }
        await cleanUp(client, classes: [oldClass, newClass], volume: oldVolume)
    }

    func cleanUp(_ client: KubeClient, classes: [String], volume: String?) async {
        for name in classes {
            if let object = try? await client.getIfPresent(.storageClasses, named: name) {
                _ = try? await client.delete(.storageClasses, named: name, uid: StorageClass(object).uid)
            }
        }
        if let volume, let pv = try? await client.getIfPresent(.persistentVolumes, named: volume) {
            _ = try? await client.delete(.persistentVolumes, named: volume, uid: PersistentVolume(pv).uid)
        }
        if let volume, let lh = try? await client.getIfPresent(.longhornVolumes, named: volume, in: "longhorn-system") {
            _ = try? await client.delete(.longhornVolumes, named: volume, in: "longhorn-system", uid: LonghornVolume(lh).uid)
        }
    }

    /// What a finished recreate leaves, with the run's names replaced, so two labs compare.
    func endState(_ client: KubeClient, _ world: World) async throws -> [String] {
        let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "coder-jeda-codespace-home", in: world.namespace))
        let longhorn = LonghornVolume(try await client.get(.longhornVolumes, named: claim.volumeName ?? "", in: "longhorn-system"))
        let deployment = Deployment(try await client.get(.deployments, named: "coder-jeda-codespace", in: world.namespace))
        let old = try await client.getIfPresent(.persistentVolumes, named: world.oldVolume).map(PersistentVolume.init)
        let oldLonghorn = try await client.getIfPresent(.longhornVolumes, named: world.oldVolume, in: "longhorn-system").map(LonghornVolume.init)
        let lease = try await client.getIfPresent(.leases, named: "repave-coder-jeda-codespace-home", in: world.namespace)
        return [
            "claim: new uid \(claim.uid != world.original.uid), class \(claim.storageClassName == world.newClass ? "new" : claim.storageClassName ?? "-"), \(claim.phase)",
            "volume: \(longhorn.numberOfReplicas) replicas, \(longhorn.state), \(longhorn.robustness)",
            "workspace: \(deployment.replicas) replicas, \(deployment.availableReplicas) available",
            "old volume: PV \(old?.reclaimPolicy ?? "gone") \(old?.phase ?? ""), Longhorn volume \(oldLonghorn?.state ?? "gone")",
            "lease: \(lease == nil ? "none" : "left")",
        ]
    }

    func repaveRun(_ lab: Lab, _ world: World) async throws -> (ProcessResult, Duration) {
        let clock = ContinuousClock(), start = clock.now
        let result = try await runProcess(try repaveBinary(), ["run", world.planFile, "--yes", "--kubeconfig", lab.adminKubeconfig,
                                                               "--state-dir", world.scratch.file("runs")])
        return (result, clock.now - start)
    }

    // MARK: tests

    @Test("a file written through kubectl exec into a pod's claim is read back by a second pod, and is on the volume's directory")
    func writeThenReadBack() async throws {
        let id = suffix(), className = "longhorn-data-\(id)"
        try await client.create(.storageClasses, LabFixtures.storageClass(className, replicas: 1))
        do {
            try await writeThenReadBack(id: id, className: className)
        } catch {
            await cleanUp(client, classes: [className], volume: nil)
            throw error
        }
        await cleanUp(client, classes: [className], volume: nil)
    }

    func writeThenReadBack(id: String, className: String) async throws {
        try await withTestNamespace(client, prefix: "data") { namespace in
            try await client.create(.persistentVolumeClaims, in: namespace, LabFixtures.claim("data", storageClass: className))
            try await client.create(.pods, in: namespace, Self.pod("writer", claim: "data", script: Self.exitsOnTerm))
            try await waitForPhase("writer", in: namespace, ["Running"])
            let token = "written-by-\(id)-\(UUID().uuidString)"
            let write = try await kubectl(["-n", namespace, "exec", "writer", "--", "sh", "-c",
                                           "mkdir -p /data/dir && printf '%s' '\(token)' > /data/dir/hello.txt && setfattr -n user.lab -v \(id) /data/dir/hello.txt && sync"])
            #expect(write.status == 0, "kubectl exec: \(write.standardError)")

            let writer = Pod(try await client.get(.pods, named: "writer", in: namespace))
            try await client.delete(.pods, named: "writer", in: namespace, uid: writer.uid)
            try await client.wait(for: .pods, named: "writer", in: namespace, timeout: .seconds(60), describedAs: "writer gone") { $0 == nil }

            try await client.create(.pods, in: namespace, Self.pod("reader", claim: "data", script: "cd /data/dir && cat hello.txt && echo && getfattr --only-values -n user.lab hello.txt"))
            try await waitForPhase("reader", in: namespace, ["Succeeded", "Failed"])
            let logs = try await kubectl(["-n", namespace, "logs", "reader"])
            #expect(logs.status == 0, "kubectl logs: \(logs.standardError)")
            #expect(logs.standardOutput == "\(token)\n\(id)", "the second pod read \(logs.standardOutput.debugDescription)")
            #expect(Pod(try await client.get(.pods, named: "reader", in: namespace)).phase == "Succeeded")

            // The bytes are in the volume's directory on the host, as the PV says.
            let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "data", in: namespace))
            let pv = PersistentVolume(try await client.get(.persistentVolumes, named: try #require(claim.volumeName)))
            let directory = try #require(pv.raw[path: "spec", "csi", "volumeAttributes", "lab.repave/directory"]?.stringValue)
            #expect(directory == (try lab.value("VOLUME_DIR")) + "/" + pv.name)
            #expect(try String(contentsOfFile: directory + "/dir/hello.txt", encoding: .utf8) == token)

            // A Delete-policy volume goes with its claim, bytes included, as Longhorn's would.
            let reader = Pod(try await client.get(.pods, named: "reader", in: namespace))
            try await client.delete(.pods, named: "reader", in: namespace, uid: reader.uid)
            try await client.delete(.persistentVolumeClaims, named: "data", in: namespace, uid: claim.uid)
            try await client.wait(for: .persistentVolumes, named: pv.name, timeout: .seconds(60), describedAs: "PV reclaimed") { $0 == nil }
            let gone = try await poll(attempts: 50, every: .milliseconds(100)) { !FileManager.default.fileExists(atPath: directory) }
            #expect(gone, "\(directory) still exists after its Delete-policy PV was reclaimed")
        }
    }

    @Test("the devpod recreate on the real node: the old data stays on the retained PV, the new claim's volume is empty")
    func devpodRecreateKeepsData() async throws {
        try await withRealWorkspace(on: lab) { client, world in
            let pod = try #require(try await runningPods(world.namespace).first)
            let write = try await kubectl(["-n", world.namespace, "exec", pod.name, "--", "sh", "-c",
                                           "mkdir -p /home/coder/Research/api && echo 'unpushed work' > /home/coder/Research/api/notes.md && echo 'x=1' > /home/coder/.profile"])
            #expect(write.status == 0, "kubectl exec: \(write.standardError)")

            let (result, took) = try await repaveRun(lab, world)
            #expect(result.status == 0, "\(result.standardError)")
            print("recreate on the real node: \(took)")

            let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "coder-jeda-codespace-home", in: world.namespace))
            #expect(claim.uid != world.original.uid && claim.storageClassName == world.newClass && claim.isBound)
            #expect(claim.volumeName != world.oldVolume)
            // The new workspace pod is a real process on the new, empty volume.
            let newPod = try #require(try await runningPods(world.namespace).first)
            #expect(newPod.uid != pod.uid)
            let listing = try await kubectl(["-n", world.namespace, "exec", newPod.name, "--", "ls", "-A", "/home/coder"])
            #expect(listing.status == 0, "kubectl exec: \(listing.standardError)")
            #expect(listing.standardOutput.isEmpty, "the new volume holds \(listing.standardOutput.debugDescription)")
            // The old volume: PV retained, and its directory still holds the files.
            let old = PersistentVolume(try await client.get(.persistentVolumes, named: world.oldVolume))
            #expect(old.reclaimPolicy == "Retain")
            let oldDirectory = (try lab.value("VOLUME_DIR")) + "/" + world.oldVolume
            #expect(try String(contentsOfFile: oldDirectory + "/Research/api/notes.md", encoding: .utf8) == "unpushed work\n")
            #expect(try String(contentsOfFile: oldDirectory + "/.profile", encoding: .utf8) == "x=1\n")
        }
    }

    @Test("a workspace whose PID 1 ignores SIGTERM: scale-down waits for the real kubelet to kill it after the grace period, and says which pod it waits for")
    func sigtermIgnoringWorkspace() async throws {
        let grace = 4
        try await withRealWorkspace(on: lab, script: "trap '' TERM; while :; do sleep 0.2; done", grace: grace) { client, world in
            let pod = try #require(try await runningPods(world.namespace).first)
            let (result, took) = try await repaveRun(lab, world)
            #expect(result.status == 0, "\(result.standardError)")
            #expect(result.standardError.contains("scale-down: waiting for 1 pod to terminate: \(pod.name)"), "\(result.standardError)")
            // The kubelet sends TERM, which is ignored, and KILL after the grace period: the run
            // cannot be faster than that.
            #expect(took >= .seconds(grace), "the run took \(took), less than the pod's \(grace) s grace period")
            #expect(try await client.getIfPresent(.pods, named: pod.name, in: world.namespace) == nil)
            let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "coder-jeda-codespace-home", in: world.namespace))
            #expect(claim.storageClassName == world.newClass && claim.isBound)
        }
    }

    @Test("the same recreate scenario on the real and on simulated nodes reaches the same end state")
    func realAndSimulatedAgree() async throws {
        let simulated = try Lab.current()
        var states: [String: [String]] = [:], times: [String: Duration] = [:]
        for (name, lab) in [("real", self.lab), ("simulated", simulated)] {
            try await withRealWorkspace(on: lab) { client, world in
                let (result, took) = try await repaveRun(lab, world)
                #expect(result.status == 0, "\(name): \(result.standardError)")
                // The old Longhorn volume detaches after the run (nothing in recreate waits for
                // it; on the simulated nodes the agent's next pass does it): read until it has,
                // within 30 s, so the two labs are compared once both have settled.
                var state = try await endState(client, world)
                for _ in 0..<30 where state.contains(where: { $0.hasSuffix("Longhorn volume attached") }) {
                    try await Task.sleep(for: .seconds(1))
                    state = try await endState(client, world)
                }
                states[name] = state
                times[name] = took
            }
        }
        #expect(states["real"] == states["simulated"])
        #expect(states["real"]?.first == "claim: new uid true, class new, Bound", "\(states["real"] ?? [])")
        print("recreate, same scenario: real node \(times["real"] ?? .zero), simulated nodes \(times["simulated"] ?? .zero)")
    }
}
