import Curl
import Foundation
import Journal
import KubeAPI
import Logging
import RepaveTestSupport
import Testing

@testable import RepaveCore

/// Rollback's steps (the run's own, roles swapped) against the in-memory API server: which object
/// each one touches, with which precondition, and where what it learns is journaled.
@Suite("rollback steps, request by request", .blockingCallsAllowed)
struct RollbackStepTests {
    static let runID = MigrateStepTests.runID
    static let claimPath = "/api/v1/namespaces/devpod/persistentvolumeclaims/home"
    static let oldPath = "/api/v1/persistentvolumes/pvc-old", newPath = "/api/v1/persistentvolumes/pvc-staging"

    /// The journal of a finished migrate (claim uid-claim-1 on pvc-old moved to uid-claim-2 on
    /// pvc-staging), then rollback's learnt facts; the rollback view over it.
    struct World {
        let scratch: ScratchDirectory
        let journal: Journal
        let server: RecordingTransport
        let context: StepContext
        let steps: [any Step]

        init() async throws {
            scratch = try ScratchDirectory()
            let header = RunHeader(strategy: "migrate", plan: "devpod-home-migrate", planDigest: "d", cluster: .init(server: "s", kubeSystemUID: "u"),
                                   targets: [:], tlsVerified: true)
            let journal = try Journal.create(directory: scratch.file("run"), run: RollbackStepTests.runID, header: header)
            self.journal = journal
            let facts: [(String, String)] = [
                (ClaimFact.claimUID.key, "uid-claim-1"), (ClaimFact.volume.key, "pvc-old"), (ClaimFact.volumeUID.key, "uid-pv-old"),
                (ClaimFact.workloads.key, "Deployment/ws"), ("replicas.Deployment/ws", "1"),
                (MigrateFact.stagingVolume.key, "pvc-staging"), (MigrateFact.stagingVolumeUID.key, "uid-pv-staging"), (RecreateFact.newClaimUID.key, "uid-claim-2"),
                (RollbackFact.claimUID.key, "uid-claim-2"), (RollbackFact.volume.key, "pvc-staging"), (RollbackFact.volumeUID.key, "uid-pv-staging"),
            ]
            for (key, value) in facts { try await EngineRecord.fact(key: key, value: value).append(to: journal, step: "save-manifests") }
            server = RecordingTransport(journalLength: { journal.records.count })
            let client = try KubeClient(connection: try scratch.unreachableConnection(), userAgent: "repave-test/rollback-steps",
                                        transport: server, retryPolicy: RetryPolicy(maxRetries: 0, maxConnectionRetries: 0))
            let strategy = MigrateStrategy(plan: try MigratePlan.parse(Data(MigrateStepTests.plan.utf8), file: "migrate.yaml"))
            steps = strategy.rollbackSteps(for: RunInfo(id: RollbackStepTests.runID, directory: scratch.file("run"), permissionsChecked: true), oldClass: "longhorn-1r")
            context = StepContext(client: client, journal: journal, dryRun: false, facts: RollbackFact.view(of: try RunHistory(journal.records).facts),
                                  logger: Logger(label: "repave-test.rollback"), factPrefix: RollbackFact.prefix)
            try FileManager.default.createDirectory(atPath: scratch.file("run/manifests"), withIntermediateDirectories: true)
            try StubObjects.claim("home", in: "devpod", uid: "uid-claim-1", storageClass: "longhorn-1r", volume: "pvc-old", labels: ["team": "a"]).encoded()
                .write(to: URL(fileURLWithPath: scratch.file("run/manifests/persistentvolumeclaim-home.json")))
        }

        func step(_ id: String) throws -> any Step {
            let step = try #require(steps.first { $0.id == id })
            context.update { $0.currentStep = step.id }
            return step
        }

        /// The intents journaled so far.
        func intents() throws -> [(step: String?, intent: EngineRecord.Intent)] {
            try journal.records.dropFirst().compactMap { record in
                guard case .intent(let intent)? = try EngineRecord(decoding: record) else { return nil }
                return (record.step, intent)
            }
        }
    }

