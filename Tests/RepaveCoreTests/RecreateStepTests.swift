import Curl
import Foundation
import Journal
import KubeAPI
import Logging
import RepaveTestSupport
import Synchronization
import Testing

@testable import RepaveCore

/// Each recreate step against an API server in memory (``RecordingTransport``): exactly what its
/// observe, apply, await, undo and rehearse send — verb, path, query, preconditions, body — and
/// what the journal holds around each change. The lab suites keep checking that a real API server
/// answers as this table does; these need no lab, so they run everywhere, in a second.
///
/// The journal is created from the test's task (a blocking call), hence `.blockingCallsAllowed`.
@Suite("recreate steps, request by request", .blockingCallsAllowed)
struct RecreateStepTests {
    static let namespace = "devpod", claim = "home", workload = "ws", oldVolume = "pvc-old", newVolume = "pvc-new"
    static let oldClass = "longhorn-1r", newClass = "longhorn-3r", runID = "run-1"
    static let claimUID = "uid-claim-old", volumeUID = "uid-pv-old", longhornUID = "uid-lh-old", newClaimUID = "uid-claim-new"

    static let claimPath = "/api/v1/namespaces/devpod/persistentvolumeclaims/home"
    static let claimsPath = "/api/v1/namespaces/devpod/persistentvolumeclaims"
    static let volumePath = "/api/v1/persistentvolumes/pvc-old"
    static let deploymentPath = "/apis/apps/v1/namespaces/devpod/deployments/ws"
    static let deploymentsPath = "/apis/apps/v1/namespaces/devpod/deployments"
    static let podsPath = "/api/v1/namespaces/devpod/pods"
    static let newClassPath = "/apis/storage.k8s.io/v1/storageclasses/longhorn-3r"
    static let classesPath = "/apis/storage.k8s.io/v1/storageclasses"
    static let longhornPath = "/apis/longhorn.io/v1beta2/namespaces/longhorn-system/volumes/pvc-old"

    /// What SaveManifests has journaled by the time the changing steps run.
    static let ws = Workload(kind: .deployment, name: "ws")
    static let savedFacts: Facts = {
        var facts = Facts()
        facts.set(ClaimFact.claimUID, claimUID)
        facts.set(ClaimFact.volume, oldVolume)
        facts.set(ClaimFact.volumeUID, volumeUID)
        facts.set(ClaimFact.reclaimPolicy, "Delete")
        facts.set(ClaimFact.longhornUID, longhornUID)
        facts.set(ClaimFact.workloads, [ws])
        facts.set(ClaimFact.replicas(ws), 2)
        return facts
    }()
    /// What a run knows once preflight has passed: only its workloads.
    static let workloadsOnly: Facts = {
        var facts = Facts()
        facts.set(ClaimFact.workloads, [ws])
        return facts
    }()

    /// One step's world: a plan, a journal with its header, the in-memory server, and the context
    /// a runner would hand the step.
    struct World {
        let scratch: ScratchDirectory
        let journal: Journal
        let server: RecordingTransport
        let context: StepContext
        let run: RecreateRun

        init(facts: Facts = RecreateStepTests.savedFacts, dryRun: Bool = false, oldVolume: String = "retain-until-verified",
             permissionsChecked: Bool = true) throws {
            scratch = try ScratchDirectory()
            let header = RunHeader(strategy: "recreate", plan: "devpod-home", planDigest: "d", cluster: .init(server: "s", kubeSystemUID: "u"),
                                   targets: [:], tlsVerified: true)
            let journal = try Journal.create(directory: scratch.file("run"), run: RecreateStepTests.runID, header: header)
            self.journal = journal
            server = RecordingTransport(journalLength: { journal.records.count })
            // No retries: each request in the table is sent exactly once, and an unexpected
            // answer is not hidden behind a second try.
            let client = try KubeClient(connection: try scratch.unreachableConnection(), userAgent: "repave-test/steps",
                                        transport: server, retryPolicy: RetryPolicy(maxRetries: 0, maxConnectionRetries: 0))
            let plan = try RecreatePlan.parse(Data("""
                apiVersion: repave/v1
                kind: Plan
                strategy: recreate
                metadata: {name: devpod-home}
                target: {namespace: devpod, claim: home, workloads: [{kind: Deployment, name: ws}]}
                storageClass: {name: longhorn-3r, provisioner: driver.longhorn.io, parameters: {numberOfReplicas: "3"}}
                oldVolume: \(oldVolume)
                timeouts: {scaleDown: 5s, claimDeletion: 5s, bind: 5s, rollout: 5s, verify: 5s}
                """.utf8), file: "devpod-home.yaml")
            run = RecreateRun(plan: plan, run: RunInfo(id: RecreateStepTests.runID, directory: scratch.file("run"), permissionsChecked: permissionsChecked))
            context = StepContext(client: client, journal: journal, dryRun: dryRun, facts: facts, logger: Logger(label: "repave-test.steps"))
        }

        func start(_ step: any Step) {
            context.update { $0.currentStep = step.id }
        }

        /// The engine's records after the header, decoded.
        var records: [EngineRecord] {
            get throws { try journal.records.dropFirst().compactMap { try EngineRecord(decoding: $0) } }
        }
    }

    // MARK: - objects as the server holds them

    static func oldClaim(resourceVersion: String = "100", deleting: Bool = false) -> JSON {
        var object = StubObjects.claim(claim, in: namespace, uid: claimUID, resourceVersion: resourceVersion, storageClass: oldClass, volume: oldVolume,
                                       annotations: ["pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes",
                                                     "volume.beta.kubernetes.io/storage-provisioner": "driver.longhorn.io",
                                                     "volume.kubernetes.io/storage-provisioner": "driver.longhorn.io",
                                                     "kubectl.kubernetes.io/last-applied-configuration": "{}", "team": "platform"],
                                       labels: ["app": "workspace"])
        if deleting {
            object["metadata"]?["deletionTimestamp"] = "2026-12-06T22:00:00Z"
            object["metadata"]?["finalizers"] = ["kubernetes.io/pvc-protection"]
        }
        return object
    }

    static func oldPV(reclaimPolicy: String = "Delete", uid: String = volumeUID, retainedBy run: String? = nil) -> JSON {
        var volume = StubObjects.volume(oldVolume, uid: uid, resourceVersion: "200", reclaimPolicy: reclaimPolicy, claim: (namespace, claim, claimUID))
        if let run { volume["metadata"]?["annotations"] = ["repave/run-id": .string(run), "repave/claim": .string("\(namespace)/\(claim)")] }
        return volume
    }

