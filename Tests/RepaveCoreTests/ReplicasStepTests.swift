import Curl
import Foundation
import Journal
import KubeAPI
import Logging
import RepaveTestSupport
import Testing

@testable import RepaveCore

/// The replicas steps against an API server in memory (``RecordingTransport``): what abort's
/// undo leaves alone, the patch's conflicts, and what await-rebuild counts as done. The lab
/// suite (ReplicasTests) runs the same steps against a real API server and the lab's Longhorn.
@Suite("replicas steps, request by request", .blockingCallsAllowed)
struct ReplicasStepTests {
    static let namespace = "devpod", claim = "home", pv = "pvc-old", longhornVolume = "pvc-old"
    static let claimUID = "uid-claim", longhornUID = "uid-lh"
    static let claimPath = "/api/v1/namespaces/devpod/persistentvolumeclaims/home"
    static let longhornPath = "/apis/longhorn.io/v1beta2/namespaces/longhorn-system/volumes/pvc-old"
    static let replicasPath = "/apis/longhorn.io/v1beta2/namespaces/longhorn-system/replicas"

    /// What save-manifests has journaled: the volume was at 1 replica; the plan asks for 3.
    static let savedFacts: Facts = {
        var facts = Facts()
        facts.set(ClaimFact.claimUID, claimUID)
        facts.set(ClaimFact.longhornUID, longhornUID)
        facts.set(ReplicasFact.longhornVolume, longhornVolume)
        facts.set(ReplicasFact.originalReplicas, 1)
        return facts
    }()

    struct World {
        let scratch: ScratchDirectory
        let journal: Journal
        let server: RecordingTransport
        let context: StepContext
        let run: ReplicasRun

        init(facts: Facts = ReplicasStepTests.savedFacts) throws {
            scratch = try ScratchDirectory()
            let header = RunHeader(strategy: "replicas", plan: "devpod-home-replicas", planDigest: "d", cluster: .init(server: "s", kubeSystemUID: "u"),
                                   targets: [:], tlsVerified: true)
            let journal = try Journal.create(directory: scratch.file("run"), run: "run-1", header: header)
            self.journal = journal
            server = RecordingTransport(journalLength: { journal.records.count })
            let client = try KubeClient(connection: try scratch.unreachableConnection(), userAgent: "repave-test/replicas",
                                        transport: server, retryPolicy: RetryPolicy(maxRetries: 0, maxConnectionRetries: 0))
            let plan = try ReplicasPlan.parse(Data(ReplicasPlanTests.minimal.utf8), file: "r.yaml")
            run = ReplicasRun(plan: plan, run: RunInfo(id: "run-1", directory: scratch.file("run"), permissionsChecked: true))
            context = StepContext(client: client, journal: journal, dryRun: false, facts: facts, logger: Logger(label: "repave-test.replicas"))
        }

        func start(_ step: String) {
            context.update { $0.currentStep = step }
        }

        /// Journals patch-replicas' intent (and outcome) for `path`, as its PATCH would have.
        func journalPatch(_ path: String) async throws {
            start("patch-replicas")
            try await context.mutate("PATCH", path, precondition: "1") {}
        }
    }

    static func volume(replicas: Int, resourceVersion: String = "500", scheduled: String? = "True") -> JSON {
        var object = StubObjects.longhornVolume(longhornVolume, uid: longhornUID, replicas: replicas)
        object["metadata"]?["resourceVersion"] = .string(resourceVersion)
        if let scheduled {
            object["status"]?["conditions"] = [["type": "Scheduled", "status": .string(scheduled), "reason": "", "message": ""]]
        }
        return object
    }

    static func claimObject(annotation: String?) -> JSON {
        StubObjects.claim(claim, in: namespace, uid: claimUID, storageClass: "longhorn-1r", volume: pv,
                          annotations: annotation.map { [ReplicasRun.annotation: $0] } ?? [:])
    }

    static func replica(_ name: String, node: String) -> JSON {
        ["apiVersion": "longhorn.io/v1beta2", "kind": "Replica",
         "metadata": ["name": .string(name), "namespace": "longhorn-system", "uid": .string("uid-\(name)"), "resourceVersion": "1",
                      "labels": ["longhornvolume": .string(longhornVolume)]],
         "spec": ["volumeName": .string(longhornVolume), "nodeID": .string(node), "healthyAt": "2026-12-07T00:00:00Z", "failedAt": ""],
         "status": ["currentState": "running"]]
    }

    // MARK: - abort (undo) changes only what this run changed