    @Test("the issue's sequence under rollback- ids: scale down, await detach, Retain on the new PV, delete the claim (the only point of no return), pre-bind the old PV, create the claim, await Bound, scale up")
    func stepsInOrder() async throws {
        let world = try await World()
        #expect(world.steps.map(\.id) == ["rollback-scale-down", "rollback-await-detach", "rollback-retain-new-volume", "rollback-delete-claim",
                                          "rollback-prebind-volume", "rollback-create-claim", "rollback-await-bound", "rollback-scale-up"])
        #expect(world.steps.filter(\.isPointOfNoReturn).map(\.id) == ["rollback-delete-claim"])
        #expect(try world.step("rollback-create-claim").summary.contains("on storageclass longhorn-1r, bound to the old volume"))
    }

    @Test("rollback-delete-claim deletes the claim on the new volume, guarded by its uid (not the original claim's), and counts it done once it is gone")
    func deletesTheNewClaim() async throws {
        let world = try await World()
        world.server.on(.get, Self.claimPath, .object(StubObjects.claim("home", in: "devpod", uid: "uid-claim-2", storageClass: "longhorn-3r", volume: "pvc-staging")),
                        .failure(404, reason: "NotFound", message: "gone"))
        world.server.on(.get, "/apis/apps/v1/namespaces/devpod/deployments/ws", .object(StubObjects.deployment("ws", in: "devpod", replicas: 0)))
        world.server.on(.get, "/api/v1/namespaces/devpod/pods", .object(["kind": "PodList", "metadata": ["resourceVersion": "1"], "items": []]))
        world.server.on(.delete, Self.claimPath, .object(["kind": "Status", "status": "Success"]))
        let step = try world.step("rollback-delete-claim")
        #expect(try await !step.observe(world.context))
        try await step.apply(world.context)
        let delete = try #require(world.server.writes.first)
        #expect(delete.method == .delete && delete.path == Self.claimPath)
        #expect(delete.body?[path: "preconditions", "uid"] == "uid-claim-2")
        let intents = try world.intents()
        #expect(intents.count == 1 && intents[0].step == "rollback-delete-claim" && intents[0].intent.precondition == "uid-claim-2")
        // Run again once the claim is gone: done, nothing sent again.
        world.context.forgetReads()
        #expect(try await step.observe(world.context))
        #expect(world.server.writes.count == 1)
    }

    @Test("rollback-prebind-volume patches the OLD PV (uid and resourceVersion of its claimRef null, its resourceVersion as guard); rollback-create-claim posts the saved claim with volumeName the old PV on the old class, and journals its uid as rollback.newclaim.uid, leaving the run's newclaim.uid as it was")
    func rebindsTheOldVolume() async throws {
        let world = try await World()
        world.server.on(.get, Self.oldPath, .object(StubObjects.volume("pvc-old", uid: "uid-pv-old", resourceVersion: "900", reclaimPolicy: "Retain",
                                                                       claim: ("devpod", "home", "uid-claim-1"))))
        world.server.on(.patch, Self.oldPath, .object(StubObjects.volume("pvc-old", uid: "uid-pv-old", resourceVersion: "901", reclaimPolicy: "Retain",
                                                                         claim: ("devpod", "home", ""))))
        let prebind = try world.step("rollback-prebind-volume")
        #expect(try await !prebind.observe(world.context))
        try await prebind.apply(world.context)
        let patch = try #require(world.server.writes.first)
        #expect(patch.path == Self.oldPath && patch.body?[path: "metadata", "resourceVersion"] == "900")
        #expect(patch.body?[path: "spec", "claimRef", "uid"] == .null && patch.body?[path: "spec", "claimRef", "name"] == "home")
        #expect(world.server.writes.allSatisfy { $0.path != Self.newPath }, "the new volume is not touched")

        world.server.absent(Self.claimPath)
        world.server.on(.get, "/apis/apps/v1/namespaces/devpod/deployments/ws", .object(StubObjects.deployment("ws", in: "devpod", replicas: 0)))
        world.server.on(.get, "/api/v1/namespaces/devpod/pods", .object(["kind": "PodList", "metadata": ["resourceVersion": "1"], "items": []]))
        world.server.on(.post, "/api/v1/namespaces/devpod/persistentvolumeclaims",
                        .object(StubObjects.claim("home", in: "devpod", uid: "uid-claim-3", storageClass: "longhorn-1r", volume: "pvc-old", phase: "Pending"), status: 201))
        let create = try world.step("rollback-create-claim")
        #expect(try await !create.observe(world.context))
        try await create.apply(world.context)
        let post = try #require(world.server.writes.last)
        #expect(post.method == .post && post.body?[path: "spec", "volumeName"] == "pvc-old" && post.body?[path: "spec", "storageClassName"] == "longhorn-1r")
        #expect(post.body?[path: "metadata", "annotations", "repave/run-id"] == .string(Self.runID) && post.body?[path: "metadata", "labels", "team"] == "a")
        let facts = try RunHistory(world.journal.records).facts
        #expect(facts[RollbackFact.claimCreated] == "uid-claim-3" && facts[RecreateFact.newClaimUID] == "uid-claim-2")
        #expect(world.context.facts[RecreateFact.newClaimUID] == "uid-claim-3", "the steps see rollback's claim")
        #expect(try world.intents().map(\.step) == ["rollback-prebind-volume", "rollback-create-claim"])
    }
}