    static func deployment(replicas: Int, resourceVersion: String = "300", annotations: [String: String] = [:]) -> JSON {
        StubObjects.deployment(workload, in: namespace, resourceVersion: resourceVersion, replicas: replicas, annotations: annotations)
    }

    static let pod = StubObjects.pod("ws-1", in: namespace, claim: claim, replicaSet: "ws-rs")

    // MARK: - helpers

    /// Every change the server received was journaled first: the record before it is its intent
    /// (same verb, path and precondition), and the record right after it is its outcome.
    func expectJournaled(_ world: World, preconditions: [String?], outcome: String = "ok", sourceLocation: SourceLocation = #_sourceLocation) throws {
        let records = world.journal.records
        let writes = world.server.writes
        #expect(writes.count == preconditions.count, "\(world.server.requests)", sourceLocation: sourceLocation)
        for (write, precondition) in zip(writes, preconditions) {
            guard write.journalLength >= 1, write.journalLength < records.count,
                  case .intent(let intent)? = try EngineRecord(decoding: records[write.journalLength - 1]),
                  case .outcome(let result)? = try EngineRecord(decoding: records[write.journalLength])
            else {
                Issue.record("\(write) was not sent between its intent and its outcome: \(records.map(\.kind))", sourceLocation: sourceLocation)
                continue
            }
            #expect(intent.verb == write.method.rawValue && intent.path == write.path, "\(intent) for \(write)", sourceLocation: sourceLocation)
            #expect(intent.precondition == precondition, sourceLocation: sourceLocation)
            // The journaled precondition is the one the request carried: a DELETE's uid, a PATCH's
            // resourceVersion guard.
            if let precondition {
                let carried = write.method == .delete ? write.body?[path: "preconditions", "uid"] : write.body?[path: "metadata", "resourceVersion"]
                #expect(carried == .string(precondition), "\(write) carries \(String(describing: carried))", sourceLocation: sourceLocation)
            }
            #expect(intent.dryRun == (write.query("dryRun") == "All"), sourceLocation: sourceLocation)
            #expect(result.result == outcome, sourceLocation: sourceLocation)
        }
    }

    // MARK: - the in-memory server itself

    @Test("a request the table has no route for is a test failure, answered 599 with the request named")
    func unroutedRequestFails() async throws {
        let server = RecordingTransport()
        let answer = Mutex<(status: Int, body: String)?>(nil)
        // The failure is expected here: the known issue fails this test if the transport is silent.
        await withKnownIssue("RecordingTransport records an issue for a request without a route") {
            let response = try await server.perform(HTTPRequest(.get, "https://127.0.0.1:1\(Self.volumePath)"))
            answer.withLock { $0 = (response.status, String(decoding: response.body, as: UTF8.self)) }
        }
        let (status, body) = try #require(answer.withLock { $0 })
        #expect(status == 599)
        #expect(body.contains("no route for GET https://127.0.0.1:1\(Self.volumePath)"))
        #expect(server.requests == ["GET \(Self.volumePath)"])
    }

    // MARK: - preflight