    @Test("abort before patch-replicas sent anything leaves the volume's count and an earlier run's annotation: nothing read, nothing written")
    func undoBeforePatch() async throws {
        let world = try World()
        world.server.on(.get, Self.longhornPath, .object(Self.volume(replicas: 3)))
        world.server.on(.get, Self.claimPath, .object(Self.claimObject(annotation: "3")))
        world.start(MaintenanceSession.abortStep)
        let report = try await PatchReplicas(replicas: world.run).undo(world.context)
        #expect(report.isEmpty)
        #expect(world.server.writes.isEmpty, "\(world.server.requests)")
    }

    @Test("abort after this run's patch leaves a count someone else changed since, and says so; it removes only its own annotation")
    func undoLeavesOthersCount() async throws {
        let world = try World()
        try await world.journalPatch(Self.longhornPath)
        try await world.journalPatch(Self.claimPath)
        world.server.on(.get, Self.longhornPath, .object(Self.volume(replicas: 4)))
        world.server.on(.get, Self.claimPath, .object(Self.claimObject(annotation: "3")))
        world.server.on(.patch, Self.claimPath, .object(Self.claimObject(annotation: nil)))
        world.start(MaintenanceSession.abortStep)
        let report = try await PatchReplicas(replicas: world.run).undo(world.context)
        #expect(world.server.writes.map(\.path) == [Self.claimPath], "\(world.server.requests)")
        #expect(report.contains { $0.contains("left at 4") && $0.contains("someone else") }, "\(report)")
        #expect(report.contains { $0.contains("removed") })
    }

    @Test("abort leaves an annotation whose value is not this run's count")
    func undoLeavesOthersAnnotation() async throws {
        let world = try World()
        try await world.journalPatch(Self.claimPath)
        world.server.on(.get, Self.claimPath, .object(Self.claimObject(annotation: "5")))
        world.start(MaintenanceSession.abortStep)
        let report = try await PatchReplicas(replicas: world.run).undo(world.context)
        #expect(world.server.writes.isEmpty, "\(world.server.requests)")
        #expect(report.contains { $0.contains("=5") && $0.contains("left") }, "\(report)")
    }

    @Test("abort puts back the count this run set, guarded by the volume's resourceVersion")
    func undoRevertsOwnCount() async throws {
        let world = try World()
        try await world.journalPatch(Self.longhornPath)
        world.server.on(.get, Self.longhornPath, .object(Self.volume(replicas: 3)))
        world.server.on(.patch, Self.longhornPath, .object(Self.volume(replicas: 1, resourceVersion: "501")))
        world.server.on(.get, Self.replicasPath, .object(StubObjects.list([Self.replica("r1", node: "n1")])))
        world.start(MaintenanceSession.abortStep)
        let report = try await PatchReplicas(replicas: world.run).undo(world.context)
        let write = try #require(world.server.writes.first)
        #expect(world.server.writes.count == 1)
        #expect(write.body?[path: "spec", "numberOfReplicas"] == .integer(1))
        #expect(write.body?[path: "metadata", "resourceVersion"] == .string("500"))
        #expect(report.contains { $0.contains("back to 1") }, "\(report)")
    }

    // MARK: - patch-replicas' conflicts

    @Test("a 409 on the volume's patch is read again and sent again, each try its own journaled intent")
    func patchConflictThenOK() async throws {
        let world = try World()
        world.server.on(.get, Self.longhornPath, .object(Self.volume(replicas: 1)), .object(Self.volume(replicas: 1, resourceVersion: "502")))
        world.server.on(.patch, Self.longhornPath, .failure(409, reason: "Conflict", message: "the object has been modified; please apply your changes to the latest version"),
                        .object(Self.volume(replicas: 3, resourceVersion: "503")))
        world.server.on(.get, Self.claimPath, .object(Self.claimObject(annotation: nil)))
        world.server.on(.patch, Self.claimPath, .object(Self.claimObject(annotation: "3")))
        world.start("patch-replicas")
        try await PatchReplicas(replicas: world.run).apply(world.context)
        let writes = world.server.writes
        #expect(writes.map(\.path) == [Self.longhornPath, Self.longhornPath, Self.claimPath], "\(world.server.requests)")
        #expect(writes.map { $0.body?[path: "metadata", "resourceVersion"] } == [.string("500"), .string("502"), .string("100")])
        let intents = try world.journal.records.compactMap { record -> EngineRecord.Intent? in
            if case .intent(let intent)? = try EngineRecord(decoding: record) { intent } else { nil }
        }
        #expect(intents.map(\.precondition) == ["500", "502", "100"])
    }

