import Foundation
import Journal
import KubeAPI
import RepaveCore
import RepaveTestSupport
import Synchronization
import Testing

/// `strategy: replicas` end to end on the lab: the devpod's 1-replica volume raised to 3 in place,
/// while its workload runs; crashed at every failpoint and resumed; refused or stopped with what
/// to do when Longhorn cannot rebuild.
@Suite("replicas end to end", .serialized)
struct ReplicasTests: DevpodTesting {
    let lab: Lab
    let client: KubeClient

    init() throws {
        lab = try Lab.current()
        client = try lab.adminClient(userAgent: "repave-test/replicas")
    }

    static let claim = "coder-jeda-codespace-home"

    /// An intent record, as the journal has it.
    struct Intent: Decodable {
        let verb: String
        let path: String
        let precondition: String?
    }
    /// Each rebuild takes a moment, so the run waits through both and its progress shows them.
    static let rebuildDelay = ["lab.repave/rebuild-delay": "700ms"]

    /// The workspace's one pod, once its volume shows attached (the lab agent marks the Longhorn
    /// volume a moment after the pod runs; a loaded machine makes that moment longer).
    func workspacePod(_ world: World) async throws -> Pod {
        let pods = try await client.list(.pods, in: world.namespace, labelSelector: "app=coder-jeda-codespace").items.map(Pod.init)
        try await client.wait(for: .longhornVolumes, named: world.oldVolume, in: "longhorn-system", timeout: .seconds(30), describedAs: "attached") {
            $0.map { LonghornVolume($0).state == "attached" } ?? false
        }
        return try #require(pods.count == 1 ? pods.first : nil, "pods: \(pods.map(\.name))")
    }