    @Test("preflight only reads: the claim, who mounts it (pods, their ReplicaSet), the class, the workload, the HPAs; it journals the workloads")
    func preflightObserve() async throws {
        let world = try World(facts: Facts())
        let server = world.server
        server.on(.get, Self.claimPath, .object(Self.oldClaim()))
        server.on(.get, Self.podsPath, .object(StubObjects.list([Self.pod])))
        server.on(.get, "/apis/apps/v1/namespaces/devpod/replicasets/ws-rs", .object(StubObjects.replicaSet("ws-rs", in: Self.namespace, deployment: Self.workload)))
        server.absent(Self.newClassPath)
        server.on(.get, Self.deploymentPath, .object(Self.deployment(replicas: 2)))
        server.on(.get, "/apis/autoscaling/v1/namespaces/devpod/horizontalpodautoscalers", .object(StubObjects.list([])))
        let step = Preflight(claimRun: world.run)
        world.start(step)
        #expect(try await step.observe(world.context))
        #expect(server.requests == [
            "GET \(Self.claimPath)",
            "GET \(Self.podsPath)?limit=500",
            "GET /apis/apps/v1/namespaces/devpod/replicasets/ws-rs",
            "GET \(Self.newClassPath)",
            "GET \(Self.deploymentPath)",
            "GET /apis/autoscaling/v1/namespaces/devpod/horizontalpodautoscalers?limit=500",
        ])
        #expect(try world.records == [.fact(key: ClaimFact.workloads.key, value: "Deployment/ws")])
    }

    @Test("preflight, when the session has not checked permissions, asks one rules review per namespace and nothing twice")
    func preflightPermissions() async throws {
        let world = try World(facts: Self.workloadsOnly, permissionsChecked: false)
        let server = world.server
        let everything: JSON = ["status": ["resourceRules": [["verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]]], "incomplete": false]]
        server.on(.post, "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", .object(everything, status: 201))
        server.on(.post, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", .object(["status": ["allowed": true]], status: 201))
        server.on(.get, Self.claimPath, .object(Self.oldClaim()))
        server.on(.get, Self.podsPath, .object(StubObjects.list([])))
        server.on(.get, Self.newClassPath, .object(StubObjects.storageClass(Self.newClass, replicas: 3)))
        server.on(.get, Self.deploymentPath, .object(Self.deployment(replicas: 2)))
        server.on(.get, "/apis/autoscaling/v1/namespaces/devpod/horizontalpodautoscalers", .object(StubObjects.list([])))
        let step = Preflight(claimRun: world.run)
        world.start(step)
        #expect(try await step.observe(world.context))
        let rules = server.sent.filter { $0.path.hasSuffix("/selfsubjectrulesreviews") }
        #expect(rules.compactMap { $0.body?[path: "spec", "namespace"]?.stringValue }.sorted() == ["devpod", "longhorn-system"])
        // Cluster-scoped questions (classes, volumes, the cluster's identity) go one by one, each once.
        let access = server.sent.filter { $0.path.hasSuffix("/selfsubjectaccessreviews") }.compactMap { $0.body?[path: "spec", "resourceAttributes"] }
        #expect(!access.isEmpty && Set(access).count == access.count, "\(access)")
        #expect(access.allSatisfy { $0["namespace"] == nil })
        // Reviews change nothing: no intent is journaled for them.
        #expect(try world.records.isEmpty)
    }

    // MARK: - save-manifests

    @Test("save-manifests reads the claim, its volume, its class, the Longhorn volume and the workload, saves them raw and journals uids and replicas")
    func saveManifests() async throws {
        let world = try World(facts: Self.workloadsOnly)
        let server = world.server
        let claim = Self.oldClaim()
        server.on(.get, Self.claimPath, .object(claim))
        server.on(.get, Self.volumePath, .object(Self.oldPV()))
        server.on(.get, "/apis/storage.k8s.io/v1/storageclasses/longhorn-1r", .object(StubObjects.storageClass(Self.oldClass, replicas: 1)))
        server.on(.get, Self.longhornPath, .object(StubObjects.longhornVolume(Self.oldVolume, uid: Self.longhornUID, replicas: 1)))
        // Scaled down by an earlier, interrupted attempt: the annotation holds the original count.
        server.on(.get, Self.deploymentPath, .object(Self.deployment(replicas: 0, annotations: ["repave/original-replicas": "2"])))
        let step = SaveManifests(claimRun: world.run)
        world.start(step)
        #expect(try await step.observe(world.context))
        #expect(server.requests == [
            "GET \(Self.claimPath)", "GET \(Self.volumePath)", "GET /apis/storage.k8s.io/v1/storageclasses/longhorn-1r",
            "GET \(Self.longhornPath)", "GET \(Self.deploymentPath)",
        ])
        let facts = world.context.facts
        #expect(facts[ClaimFact.claimUID] == Self.claimUID && facts[ClaimFact.volumeUID] == Self.volumeUID)
        #expect(facts[ClaimFact.longhornUID] == Self.longhornUID && facts[ClaimFact.reclaimPolicy] == "Delete")
        #expect(facts[ClaimFact.replicas(Self.ws)] == 2)
        // The Longhorn volume is the PV's name here: no longhorn.name is journaled.
        #expect(facts[ClaimFact.longhornName] == nil && ClaimFact.longhornVolume(facts) == Self.oldVolume)
        let saved = try JSON.decode(Data(contentsOf: URL(fileURLWithPath: world.scratch.file("run/manifests/persistentvolumeclaim-home.json"))))
        #expect(saved == claim, "the claim is saved as the server sent it, every field kept")
        // Done once its facts are journaled: a resumed run reads nothing again.
        #expect(try await step.observe(world.context))
        #expect(server.sent.count == 5)
    }

    @Test("save-manifests reads the Longhorn volume the PV's volumeHandle names, and journals that name when it is not the PV's")
    func saveManifestsLonghornHandle() async throws {
        let world = try World(facts: Self.workloadsOnly)
        let server = world.server
        var volume = Self.oldPV()
        volume["spec"]?["csi"]?["volumeHandle"] = "restored-home"
        server.on(.get, Self.claimPath, .object(Self.oldClaim()))
        server.on(.get, Self.volumePath, .object(volume))
        server.on(.get, "/apis/storage.k8s.io/v1/storageclasses/longhorn-1r", .object(StubObjects.storageClass(Self.oldClass, replicas: 1)))
        server.on(.get, "/apis/longhorn.io/v1beta2/namespaces/longhorn-system/volumes/restored-home",
                  .object(StubObjects.longhornVolume("restored-home", uid: Self.longhornUID, replicas: 1)))
        server.on(.get, Self.deploymentPath, .object(Self.deployment(replicas: 1)))
        let step = SaveManifests(claimRun: world.run)
        world.start(step)
        #expect(try await step.observe(world.context))
        #expect(world.context.facts[ClaimFact.longhornName] == "restored-home" && world.context.facts[ClaimFact.longhornUID] == Self.longhornUID)
        #expect(ClaimFact.longhornVolume(world.context.facts) == "restored-home")
    }

    // MARK: - ensure-storage-class

    static let classBody: JSON = [
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": ["name": "longhorn-3r", "annotations": ["repave/run-id": "run-1"]],
        "provisioner": "driver.longhorn.io", "parameters": ["numberOfReplicas": "3"],
        "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate", "allowVolumeExpansion": true,
    ]

    @Test("ensure-storage-class: observe GETs the class; apply POSTs it with the plan's settings and the run's id")
    func ensureStorageClass() async throws {
        let world = try World()
        let server = world.server
        server.absent(Self.newClassPath)
        server.on(.post, Self.classesPath, .object(StubObjects.storageClass(Self.newClass, replicas: 3), status: 201))
        let step = EnsureStorageClass(claimRun: world.run)
        world.start(step)
        #expect(try await !step.observe(world.context))
        try await step.apply(world.context)
        #expect(server.requests == ["GET \(Self.newClassPath)", "POST \(Self.classesPath)"])
        let post = try #require(server.writes.first)
        #expect(post.contentType == "application/json")
        #expect(post.body == Self.classBody)
        try expectJournaled(world, preconditions: [nil])
    }

    @Test("ensure-storage-class rehearses its POST with dryRun=All, and undo keeps a class this run created without sending anything")
    func ensureStorageClassRehearseAndUndo() async throws {
        let world = try World(dryRun: true)
        let server = world.server
        server.on(.get, Self.newClassPath, .failure(404, reason: "NotFound", message: "not found"),
                  .object(StubObjects.storageClass(Self.newClass, replicas: 3, annotations: ["repave/run-id": Self.runID])))
        server.on(.post, Self.classesPath, query: ["dryRun": "All"], .object(StubObjects.storageClass(Self.newClass, replicas: 3), status: 201))
        let step = EnsureStorageClass(claimRun: world.run)
        world.start(step)
        #expect(try await step.rehearse(world.context).map(\.passed) == [true])
        #expect(server.writes.map(\.description) == ["POST \(Self.classesPath)?dryRun=All"])
        #expect(server.writes.first?.body == Self.classBody)
        try expectJournaled(world, preconditions: [nil])
        let undone = try await step.undo(world.context)
        #expect(undone.count == 1 && undone[0].contains("is kept"), "\(undone)")
        #expect(server.writes.count == 1, "undo sends nothing: another claim may use the class by now")
    }

    // MARK: - retain-old-volume

    @Test("retain-old-volume PATCHes persistentVolumeReclaimPolicy Retain and the run's annotations as a merge patch guarded by the resourceVersion it read")
    func retainOldVolume() async throws {
        let world = try World()
        let server = world.server
        server.on(.get, Self.volumePath, .object(Self.oldPV()))
        server.on(.patch, Self.volumePath, .object(Self.oldPV(reclaimPolicy: "Retain", retainedBy: Self.runID)))
        let step = RetainOldVolume(claimRun: world.run)
        world.start(step)
        #expect(try await !step.observe(world.context))
        try await step.apply(world.context)
        // apply reuses observe's read (`StepContext.recent`): the PATCH is resourceVersion-guarded anyway.
        #expect(server.requests == ["GET \(Self.volumePath)", "PATCH \(Self.volumePath)"])
        let patch = try #require(server.writes.first)
        #expect(patch.contentType == "application/merge-patch+json")
        #expect(patch.body == ["metadata": ["resourceVersion": "200", "annotations": ["repave/run-id": .string(Self.runID), "repave/claim": "devpod/home"]],
                               "spec": ["persistentVolumeReclaimPolicy": "Retain"]])
        try expectJournaled(world, preconditions: ["200"])
        // Done only with both: Retain without this run's annotations is patched again.
        let after = try World()
        after.server.on(.get, Self.volumePath, .object(Self.oldPV(reclaimPolicy: "Retain")))
        after.start(step)
        #expect(try await !step.observe(after.context))
        let done = try World()
        done.server.on(.get, Self.volumePath, .object(Self.oldPV(reclaimPolicy: "Retain", retainedBy: Self.runID)))
        done.start(step)
        #expect(try await step.observe(done.context))
    }

    @Test("retain-old-volume changes nothing on a volume that is another object now (another uid)")
    func retainRefusesAnotherVolume() async throws {
        let world = try World()
        world.server.on(.get, Self.volumePath, .object(Self.oldPV(uid: "uid-someone-else")))
        let step = RetainOldVolume(claimRun: world.run)
        world.start(step)
        let error = await #expect(throws: RepaveError.self) { try await step.apply(world.context) }
        #expect(error?.code == ErrorCode.retainReplaced.name)
        #expect(world.server.writes.isEmpty)
    }

    @Test("retain-old-volume: rehearse sends the PATCH with dryRun=All; undo PATCHes the saved policy back, resourceVersion-guarded")
    func retainRehearseAndUndo() async throws {
        let rehearsal = try World(dryRun: true)
        rehearsal.server.on(.get, Self.volumePath, .object(Self.oldPV()))
        rehearsal.server.on(.patch, Self.volumePath, query: ["dryRun": "All"], .object(Self.oldPV(reclaimPolicy: "Retain")))
        let step = RetainOldVolume(claimRun: rehearsal.run)
        rehearsal.start(step)
        #expect(try await step.rehearse(rehearsal.context).map(\.passed) == [true])
        #expect(rehearsal.server.writes.map(\.description) == ["PATCH \(Self.volumePath)?dryRun=All"])

        let world = try World()
        world.server.on(.get, Self.volumePath, .object(Self.oldPV(reclaimPolicy: "Retain", retainedBy: Self.runID)))
        world.server.on(.patch, Self.volumePath, .object(Self.oldPV()))
        world.context.update { $0.currentStep = "abort" }
        #expect(try await RetainOldVolume(claimRun: world.run).undo(world.context) == ["persistentvolume pvc-old reclaim policy back to Delete"])
        let patch = try #require(world.server.writes.first)
        #expect(patch.query.isEmpty)
        #expect(patch.body == ["metadata": ["resourceVersion": "200", "annotations": ["repave/run-id": .null, "repave/claim": .null]],
                               "spec": ["persistentVolumeReclaimPolicy": "Delete"]])
        try expectJournaled(world, preconditions: ["200"])
    }

    // MARK: - scale-down

    static let scaleDownBody: JSON = [
        "metadata": ["resourceVersion": "300", "annotations": ["repave/original-replicas": "2"]],
        "spec": ["replicas": 0],
    ]

    @Test("scale-down PATCHes replicas 0 and the original-replicas annotation in one merge patch guarded by the resourceVersion")
    func scaleDown() async throws {
        let world = try World()
        let server = world.server
        server.on(.get, Self.deploymentPath, .object(Self.deployment(replicas: 2)))
        server.on(.patch, Self.deploymentPath, .object(Self.deployment(replicas: 0, resourceVersion: "301", annotations: ["repave/original-replicas": "2"])))
        let step = ScaleDown(claimRun: world.run)
        world.start(step)
        #expect(try await !step.observe(world.context))
        try await step.apply(world.context)
        // apply reuses observe's read (`StepContext.recent`): the PATCH is resourceVersion-guarded anyway.
        #expect(server.requests == ["GET \(Self.deploymentPath)", "PATCH \(Self.deploymentPath)"])
        let patch = try #require(server.writes.first)
        #expect(patch.contentType == "application/merge-patch+json")
        #expect(patch.body == Self.scaleDownBody)
        try expectJournaled(world, preconditions: ["300"])
        // The journal holds exactly the intent and the outcome for this change, in that order.
        #expect(try world.records == [
            .intent(.init(verb: "PATCH", path: Self.deploymentPath, precondition: "300", attempt: 1, dryRun: false)),
            .outcome(.init(result: "ok", detail: nil)),
        ])
    }

    @Test("scale-down's observe may take \"not yet down\" from a kept read, never \"down\": a kept 0 is read again")
    func scaleDownObserveReadsDownAfresh() async throws {
        let world = try World()
        let server = world.server
        // Someone scaled it back up since this process last read it at 0.
        server.on(.get, Self.deploymentPath, .object(Self.deployment(replicas: 1)))
        let step = ScaleDown(claimRun: world.run)
        world.start(step)
        world.context.saw(Self.deployment(replicas: 0), .deployments, named: Self.workload, in: Self.namespace)
        #expect(try await !step.observe(world.context))
        #expect(server.requests == ["GET \(Self.deploymentPath)"])
        // A kept read that says "not yet down" is enough: no request.
        let kept = try World()
        let keptStep = ScaleDown(claimRun: kept.run)
        kept.start(keptStep)
        kept.context.saw(Self.deployment(replicas: 2), .deployments, named: Self.workload, in: Self.namespace)
        #expect(try await !keptStep.observe(kept.context))
        #expect(kept.server.requests.isEmpty)
    }

    @Test("scale-down waits for the pod with a list and a watch on fieldSelector metadata.name, then checks the workload is still down")
    func scaleDownAwait() async throws {
        let world = try World()
        let server = world.server
        // The namespace's pods: the workspace's pod first, none once it has gone.
        server.on(.get, Self.podsPath, .object(StubObjects.list([Self.pod])), .object(StubObjects.list([])))
        server.on(.get, Self.podsPath, query: ["fieldSelector": "metadata.name=ws-1"], .object(StubObjects.list([Self.pod], resourceVersion: "1000")))
        server.on(.get, Self.podsPath, query: ["watch": "1", "fieldSelector": "metadata.name=ws-1"], .events([(type: "DELETED", object: Self.pod)]))
        server.on(.get, Self.deploymentPath, .object(Self.deployment(replicas: 0, annotations: ["repave/original-replicas": "2"])))
        let step = ScaleDown(claimRun: world.run)
        world.start(step)
        try await step.await(world.context)
        #expect(server.requests == [
            "GET \(Self.podsPath)?limit=500",
            "GET \(Self.deploymentPath)",
            // The watch starts from the pod list's resourceVersion: no list of its own.
            "GET \(Self.podsPath)?watch=1&allowWatchBookmarks=true&resourceVersion=1000&timeoutSeconds=300&fieldSelector=metadata.name=ws-1",
            "GET \(Self.podsPath)?limit=500",
            "GET \(Self.deploymentPath)",
        ])
        #expect(server.sent[2].streamed)
    }

    @Test("scale-down: rehearse sends its PATCH with dryRun=All; undo restores the saved replicas and removes the annotation, resourceVersion-guarded")
    func scaleDownRehearseAndUndo() async throws {
        let rehearsal = try World(dryRun: true)
        rehearsal.server.on(.get, Self.deploymentPath, .object(Self.deployment(replicas: 2)))
        rehearsal.server.on(.patch, Self.deploymentPath, query: ["dryRun": "All"], .object(Self.deployment(replicas: 0)))
        let step = ScaleDown(claimRun: rehearsal.run)
        rehearsal.start(step)
        #expect(try await step.rehearse(rehearsal.context).map(\.passed) == [true])
        #expect(rehearsal.server.writes.map(\.description) == ["PATCH \(Self.deploymentPath)?dryRun=All"])
        #expect(rehearsal.server.writes.first?.body == Self.scaleDownBody)
        try expectJournaled(rehearsal, preconditions: ["300"])

        let world = try World()
        world.server.on(.get, Self.deploymentPath, .object(Self.deployment(replicas: 0, resourceVersion: "301", annotations: ["repave/original-replicas": "2"])))
        world.server.on(.patch, Self.deploymentPath, .object(Self.deployment(replicas: 2, resourceVersion: "302")))
        world.context.update { $0.currentStep = "abort" }
        #expect(try await ScaleDown(claimRun: world.run).undo(world.context) == ["Deployment/ws back to 2 replicas"])
        let patch = try #require(world.server.writes.first)
        #expect(patch.query.isEmpty)
        #expect(patch.body == ["metadata": ["resourceVersion": "301", "annotations": ["repave/original-replicas": .null]], "spec": ["replicas": 2]])
        try expectJournaled(world, preconditions: ["301"])
    }

    @Test("a change answered 503 may have been made: mutate throws UnsettledWrite, journals the error outcome, and sends it once")
    func unsettledWrite() async throws {
        let world = try World()
        world.server.on(.get, Self.deploymentPath, .object(Self.deployment(replicas: 2)))
        world.server.on(.patch, Self.deploymentPath, .failure(503, reason: "ServiceUnavailable", message: "etcd is restarting"))
        let step = ScaleDown(claimRun: world.run)
        world.start(step)
        let error = await #expect(throws: UnsettledWrite.self) { try await step.apply(world.context) }
        #expect(error?.verb == "PATCH" && error?.path == Self.deploymentPath)
        #expect((error?.cause as? KubeAPIError)?.httpStatus == 503)
        #expect(world.server.writes.count == 1, "a write whose outcome is unknown is never resent blindly")
        try expectJournaled(world, preconditions: ["300"], outcome: "error")
    }

    @Test("a change refused 409 was not made: mutate throws the KubeAPIError (conflict) itself, not UnsettledWrite")
    func conflictIsTheAPIError() async throws {
        let world = try World()
        world.server.on(.get, Self.deploymentPath, .object(Self.deployment(replicas: 2)))
        world.server.on(.patch, Self.deploymentPath, .failure(409, reason: "Conflict", message: "the object has been modified; please apply your changes to the latest version and try again"))
        let step = ScaleDown(claimRun: world.run)
        world.start(step)
        let error = await #expect(throws: KubeAPIError.self) { try await step.apply(world.context) }
        #expect(error?.reason == .conflict && error?.httpStatus == 409)
        #expect(error.map(TransientFailure.isConflict) == true, "a resourceVersion conflict passes with a fresh read")
        try expectJournaled(world, preconditions: ["300"], outcome: "error")
    }

    // MARK: - delete-claim

    @Test("delete-claim journals the point of no return, then the intent, then sends DELETE with the claim's uid as precondition")
    func deleteClaim() async throws {
        let world = try World()
        let server = world.server
        server.on(.get, Self.claimPath, .object(Self.oldClaim()))
        server.on(.get, Self.deploymentPath, .object(Self.deployment(replicas: 0, annotations: ["repave/original-replicas": "2"])))
        server.on(.get, Self.podsPath, .object(StubObjects.list([])))
        server.on(.delete, Self.claimPath, .object(Self.oldClaim(deleting: true)))
        let step = DeleteClaim(claimRun: world.run)
        world.start(step)
        #expect(try await !step.observe(world.context))
        try await step.apply(world.context)
        #expect(server.requests == [
            // The last look before the point of no return (claim, workload, pods); apply reuses its claim.
            "GET \(Self.claimPath)", "GET \(Self.deploymentPath)", "GET \(Self.podsPath)?limit=500",
            "DELETE \(Self.claimPath)",
        ])
        let delete = try #require(server.writes.first)
        #expect(delete.query.isEmpty)
        #expect(delete.body == ["apiVersion": "v1", "kind": "DeleteOptions", "preconditions": ["uid": .string(Self.claimUID)]])
        #expect(try world.records == [
            .pointOfNoReturn(step: "delete-claim"),
            .intent(.init(verb: "DELETE", path: Self.claimPath, precondition: Self.claimUID, attempt: 1, dryRun: false)),
            .outcome(.init(result: "ok", detail: nil)),
        ])
        // Sent after the pnr and the intent were durable (header, pnr, intent).
        #expect(delete.journalLength == 3)
        try expectJournaled(world, preconditions: [Self.claimUID])
    }

    @Test("delete-claim sends no DELETE for a claim already terminating, and rehearses with dryRun=All in the query and the options")
    func deleteClaimTerminatingAndRehearse() async throws {
        let world = try World()
        world.server.on(.get, Self.claimPath, .object(Self.oldClaim(deleting: true)))
        let step = DeleteClaim(claimRun: world.run)
        world.start(step)
        try await step.apply(world.context)
        #expect(world.server.writes.isEmpty)

        let rehearsal = try World(dryRun: true)
        rehearsal.server.on(.get, Self.claimPath, .object(Self.oldClaim()))
        rehearsal.server.on(.delete, Self.claimPath, query: ["dryRun": "All"], .object(Self.oldClaim(deleting: true)))
        rehearsal.start(step)
        #expect(try await step.rehearse(rehearsal.context).map(\.passed) == [true])
        let delete = try #require(rehearsal.server.writes.first)
        #expect(delete.description == "DELETE \(Self.claimPath)?dryRun=All")
        #expect(delete.body == ["apiVersion": "v1", "kind": "DeleteOptions", "preconditions": ["uid": .string(Self.claimUID)], "dryRun": ["All"]])
        try expectJournaled(rehearsal, preconditions: [Self.claimUID])
    }

    /// Then, before the claim's name is used again, the old PV must have left Bound: the PV
    /// controller has seen the old claim go (kubernetes#105131).
    @Test("delete-claim waits with a list and a watch on fieldSelector metadata.name=home until the claim is gone, then until the old PV is no longer Bound to it",
          arguments: [1, 3])
    func deleteClaimAwait(boundReads: Int) async throws {
        let world = try World()
        world.server.on(.get, Self.claimsPath, query: ["fieldSelector": "metadata.name=home"], .object(StubObjects.list([Self.oldClaim(deleting: true)], resourceVersion: "1100")))
        world.server.on(.get, Self.claimsPath, query: ["watch": "1", "fieldSelector": "metadata.name=home"], .events([(type: "DELETED", object: Self.oldClaim(deleting: true))]))
        var released = Self.oldPV(reclaimPolicy: "Retain")
        released["status"] = ["phase": "Released"]
        let bound = RecordingTransport.Reply.object(Self.oldPV(reclaimPolicy: "Retain"))
        if boundReads == 1 {
            world.server.on(.get, Self.volumePath, .object(released))
        } else {
            world.server.on(.get, Self.volumePath, bound, bound, .object(released))
        }
        let step = DeleteClaim(claimRun: world.run)
        world.start(step)
        try await step.await(world.context)
        #expect(world.server.requests == [
            "GET \(Self.claimsPath)?limit=500&fieldSelector=metadata.name=home",
            "GET \(Self.claimsPath)?watch=1&allowWatchBookmarks=true&resourceVersion=1100&timeoutSeconds=300&fieldSelector=metadata.name=home",
        ] + Array(repeating: "GET \(Self.volumePath)", count: boundReads))
    }

    @Test("delete-claim stops with delete-claim.stuck when the old PV stays Bound to the deleted claim past the timeout")
    func deleteClaimOldVolumeStaysBound() async throws {
        let world = try World()
        world.server.on(.get, Self.claimsPath, query: ["fieldSelector": "metadata.name=home"], .object(StubObjects.list([], resourceVersion: "1100")))
        world.server.on(.get, Self.volumePath, .object(Self.oldPV(reclaimPolicy: "Retain")))
        let step = DeleteClaim(claimRun: world.run)
        world.start(step)
        // The wait began 4.5 s ago: half a second of the plan's 5 s is left.
        world.context.update { $0.waitStarted = (step.id, .now - .milliseconds(4500)) }
        let error = await #expect(throws: RepaveError.self) { try await step.await(world.context) }
        #expect(error?.errorCode == .deleteStuck)
        #expect(error?.message == "pv pvc-old is still Bound to the deleted claim after 5s")
        // The claims' list, then reads of the PV only (how many depends on the machine's speed).
        #expect(world.server.requests.count >= 2 && world.server.requests.dropFirst().allSatisfy { $0 == "GET \(Self.volumePath)" }, "\(world.server.requests)")
        #expect(world.server.writes.isEmpty)
    }

    // MARK: - create-claim

    @Test("create-claim POSTs the saved claim on the new class with the run's id, binding annotations and server fields stripped")
    func createClaim() async throws {
        let world = try World()
        let server = world.server
        try FileManager.default.createDirectory(atPath: world.scratch.file("run/manifests"), withIntermediateDirectories: true)
        try Self.oldClaim().encoded().write(to: URL(fileURLWithPath: world.scratch.file("run/manifests/persistentvolumeclaim-home.json")))
        server.absent(Self.claimPath)
        server.on(.get, Self.deploymentPath, .object(Self.deployment(replicas: 0, annotations: ["repave/original-replicas": "2"])))
        server.on(.get, Self.podsPath, .object(StubObjects.list([])))
        server.on(.post, Self.claimsPath, .object(StubObjects.claim(Self.claim, in: Self.namespace, uid: Self.newClaimUID, storageClass: Self.newClass,
                                                                    volume: nil, phase: "Pending"), status: 201))
        let step = CreateClaim(claimRun: world.run)
        world.start(step)
        #expect(try await !step.observe(world.context))
        try await step.apply(world.context)
        #expect(server.requests == ["GET \(Self.claimPath)", "GET \(Self.deploymentPath)", "GET \(Self.podsPath)?limit=500", "POST \(Self.claimsPath)"])
        let post = try #require(server.writes.first)
        #expect(post.query.isEmpty)
        #expect(post.body == [
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": ["name": "home", "namespace": "devpod", "labels": ["app": "workspace"],
                         "annotations": ["team": "platform", "repave/run-id": "run-1"]],
            "spec": ["accessModes": ["ReadWriteOnce"], "resources": ["requests": ["storage": "60Gi"]],
                     "storageClassName": "longhorn-3r", "volumeMode": "Filesystem"],
        ])
        try expectJournaled(world, preconditions: [nil])
        #expect(world.context.facts[RecreateFact.newClaimUID] == Self.newClaimUID)
    }

    @Test("create-claim rehearses under a stand-in name with dryRun=All, since the claim still exists")
    func createClaimRehearse() async throws {
        let world = try World(dryRun: true)
        try FileManager.default.createDirectory(atPath: world.scratch.file("run/manifests"), withIntermediateDirectories: true)
        try Self.oldClaim().encoded().write(to: URL(fileURLWithPath: world.scratch.file("run/manifests/persistentvolumeclaim-home.json")))
        world.server.on(.post, Self.claimsPath, query: ["dryRun": "All"], .object(Self.oldClaim(), status: 201))
        let step = CreateClaim(claimRun: world.run)
        world.start(step)
        #expect(try await step.rehearse(world.context).map(\.passed) == [true])
        let post = try #require(world.server.writes.first)
        #expect(post.description == "POST \(Self.claimsPath)?dryRun=All")
        #expect(post.body?[path: "metadata", "name"] == "home-dry-run")
        #expect(post.body?[path: "spec", "storageClassName"] == "longhorn-3r")
        // Straight to the server, not through mutate: nothing is journaled for a stand-in.
        #expect(try world.records.isEmpty)
    }

    // MARK: - await-bound

    @Test("await-bound reads the claim, then waits with a list and a watch on fieldSelector metadata.name=home; it sends no change")
    func awaitBound() async throws {
        let world = try World()
        let pending = StubObjects.claim(Self.claim, in: Self.namespace, uid: Self.newClaimUID, storageClass: Self.newClass, volume: nil, phase: "Pending")
        let bound = StubObjects.claim(Self.claim, in: Self.namespace, uid: Self.newClaimUID, resourceVersion: "1201", storageClass: Self.newClass, volume: Self.newVolume)
        world.server.on(.get, Self.claimPath, .object(pending))
        world.server.on(.get, Self.claimsPath, query: ["fieldSelector": "metadata.name=home"], .object(StubObjects.list([pending], resourceVersion: "1200")))
        world.server.on(.get, Self.claimsPath, query: ["watch": "1", "fieldSelector": "metadata.name=home"], .events([(type: "MODIFIED", object: bound)]))
        let step = AwaitBound(claimRun: world.run)
        world.start(step)
        #expect(try await !step.observe(world.context))
        try await step.await(world.context)
        #expect(world.server.requests == [
            "GET \(Self.claimPath)",
            // The watch starts from the claim observe read: no list of its own.
            "GET \(Self.claimsPath)?watch=1&allowWatchBookmarks=true&resourceVersion=100&timeoutSeconds=300&fieldSelector=metadata.name=home",
        ])
        #expect(try world.records.isEmpty)
    }

    // MARK: - scale-up

    @Test("scale-up PATCHes the original replicas from the facts (at least an HPA's minimum) and clears the annotation, resourceVersion-guarded")
    func scaleUp() async throws {
        var facts = Self.savedFacts
        facts.set(ClaimFact.hpaMinimum(Self.ws), 3)
        let world = try World(facts: facts)
        let server = world.server
        server.on(.get, Self.deploymentPath, .object(Self.deployment(replicas: 0, resourceVersion: "310", annotations: ["repave/original-replicas": "2"])))
        server.on(.patch, Self.deploymentPath, .object(Self.deployment(replicas: 3, resourceVersion: "311")))
        let step = ScaleUp(claimRun: world.run)
        world.start(step)
        #expect(try await !step.observe(world.context))
        try await step.apply(world.context)
        // apply reuses observe's read (`StepContext.recent`): the PATCH is resourceVersion-guarded anyway.
        #expect(server.requests == ["GET \(Self.deploymentPath)", "PATCH \(Self.deploymentPath)"])
        let patch = try #require(server.writes.first)
        #expect(patch.contentType == "application/merge-patch+json")
        #expect(patch.body == ["metadata": ["resourceVersion": "310", "annotations": ["repave/original-replicas": .null]], "spec": ["replicas": 3]])
        try expectJournaled(world, preconditions: ["310"])
    }

    @Test("scale-up rehearses with dryRun=All and waits for the rollout with a list on fieldSelector metadata.name=ws")
    func scaleUpRehearseAndAwait() async throws {
        let world = try World(dryRun: true)
        world.server.on(.get, Self.deploymentPath, .object(Self.deployment(replicas: 0, annotations: ["repave/original-replicas": "2"])))
        world.server.on(.patch, Self.deploymentPath, query: ["dryRun": "All"], .object(Self.deployment(replicas: 2)))
        world.server.on(.get, Self.deploymentsPath, query: ["fieldSelector": "metadata.name=ws"], .object(StubObjects.list([Self.deployment(replicas: 2)])))
        let step = ScaleUp(claimRun: world.run)
        world.start(step)
        #expect(try await step.rehearse(world.context).map(\.passed) == [true])
        #expect(world.server.writes.map(\.description) == ["PATCH \(Self.deploymentPath)?dryRun=All"])
        #expect(world.server.writes.first?.body?[path: "spec", "replicas"] == 2)
        try expectJournaled(world, preconditions: ["300"])
        try await step.await(world.context)
        #expect(world.server.requests.last == "GET \(Self.deploymentsPath)?limit=500&fieldSelector=metadata.name=ws")
    }

    // MARK: - verify

    @Test("verify reads the new claim, its Longhorn volume and the workload, and sends no change")
    func verify() async throws {
        let world = try World()
        world.server.on(.get, Self.claimPath, .object(StubObjects.claim(Self.claim, in: Self.namespace, uid: Self.newClaimUID, storageClass: Self.newClass, volume: Self.newVolume)))
        world.server.on(.get, "/apis/longhorn.io/v1beta2/namespaces/longhorn-system/volumes/pvc-new",
                        .object(StubObjects.longhornVolume(Self.newVolume, uid: "uid-lh-new", replicas: 3)),
                        .object(StubObjects.longhornVolume(Self.newVolume, uid: "uid-lh-new", replicas: 3, robustness: "degraded")))
        world.server.on(.get, Self.deploymentPath, .object(Self.deployment(replicas: 2)))
        let step = Verify(claimRun: world.run)
        world.start(step)
        #expect(try await step.observe(world.context))
        #expect(world.server.requests == [
            "GET \(Self.claimPath)", "GET /apis/longhorn.io/v1beta2/namespaces/longhorn-system/volumes/pvc-new", "GET \(Self.deploymentPath)",
        ])
        // A degraded volume while the workload runs does not verify.
        #expect(try await !step.observe(world.context))
        #expect(world.server.writes.isEmpty)
    }

    // MARK: - release-old-volume

    @Test("release-old-volume with oldVolume: delete sends uid-guarded DELETEs of the PV and then of the Longhorn volume, each journaled")
    func releaseOldVolumeDelete() async throws {
        let world = try World(oldVolume: "delete")
        let server = world.server
        server.on(.get, Self.volumePath, .object(Self.oldPV(reclaimPolicy: "Retain")))
        server.on(.get, Self.longhornPath, .object(StubObjects.longhornVolume(Self.oldVolume, uid: Self.longhornUID, replicas: 1)))
        server.on(.delete, Self.volumePath, .object(Self.oldPV(reclaimPolicy: "Retain")))
        server.on(.delete, Self.longhornPath, .object(StubObjects.longhornVolume(Self.oldVolume, uid: Self.longhornUID, replicas: 1)))
        let step = ReleaseOldVolume(claimRun: world.run)
        world.start(step)
        #expect(step.mutates)
        #expect(try await !step.observe(world.context))
        try await step.apply(world.context)
        #expect(server.requests == [
            "GET \(Self.volumePath)", "GET \(Self.longhornPath)",
            "GET \(Self.volumePath)", "DELETE \(Self.volumePath)", "GET \(Self.longhornPath)", "DELETE \(Self.longhornPath)",
        ])
        let deletes = server.writes
        #expect(deletes.map { $0.body?[path: "preconditions", "uid"] } == [.string(Self.volumeUID), .string(Self.longhornUID)])
        #expect(deletes.allSatisfy { $0.query.isEmpty && $0.body?["dryRun"] == nil })
        try expectJournaled(world, preconditions: [Self.volumeUID, Self.longhornUID])
    }

    /// A Longhorn volume restored from a backup, or a PV made by hand, has a `volumeHandle` that
    /// is not the PV's name: save-manifests journals that name, and the deletes use it.
    @Test("a Longhorn volume named by the PV's volumeHandle, not the PV's name: journaled as longhorn.name, and release-old-volume and finalize delete that one")
    func longhornVolumeByHandle() async throws {
        let restoredPath = "/apis/longhorn.io/v1beta2/namespaces/longhorn-system/volumes/restored-home"
        var facts = Self.savedFacts
        facts.set(ClaimFact.longhornName, "restored-home")
        let world = try World(facts: facts, oldVolume: "delete")
        let server = world.server
        server.on(.get, Self.volumePath, .object(Self.oldPV(reclaimPolicy: "Retain")))
        server.on(.get, restoredPath, .object(StubObjects.longhornVolume("restored-home", uid: Self.longhornUID, replicas: 1)))
        server.on(.delete, Self.volumePath, .object(Self.oldPV(reclaimPolicy: "Retain")))
        server.on(.delete, restoredPath, .object(StubObjects.longhornVolume("restored-home", uid: Self.longhornUID, replicas: 1)))
        let step = ReleaseOldVolume(claimRun: world.run)
        world.start(step)
        try await step.apply(world.context)
        #expect(server.requests.filter { $0.hasPrefix("DELETE") } == ["DELETE \(Self.volumePath)", "DELETE \(restoredPath)"])
        #expect(!server.requests.contains { $0.hasSuffix(Self.longhornPath) })

        let retaining = try #require(try World().run.plan as? RecreatePlan)
        let kept = try #require(RecreateStrategy(plan: retaining).keptVolume(facts, run: Self.runID))
        #expect(kept.longhornName == "restored-home" && kept.name == Self.oldVolume)
        #expect(RecreateStrategy(plan: retaining).keptVolume(Self.savedFacts, run: Self.runID)?.longhornName == Self.oldVolume)
        #expect(kept.steps.map(\.summary).contains("delete Longhorn volume longhorn-system/restored-home (uid-guarded)"))
    }

    @Test("release-old-volume deletes nothing that is another object now, and with retain-until-verified only reads and notes")
    func releaseOldVolumeSpares() async throws {
        let world = try World(oldVolume: "delete")
        world.server.on(.get, Self.volumePath, .object(Self.oldPV(uid: "uid-someone-else")))
        world.server.absent(Self.longhornPath)
        let step = ReleaseOldVolume(claimRun: world.run)
        world.start(step)
        try await step.apply(world.context)
        #expect(world.server.requests == ["GET \(Self.volumePath)", "GET \(Self.longhornPath)"])

        let kept = try World()
        kept.server.on(.get, Self.volumePath, .object(Self.oldPV(reclaimPolicy: "Retain")))
        let keep = ReleaseOldVolume(claimRun: kept.run)
        kept.start(keep)
        #expect(!keep.mutates)
        #expect(try await keep.observe(kept.context))
        #expect(kept.server.requests == ["GET \(Self.volumePath)"])
        #expect(try kept.records.allSatisfy { if case .note = $0 { true } else { false } })
        // The note points to finalize, with the run's directory.
        #expect(try kept.records.contains { if case .note(let fields) = $0 { fields["note"]?.contains("repave finalize \(kept.run.runDirectory)") == true } else { false } })
    }

    // MARK: - finalize's refusals

    @Test("finalize refuses a kept PV that is gone, replaced, not annotated with this run, or whose claimRef is a live claim; the Released PV of the deleted claim passes; oldVolume: delete keeps nothing")
    func finalizeRefusals() async throws {
        let world = try World()
        let plan = try #require(world.run.plan as? RecreatePlan)
        let kept = try #require(RecreateStrategy(plan: plan).keptVolume(Self.savedFacts, run: Self.runID))
        #expect(kept == KeptVolume(name: Self.oldVolume, uid: Self.volumeUID, longhornUID: Self.longhornUID, longhornNamespace: "longhorn-system", run: Self.runID))
        let deleting = try #require(try World(oldVolume: "delete").run.plan as? RecreatePlan)
        #expect(RecreateStrategy(plan: deleting).keptVolume(Self.savedFacts, run: Self.runID) == nil)
        let client = world.context.client
        func code(_ volume: JSON?) async -> String? {
            do {
                try await kept.requireDeletable(volume.map(PersistentVolume.init), client: client)
                return nil
            } catch {
                return (error as? RepaveError)?.code ?? "\(error)"
            }
        }
        #expect(await code(nil) == "finalize.volume-gone")
        #expect(await code(Self.oldPV(reclaimPolicy: "Retain", uid: "uid-someone-else", retainedBy: Self.runID)) == "finalize.volume-replaced")
        #expect(await code(Self.oldPV(reclaimPolicy: "Retain", retainedBy: "another-run")) == "finalize.volume-foreign")
        #expect(await code(Self.oldPV(reclaimPolicy: "Retain")) == "finalize.volume-foreign")
        // Its claimRef names a claim that exists with that uid: bound to a live claim.
        var released = Self.oldPV(reclaimPolicy: "Retain", retainedBy: Self.runID)
        released["status"] = ["phase": "Released"]
        // The claim as each look finds it, in turn: the old one, then the recreated one (twice), then none.
        let recreated = StubObjects.claim(Self.claim, in: Self.namespace, uid: Self.newClaimUID, storageClass: Self.newClass, volume: Self.newVolume)
        world.server.on(.get, Self.claimPath, .object(Self.oldClaim()), .object(recreated), .object(recreated),
                        .failure(404, reason: "NotFound", message: "not found"))
        #expect(await code(released) == "finalize.volume-bound")
        // The claim of that name is another object now (the recreated one): the PV is free.
        #expect(await code(released) == nil)
        // Phase Bound refuses whatever the claimRef says.
        #expect(await code(Self.oldPV(reclaimPolicy: "Retain", retainedBy: Self.runID)) == "finalize.volume-bound")
        // No claim of that name at all.
        #expect(await code(released) == nil)
        #expect(world.server.writes.isEmpty)
    }

}