    @Test("when every try meets a conflict, the last 409 is thrown as it came, for the engine's (and abort's) retry with backoff")
    func patchConflictsRunOut() async throws {
        let world = try World()
        world.server.on(.get, Self.longhornPath, .object(Self.volume(replicas: 1)))
        world.server.on(.patch, Self.longhornPath, .failure(409, reason: "Conflict", message: "the object has been modified"))
        world.start("patch-replicas")
        let error = await #expect(throws: KubeAPIError.self) { try await PatchReplicas(replicas: world.run).apply(world.context) }
        #expect(error.map(TransientFailure.isConflict) == true)
        #expect(world.server.writes.count == ReplicasRun.patchAttempts)
        if case .passing = TransientFailure.classify(try #require(error)) {} else { Issue.record("a conflict is not passing") }
    }

    @Test("patch-replicas without the journaled Longhorn volume stops with its own code")
    func patchWithoutVolumeFact() async throws {
        let world = try World(facts: Facts())
        world.start("patch-replicas")
        let error = await #expect(throws: RepaveError.self) { try await PatchReplicas(replicas: world.run).apply(world.context) }
        #expect(error?.errorCode == .replicasNoVolume)
        #expect(world.server.sent.isEmpty)
    }

    // MARK: - await-rebuild

    @Test("Scheduled Unknown is not done, though everything else is")
    func scheduledUnknown() async throws {
        let world = try World()
        world.server.on(.get, Self.longhornPath, .object(Self.volume(replicas: 3, scheduled: "Unknown")))
        world.server.on(.get, Self.replicasPath, .object(StubObjects.list(["n1", "n2", "n3"].map { Self.replica("r-\($0)", node: $0) })))
        world.start("await-rebuild")
        let state = try await AwaitRebuild(replicas: world.run).rebuild(world.context)
        #expect(state.problems.count == 1 && state.problems.first?.contains("Scheduled is Unknown") == true, "\(state.problems)")
        #expect(state.schedulingFailure == nil)
    }

    @Test("a healthy replica without a node does not count; with three on nodes it is done")
    func replicaWithoutNode() async throws {
        let world = try World()
        world.server.on(.get, Self.longhornPath, .object(Self.volume(replicas: 3)))
        world.server.on(.get, Self.replicasPath, .object(StubObjects.list([Self.replica("r1", node: "n1"), Self.replica("r2", node: "n2"), Self.replica("r3", node: "")])),
                        .object(StubObjects.list(["n1", "n2", "n3"].map { Self.replica("r-\($0)", node: $0) })))
        world.start("await-rebuild")
        let step = AwaitRebuild(replicas: world.run)
        let missing = try await step.rebuild(world.context)
        #expect(missing.problems == ["2 of 3 replicas healthy on distinct nodes"])
        #expect(try await step.rebuild(world.context).problems.isEmpty)
        #expect(!LonghornReplica(Self.replica("r3", node: "")).isHealthy(attached: false))
    }

    @Test("a count someone else changed stops the wait at once, with its own code")
    func countChanged() async throws {
        let world = try World()
        world.server.on(.get, Self.longhornPath, .object(Self.volume(replicas: 4)))
        world.server.on(.get, Self.replicasPath, .object(StubObjects.list(["n1", "n2", "n3"].map { Self.replica("r-\($0)", node: $0) })))
        world.start("await-rebuild")
        let started = ContinuousClock.now
        let error = await #expect(throws: RepaveError.self) { try await AwaitRebuild(replicas: world.run).await(world.context) }
        #expect(error?.errorCode == .rebuildCountChanged)
        #expect(error?.hint != nil)
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(world.server.writes.isEmpty)
    }

    // MARK: - status

    @Test("status's live state finds the Longhorn volume by the PV's spec.csi.volumeHandle, not the PV's name")
    func liveStateByVolumeHandle() async throws {
        let world = try World()
        var volume = StubObjects.volume(Self.pv, uid: "uid-pv")
        volume["spec"]?["csi"]?["volumeHandle"] = "lh-home"
        var longhorn = Self.volume(replicas: 3)
        longhorn["metadata"]?["name"] = "lh-home"
        world.server.on(.get, Self.claimPath, .object(Self.claimObject(annotation: nil)))
        world.server.absent("/apis/coordination.k8s.io/v1/namespaces/devpod/leases/repave-home")
        world.server.on(.get, "/api/v1/persistentvolumes/pvc-old", .object(volume))
        world.server.on(.get, "/apis/longhorn.io/v1beta2/namespaces/longhorn-system/volumes/lh-home", .object(longhorn))
        let strategy = ReplicasStrategy(plan: world.run.plan)
        let state = try await strategy.liveState(world.context.client)
        #expect(state["volume"]?.hasPrefix("lh-home: 3 replicas") == true, "\(state) after \(world.server.requests)")
        #expect(!world.server.requests.contains("GET \(Self.longhornPath)"))
    }
}