    /// The workspace scaled to 0, its volume detached.
    func detach(_ world: World) async throws {
        try await client.patch(.deployments, named: "coder-jeda-codespace", in: world.namespace, .merge(["spec": ["replicas": 0]]))
        // No pod left (a ReplicaSet's last pod may start just before the scale-down lands and
        // attach the volume again), then the volume detached.
        #expect(try await poll(attempts: 300, every: .milliseconds(100)) {
            try await client.list(.pods, in: world.namespace).items.isEmpty
        }, "the workspace's pods did not go")
        try await client.wait(for: .longhornVolumes, named: world.oldVolume, in: "longhorn-system", timeout: .seconds(30), describedAs: "detached") {
            $0.map { LonghornVolume($0).state == "detached" } ?? false
        }
    }

    func replicas(of volume: String) async throws -> [LonghornReplica] {
        try await client.list(.longhornReplicas, in: "longhorn-system", labelSelector: "longhornvolume=\(volume)").items.map(LonghornReplica.init)
    }

    /// Repave's writes since `mark`: in the namespace, and to the world's Longhorn volume.
    func writes(_ world: World, since mark: UInt64) throws -> [AuditEvent] {
        try lab.auditEvents(since: mark).filter { event in
            guard event.isWrite, event.userAgent?.hasPrefix("repave/") == true, let object = event.objectRef else { return false }
            return object.namespace == world.namespace || (object.namespace == "longhorn-system" && object.name == world.oldVolume)
        }
    }

    /// What differs from the state an uninterrupted 1→3 run leaves: the same claim (uid) annotated,
    /// the volume at 3 healthy replicas on distinct nodes, the same pod never restarted, the lease
    /// gone; the server saw exactly one successful patch of each (conflicts aside), nothing
    /// created or deleted but the lease, and every PATCH intent carried a resourceVersion.
    func divergence(_ world: World, pod: Pod, run: String, since mark: UInt64) async throws -> [String] {
        var problems: [String] = []
        func check(_ holds: Bool, _ problem: @autoclosure () -> String) { if !holds { problems.append(problem()) } }
        let (records, torn) = try Journal.read(directory: run)
        check(torn == 0 && records.last?.kind == "finished", "journal ends with \(records.last?.kind ?? "-"), \(torn) torn bytes")
        let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: Self.claim, in: world.namespace))
        check(claim.uid == world.original.uid, "the claim was replaced: \(claim.uid)")
        check(claim.metadata.annotations["repave/replicas"] == "3", "claim annotations \(claim.metadata.annotations)")
        let longhorn = LonghornVolume(try await client.get(.longhornVolumes, named: world.oldVolume, in: "longhorn-system"))
        check(longhorn.numberOfReplicas == 3 && longhorn.robustness == "healthy" && longhorn.scheduled?.status == "True",
              "volume \(longhorn.numberOfReplicas) replicas, \(longhorn.robustness), scheduled \(longhorn.scheduled?.status ?? "-")")
        let healthy = try await replicas(of: world.oldVolume).filter(\.isHealthy)
        check(healthy.count == 3 && Set(healthy.map(\.nodeID)).count == 3, "healthy replicas on \(healthy.map(\.nodeID))")
        let now = try await workspacePod(world)
        check(now.uid == pod.uid && now.phase == "Running" && !now.metadata.isTerminating, "the workspace pod is \(now.name) \(now.uid) \(now.phase)")
        check(try await client.getIfPresent(.leases, named: "repave-\(Self.claim)", in: world.namespace) == nil, "lease left")

        let writes = try writes(world, since: mark)
        let volumePatches = writes.filter { $0.objectRef?.resource == "volumes" && $0.verb == "patch" }.map(\.code)
        check(volumePatches.filter { $0 == 200 }.count == 1 && volumePatches.allSatisfy { $0 == 200 || $0 == 409 }, "volume patches reaching the server: \(volumePatches)")
        let claimPatches = writes.filter { $0.objectRef?.resource == "persistentvolumeclaims" && $0.verb == "patch" }.map(\.code)
        check(claimPatches.filter { $0 == 200 }.count == 1 && claimPatches.allSatisfy { $0 == 200 || $0 == 409 }, "claim patches reaching the server: \(claimPatches)")
        let others = writes.filter { !["volumes", "persistentvolumeclaims", "leases"].contains($0.objectRef?.resource ?? "") || (["create", "delete"].contains($0.verb) && $0.objectRef?.resource != "leases") }
        check(others.isEmpty, "also wrote \(others.map { "\($0.verb) \($0.objectRef?.resource ?? "")/\($0.objectRef?.name ?? "")" })")
        let patchIntents = records.filter { $0.kind == "intent" }.compactMap { try? $0.decode(Intent.self) }.filter { $0.verb == "PATCH" }
        check(patchIntents.count >= 2 && patchIntents.allSatisfy { !($0.precondition ?? "").isEmpty }, "patch intents \(patchIntents)")
        return problems
    }

    @Test("1 → 3 replicas on an attached volume: the pod keeps its uid and never stops, the claim keeps its uid; progress shows the rebuilds; the summary names the class")
    func attached() async throws {
        // Rebuilds long enough for the progress to be looked at in the middle of one.
        try await withDevpod(claimAnnotations: ["lab.repave/rebuild-delay": "2500ms"]) { world in
            let pod = try await workspacePod(world)
            let plan = try replicasPlan(world)
            // plan --offline, the runbook, and the server dry run of every step change nothing.
            let offline = try await repave(world, ["plan", plan, "--offline"])
            #expect(offline.status == 0 && offline.standardOutput.contains("replicas:      3"), "\(offline.standardOutput)\(offline.standardError)")
            let runbook = try await repave(world, ["runbook", plan, "--offline"])
            #expect(runbook.status == 0 && runbook.standardOutput.contains("# Runbook: 3 Longhorn replicas for \(world.namespace)/\(Self.claim), in place"), "\(runbook.standardOutput)")
            let dryRun = try await repave(world, ["plan", plan, "--server-dry-run"])
            #expect(dryRun.status == 0, "\(dryRun.standardError)")
            #expect(dryRun.standardOutput.contains("ok   attached to lab-node-"), "\(dryRun.standardOutput)")
            #expect(dryRun.standardOutput.contains("ok   patch the Longhorn volume's numberOfReplicas to 3 and annotate the claim"), "\(dryRun.standardOutput)")
            #expect(LonghornVolume(try await client.get(.longhornVolumes, named: world.oldVolume, in: "longhorn-system")).numberOfReplicas == 1)
            // Every change to the workload's pods while the run goes: none may stop or restart.
            let seen = Mutex<[String]>([])
            let watcher = Task {
                var resourceVersion = try await client.list(.pods, in: world.namespace).resourceVersion
                while !Task.isCancelled {
                    for try await event in client.watch(.pods, in: world.namespace, from: resourceVersion, timeoutSeconds: 30) {
                        switch event {
                        case .added(let object), .modified(let object), .deleted(let object):
                            let changed = Pod(object)
                            resourceVersion = changed.resourceVersion
                            if changed.uid != pod.uid || changed.phase != "Running" || changed.metadata.isTerminating {
                                seen.withLock { $0.append("\(changed.name) \(changed.uid) \(changed.phase)\(changed.metadata.isTerminating ? " terminating" : "")") }
                            }
                        case .bookmark: continue
                        }
                    }
                }
            }
            let mark = try lab.auditMark()
            let result = try await start(world, plan: plan)
            watcher.cancel()
            #expect(result.status == 0, "\(result.standardError)")
            #expect(seen.withLock { $0 }.isEmpty, "\(seen.withLock { $0 })")
            let problems = try await divergence(world, pod: pod, run: try world.runDirectory(), since: mark)
            #expect(problems.isEmpty, "\(problems)")
            for step in ["preflight", "save-manifests", "patch-replicas", "await-rebuild"] {
                #expect(result.standardError.contains("] \(step): "), "no progress line for \(step)")
            }
            #expect(result.standardError.contains("rebuilding on lab-node-"), "\(result.standardError)")
            // The percent, as the volume's engine reports it.
            #expect(result.standardError.contains(/rebuilding on lab-node-\d [1-9]0% \(/), "\(result.standardError)")
            #expect(result.standardOutput.contains("keeps storageclass longhorn-1r-\(world.id) (numberOfReplicas 1)"), "\(result.standardOutput)")
            #expect(result.standardOutput.contains("unchanged: yes"), "\(result.standardOutput)")
        }
    }

    /// A fresh devpod world, the replicas run crashed at `point`, resumed, and what differs from
    /// the converged state.
    func crashCase(_ point: String) async throws -> CrashOutcome {
        var outcome = CrashOutcome()
        try await withDevpod(claimAnnotations: Self.rebuildDelay) { world in
            let pod = try await workspacePod(world)
            let mark = try lab.auditMark()
            outcome = try await crashAndResume(world, plan: try replicasPlan(world), at: point, second: nil) { run in
                try await divergence(world, pod: pod, run: run, since: mark)
            }
        }
        return outcome
    }

    @Test("a crash at every failpoint of the replicas run, resumed: converged")
    func everyFailpoint() async throws {
        var points: [String] = []
        try await withDevpod(claimAnnotations: Self.rebuildDelay) { world in
            let pod = try await workspacePod(world)
            let mark = try lab.auditMark()
            let trace = world.scratch.file("trace")
            let result = try await start(world, plan: try replicasPlan(world), trace: trace)
            #expect(result.status == 0, "\(result.standardError)")
            points = try failpoints(inTrace: trace)
            let problems = try await divergence(world, pod: pod, run: try world.runDirectory(), since: mark)
            #expect(problems.isEmpty, "uninterrupted: \(problems)")
        }
        // Lock, four steps, two patches, release: a much shorter trace means the failpoints
        // are not where they should be.
        #expect(points.count >= 25, "\(points)")
        let converged = Mutex(0)
        await concurrently(points, width: 3) { _, point in
            do {
                // A few points depend on timing: a run that passes one without reaching it is
                // tried once more.
                var outcome = try await crashCase(point)
                if !outcome.reached { outcome = try await crashCase(point) }
                if !outcome.reached { outcome.problems.insert("the run never stopped at the point, in two tries", at: 0) }
                if outcome.problems.isEmpty { converged.withLock { $0 += 1 } } else { Issue.record("\(point): \(outcome.problems.joined(separator: "; "))") }
            } catch {
                Issue.record("\(point): \(error)")
            }
        }
        print("replicas crash matrix: \(points.count) crash points, \(converged.withLock { $0 }) converged")
        #expect(converged.withLock { $0 } == points.count)
    }

    @Test("Longhorn cannot place the third replica: the run stops with Longhorn's reason; abort puts the count back and says Longhorn keeps what it built")
    func notEnoughNodes() async throws {
        try await withDevpod(claimAnnotations: Self.rebuildDelay.merging(["lab.repave/schedulable-nodes": "2"]) { a, _ in a }) { world in
            let plan = try replicasPlan(world)
            let stopped = try await repave(world, ["run", plan, "--yes", "--state-dir", world.scratch.file("runs"), "-o", "json"])
            #expect(stopped.status == 3, "\(stopped.standardError)")
            #expect(stopped.standardOutput.contains("\"await-rebuild.unschedulable\""), "\(stopped.standardOutput)")
            #expect(stopped.standardOutput.contains("Longhorn cannot schedule the volume's replicas: precheck new replica failed"), "\(stopped.standardOutput)")
            #expect(stopped.standardOutput.contains("2 schedulable node(s)"), "\(stopped.standardOutput)")
            #expect(LonghornVolume(try await client.get(.longhornVolumes, named: world.oldVolume, in: "longhorn-system")).numberOfReplicas == 3)
            // The second replica, already placed, finishes its rebuild.
            #expect(try await poll(attempts: 100, every: .milliseconds(100), until: { try await replicas(of: world.oldVolume).filter { $0.isHealthy }.count == 2 }))

            let aborted = try await repave(world, ["abort", try world.runDirectory()])
            #expect(aborted.status == 0, "\(aborted.standardError)")
            #expect(aborted.standardOutput.contains("numberOfReplicas back to 1. Longhorn keeps the replicas it already built (2 healthy now)"), "\(aborted.standardOutput)")
            let longhorn = LonghornVolume(try await client.get(.longhornVolumes, named: world.oldVolume, in: "longhorn-system"))
            #expect(longhorn.numberOfReplicas == 1)
            #expect(try await replicas(of: world.oldVolume).filter(\.isHealthy).count == 2)
            let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: Self.claim, in: world.namespace))
            #expect(claim.uid == world.original.uid)
            #expect(claim.metadata.annotations["repave/replicas"] == nil)
            #expect(try await client.getIfPresent(.leases, named: "repave-\(Self.claim)", in: world.namespace) == nil)
        }
    }

    @Test("detached, no offline rebuilding, whenDetached: refuse: refused with what to do, nothing changed; with offline rebuilding on the volume it goes ahead")
    func detached() async throws {
        try await withDevpod { world in
            try await detach(world)
            let plan = try replicasPlan(world, replicas: 2, extra: "whenDetached: refuse")
            let mark = try lab.auditMark()
            let offline = try await repave(world, ["plan", plan])
            #expect(offline.status == 2, "\(offline.standardOutput)\(offline.standardError)")
            let refused = try await start(world, plan: plan)
            #expect(refused.status == 2, "\(refused.standardError)")
            #expect(try await repave(world, ["plan", plan, "-o", "json"]).standardOutput.contains("\"preflight.volume-detached\""))
            #expect(refused.standardError.contains("is detached, and Longhorn rebuilds replicas only while a volume is attached"), "\(refused.standardError)")
            #expect(refused.standardError.contains("start the workload that mounts the claim; or enable offline rebuilding"), "\(refused.standardError)")
            #expect(refused.standardError.contains("whenDetached: wait"), "\(refused.standardError)")
            #expect(try writes(world, since: mark).filter { $0.objectRef?.resource != "leases" }.isEmpty)
            #expect(LonghornVolume(try await client.get(.longhornVolumes, named: world.oldVolume, in: "longhorn-system")).numberOfReplicas == 1)

            // The plan's preflight says the case plainly once offline rebuilding is on.
            try await client.patch(.longhornVolumes, named: world.oldVolume, in: "longhorn-system", .merge(["spec": ["offlineRebuilding": "enabled"]]))
            let planned = try await repave(world, ["plan", plan])
            #expect(planned.status == 0, "\(planned.standardError)")
            #expect(planned.standardOutput.contains("detached, and offline rebuilding is on (volume enabled"), "\(planned.standardOutput)")
            let run = try await repave(world, ["run", plan, "--yes", "--state-dir", world.scratch.file("offline")])
            #expect(run.status == 0, "\(run.standardError)")
            #expect(try await replicas(of: world.oldVolume).filter(\.isHealthy).count == 2)
        }
    }

    @Test("whenDetached: wait: the count is patched, nothing is rebuilt while detached, and the run finishes once the workload attaches the volume again")
    func waitForAttach() async throws {
        try await withDevpod { world in
            try await detach(world)
            let plan = try replicasPlan(world, replicas: 2, extra: "whenDetached: wait")
            let run = Task { try await start(world, plan: plan) }
            let patched = try await poll(attempts: 150, every: .milliseconds(100), until: {
                LonghornVolume(try await client.get(.longhornVolumes, named: world.oldVolume, in: "longhorn-system")).numberOfReplicas == 2
            })
            #expect(patched)
            try await Task.sleep(for: .seconds(1))
            // Detached, without offline rebuilding: Longhorn rebuilds nothing, the run waits.
            #expect(try await replicas(of: world.oldVolume).filter { $0.isHealthy }.count == 1)
            try await client.patch(.deployments, named: "coder-jeda-codespace", in: world.namespace, .merge(["spec": ["replicas": 1]]))
            let result = try await run.value
            #expect(result.status == 0, "\(result.standardError)")
            #expect(result.standardError.contains("await-rebuild: waiting for the volume to be attached: Longhorn rebuilds only then (1 of 2 healthy)"), "\(result.standardError)")
            #expect(try await replicas(of: world.oldVolume).filter { $0.isHealthy }.count == 2)
            #expect(LonghornVolume(try await client.get(.longhornVolumes, named: world.oldVolume, in: "longhorn-system")).robustness == "healthy")
        }
    }

    // MARK: - preflight refusals: the right code, exit 2, nothing written

    /// `repave run PLAN --yes -o json` refused by the preflight with `code`: exit 2, the code in
    /// the answer, and no write since `mark` but the Lease's.
    func expectRefused(_ world: World, plan: String, code: String, since mark: UInt64, sourceLocation: SourceLocation = #_sourceLocation) async throws -> ProcessResult {
        let refused = try await repave(world, ["run", plan, "--yes", "--state-dir", world.scratch.file("refused"), "-o", "json"])
        #expect(refused.status == 2, "\(refused.standardError)", sourceLocation: sourceLocation)
        #expect(refused.standardOutput.contains("\"\(code)\""), "\(refused.standardOutput)", sourceLocation: sourceLocation)
        #expect(try writes(world, since: mark).filter { $0.objectRef?.resource != "leases" }.isEmpty, sourceLocation: sourceLocation)
        let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: Self.claim, in: world.namespace))
        #expect(claim.metadata.annotations["repave/replicas"] == nil, sourceLocation: sourceLocation)
        return refused
    }

    @Test("a faulted Longhorn volume: refused (preflight.volume-faulted, exit 2), nothing written")
    func faulted() async throws {
        try await withDevpod(claimAnnotations: ["lab.repave/robustness": "faulted"]) { world in
            #expect(try await poll(attempts: 150, every: .milliseconds(100), until: {
                LonghornVolume(try await client.get(.longhornVolumes, named: world.oldVolume, in: "longhorn-system")).robustness == "faulted"
            }))
            let mark = try lab.auditMark()
            let refused = try await expectRefused(world, plan: try replicasPlan(world), code: "preflight.volume-faulted", since: mark)
            #expect(refused.standardOutput.contains("Longhorn volume \(world.oldVolume) is faulted"), "\(refused.standardOutput)")
            #expect(LonghornVolume(try await client.get(.longhornVolumes, named: world.oldVolume, in: "longhorn-system")).numberOfReplicas == 1)
        }
    }

    @Test("fewer schedulable Longhorn nodes than replicas under hard anti-affinity: refused (preflight.not-enough-nodes, exit 2), nothing written")
    func tooFewSchedulableNodes() async throws {
        try await withDevpod { world in
            let nodes = try await client.list(.longhornNodes, in: "longhorn-system").items.map(LonghornNode.init)
            let node = try #require(nodes.map(\.name).sorted().last, "no Longhorn nodes")
            try #require(nodes.count == 3 && nodes.allSatisfy(\.isSchedulable), "the lab has \(nodes.count) Longhorn nodes")
            try await client.patch(.longhornNodes, named: node, in: "longhorn-system", .merge(["spec": ["allowScheduling": false]]))
            do {
                let mark = try lab.auditMark()
                let refused = try await expectRefused(world, plan: try replicasPlan(world), code: "preflight.not-enough-nodes", since: mark)
                #expect(refused.standardOutput.contains("Longhorn has 2 schedulable of 3 nodes"), "\(refused.standardOutput)")
            } catch {
                try await client.patch(.longhornNodes, named: node, in: "longhorn-system", .merge(["spec": ["allowScheduling": true]]))
                throw error
            }
            try await client.patch(.longhornNodes, named: node, in: "longhorn-system", .merge(["spec": ["allowScheduling": true]]))
        }
    }

    @Test("a claim whose PV is not a Longhorn volume: refused (preflight.not-longhorn, exit 2), nothing written")
    func notLonghornVolume() async throws {
        try await withDevpod { world in
            let pvName = "nfs-\(world.id)", claimName = "nfs-data"
            let created = PersistentVolume(try await client.create(.persistentVolumes, [
                "apiVersion": "v1", "kind": "PersistentVolume", "metadata": ["name": .string(pvName)],
                "spec": ["capacity": ["storage": "1Gi"], "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                         "claimRef": ["apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": .string(world.namespace), "name": .string(claimName)],
                         "csi": ["driver": "nfs.csi.k8s.io", "volumeHandle": .string("share/\(world.id)")]],
            ]))
            do {
                try await client.create(.persistentVolumeClaims, in: world.namespace, [
                    "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": ["name": .string(claimName)],
                    "spec": ["accessModes": ["ReadWriteOnce"], "storageClassName": "", "volumeName": .string(pvName), "resources": ["requests": ["storage": "1Gi"]]],
                ])
                #expect(try await poll(attempts: 300, every: .milliseconds(100), until: {
                    PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: claimName, in: world.namespace)).phase == "Bound"
                }))
                let plan = world.scratch.file("nfs.yaml")
                try String(contentsOfFile: try replicasPlan(world), encoding: .utf8)
                    .replacingOccurrences(of: "claim: \(world.original.name)}", with: "claim: \(claimName)}")
                    .write(toFile: plan, atomically: true, encoding: .utf8)
                let mark = try lab.auditMark()
                let refused = try await expectRefused(world, plan: plan, code: "preflight.not-longhorn", since: mark)
                #expect(refused.standardOutput.contains("persistentvolume \(pvName) is not a Longhorn volume (its CSI driver is nfs.csi.k8s.io)"), "\(refused.standardOutput)")
            } catch {
                _ = try? await client.delete(.persistentVolumes, named: pvName, uid: created.uid)
                throw error
            }
            _ = try await client.delete(.persistentVolumes, named: pvName, uid: created.uid)
        }
    }
}

