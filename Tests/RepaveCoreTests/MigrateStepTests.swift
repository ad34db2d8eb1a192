import Curl
import Foundation
import Journal
import KubeAPI
import Logging
import RepaveTestSupport
import Testing

@testable import RepaveCore

/// Migrate's own steps and checks against the in-memory API server (``RecordingTransport``):
/// the prebind's patch, the names, the preflight's refusals, and the window's split.
@Suite("migrate steps, request by request", .blockingCallsAllowed)
struct MigrateStepTests {
    static let runID = "0123abcd-5678-run"
    static let staging = "home-repave-0123abcd", stagingVolume = "pvc-staging"
    static let stagingVolumePath = "/api/v1/persistentvolumes/pvc-staging"

    static let plan = """
        apiVersion: repave/v1
        kind: Plan
        strategy: migrate
        metadata: {name: devpod-home-migrate}
        target: {namespace: devpod, claim: home, workloads: [{kind: StatefulSet, name: ws}]}
        storageClass: {name: longhorn-3r, provisioner: driver.longhorn.io, parameters: {numberOfReplicas: "3"}}
        copy: {image: lab/mover:1}
        window: {start: "2030-01-01T02:00:00Z", duration: 2h}
        timeouts: {scaleDown: 5s, claimDeletion: 5s, bind: 5s, rollout: 5s, verify: 5s}
        """

    struct World {
        let scratch: ScratchDirectory
        let journal: Journal
        let server: RecordingTransport
        let context: StepContext
        let strategy: MigrateStrategy
        let steps: [any Step]

        init(facts: Facts = Facts()) throws {
            scratch = try ScratchDirectory()
            let header = RunHeader(strategy: "migrate", plan: "devpod-home-migrate", planDigest: "d", cluster: .init(server: "s", kubeSystemUID: "u"),
                                   targets: [:], tlsVerified: true)
            let journal = try Journal.create(directory: scratch.file("run"), run: MigrateStepTests.runID, header: header)
            self.journal = journal
            server = RecordingTransport(journalLength: { journal.records.count })
            let client = try KubeClient(connection: try scratch.unreachableConnection(), userAgent: "repave-test/migrate-steps",
                                        transport: server, retryPolicy: RetryPolicy(maxRetries: 0, maxConnectionRetries: 0))
            strategy = MigrateStrategy(plan: try MigratePlan.parse(Data(MigrateStepTests.plan.utf8), file: "migrate.yaml"))
            steps = strategy.steps(for: RunInfo(id: MigrateStepTests.runID, directory: scratch.file("run"), permissionsChecked: true))
            context = StepContext(client: client, journal: journal, dryRun: false, facts: facts, logger: Logger(label: "repave-test.migrate"))
        }

        func step(_ id: String) throws -> any Step {
            let step = try #require(steps.first { $0.id == id })
            context.update { $0.currentStep = step.id }
            return step
        }
    }

    static let stagingFacts: Facts = {
        var facts = Facts()
        facts.set(MigrateFact.stagingVolume, stagingVolume)
        facts.set(MigrateFact.stagingVolumeUID, "uid-pv-staging")
        return facts
    }()

    @Test("the 19 steps in the issue's order; delete-claim is the only point of no return; the first seven may run before the window")
    func stepsInOrder() throws {
        let world = try World()
        #expect(world.steps.map(\.id) == [
            "preflight", "save-manifests", "ensure-storage-class", "retain-old-volume", "create-staging-claim", "retain-staging-volume",
            "warm-copy", "scale-down", "await-detach", "final-copy", "verify-copy", "delete-staging-claim", "delete-claim",
            "prebind-volume", "create-claim", "await-bound", "scale-up", "verify", "keep-old-volume",
        ])
        let pointsOfNoReturn = world.steps.filter { $0.isPointOfNoReturn }.map(\.id)
        #expect(pointsOfNoReturn == ["delete-claim"])
        let beforeWindow = world.steps.filter { !$0.needsWindow }.map(\.id)
        #expect(beforeWindow == ["ensure-storage-class", "retain-old-volume", "create-staging-claim", "retain-staging-volume", "warm-copy"])
        // Recreate's steps all need it, as before.
        let recreate = try #require(try PlanFile.parse(Data(Self.plan.replacingOccurrences(of: "strategy: migrate", with: "strategy: recreate")
            .replacingOccurrences(of: "copy: {image: lab/mover:1}\n", with: "").utf8), file: "r.yaml") as? RecreateStrategy)
        let recreateSteps = recreate.steps(for: .planning)
        #expect(recreateSteps.filter { !$0.needsWindow }.isEmpty)
    }

    @Test("names: the staging claim is <claim>-repave-<run id, 8 chars>, its pods -warm, -final, -verify; a 253-character claim stays within 253")
    func names() throws {
        #expect(StagingClaim.name(claim: "home", runID: Self.runID) == Self.staging)
        let world = try World()
        let pods = world.steps.compactMap { $0 as? CopyStep }.map { $0.migrate.pod($0.pass).name }
        #expect(pods == ["\(Self.staging)-warm", "\(Self.staging)-final", "\(Self.staging)-verify"])
        let long = String(repeating: "c", count: 253)
        let name = StagingClaim.name(claim: long, runID: Self.runID)
        #expect(name.count == 253 && name.hasSuffix("-repave-0123abcd"))
        #expect(CopyPod(pass: .verify, namespace: "n", sourceClaim: long, stagingClaim: name, runID: Self.runID, copy: world.strategy.plan.copy).name.count <= 253)
    }

    @Test("prebind-volume PATCHes the staging PV's claimRef to the claim with uid and resourceVersion null, as a merge patch guarded by the PV's resourceVersion")
    func prebind() async throws {
        let world = try World(facts: Self.stagingFacts)
        // Released: its claimRef still names the deleted staging claim's uid.
        world.server.on(.get, Self.stagingVolumePath, .object(StubObjects.volume(Self.stagingVolume, uid: "uid-pv-staging", resourceVersion: "700",
                                                                                  reclaimPolicy: "Retain", claim: ("devpod", Self.staging, "uid-staging-claim"))))
        world.server.on(.patch, Self.stagingVolumePath, .object(StubObjects.volume(Self.stagingVolume, uid: "uid-pv-staging", resourceVersion: "701",
                                                                                    reclaimPolicy: "Retain", claim: ("devpod", "home", ""))))
        let step = try world.step("prebind-volume")
        #expect(try await !step.observe(world.context))
        try await step.apply(world.context)
        let patch = try #require(world.server.writes.first)
        #expect(patch.method == .patch && patch.contentType == "application/merge-patch+json")
        #expect(patch.body == ["metadata": ["resourceVersion": "700"],
                               "spec": ["claimRef": ["apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": "devpod", "name": "home",
                                                     "uid": .null, "resourceVersion": .null]]])
        // Encoded, the nulls are there: a merge patch that leaves them out keeps the old uid.
        let text = String(decoding: try #require(patch.body).encoded(), as: UTF8.self)
        #expect(text.contains("\"uid\":null") && text.contains("\"resourceVersion\":null"), "\(text)")
        let intent = try world.journal.records.dropFirst().compactMap { try EngineRecord(decoding: $0) }.first
        guard case .intent(let sent)? = intent else { Issue.record("no intent before the patch"); return }
        #expect(sent.verb == "PATCH" && sent.path == Self.stagingVolumePath && sent.precondition == "700")

        // Pre-bound (no uid) or bound to the new claim: done.
        let done = try World(facts: Self.stagingFacts)
        done.server.on(.get, Self.stagingVolumePath, .object(StubObjects.volume(Self.stagingVolume, uid: "uid-pv-staging", claim: ("devpod", "home", ""))))
        #expect(try await done.step("prebind-volume").observe(done.context))
    }

    @Test("delete-claim's last look: a workload whose generation moved after the final copy began, or a staging volume gone, replaced or not Retain, stops the run before anything is deleted")
    func lastLookBeforeDeletingTheClaim() async throws {
        var facts = Self.stagingFacts
        facts.set(ClaimFact.claimUID, "uid-claim")
        facts.set(ClaimFact.workloads, [Workload(kind: .deployment, name: "ws")])
        facts.set(MigrateFact.finalSource, "Deployment/ws@2")
        /// delete-claim's observe with the Deployment at `generation` and the staging PV as given: the error's code, or nil when it may delete.
        func lastLook(generation: Int64, stagingPV: JSON?) async throws -> ErrorCode? {
            let world = try World(facts: facts)
            world.server.on(.get, "/api/v1/namespaces/devpod/persistentvolumeclaims/home",
                            .object(StubObjects.claim("home", in: "devpod", uid: "uid-claim", storageClass: "longhorn-1r", volume: "pvc-old")))
            var deployment = StubObjects.deployment("ws", in: "devpod", replicas: 0)
            deployment["metadata"]?["generation"] = .integer(generation)
            world.server.on(.get, "/apis/apps/v1/namespaces/devpod/deployments/ws", .object(deployment))
            world.server.on(.get, "/api/v1/namespaces/devpod/pods", .object(StubObjects.list([])))
            world.server.on(.get, Self.stagingVolumePath, stagingPV.map { .object($0) } ?? .failure(404, reason: "NotFound", message: "persistentvolumes \"pvc-staging\" not found"))
            let step = try world.step("delete-claim")
            defer { #expect(world.server.writes.isEmpty) }
            do {
                #expect(try await !step.observe(world.context))
                return nil
            } catch let error as RepaveError {
                return error.errorCode
            }
        }
        let retained = StubObjects.volume(Self.stagingVolume, uid: "uid-pv-staging", reclaimPolicy: "Retain", claim: ("devpod", Self.staging, "uid-staging"))
        #expect(try await lastLook(generation: 2, stagingPV: retained) == nil)
        // Scaled up and down again after the final copy began: the copy may lack what was written.
        #expect(try await lastLook(generation: 4, stagingPV: retained) == .sourceChanged)
        #expect(try await lastLook(generation: 2, stagingPV: nil) == .stagingVolumeLost)
        #expect(try await lastLook(generation: 2, stagingPV: StubObjects.volume(Self.stagingVolume, uid: "uid-other", reclaimPolicy: "Retain")) == .stagingVolumeLost)
        #expect(try await lastLook(generation: 2, stagingPV: StubObjects.volume(Self.stagingVolume, uid: "uid-pv-staging", reclaimPolicy: "Delete")) == .stagingVolumeLost)
    }

    @Test("prebind-volume changes nothing when the staging PV is gone or is another object")
    func prebindRefusesAnotherVolume() async throws {
        let world = try World(facts: Self.stagingFacts)
        world.server.on(.get, Self.stagingVolumePath, .object(StubObjects.volume(Self.stagingVolume, uid: "uid-someone-else")))
        let step = try world.step("prebind-volume")
        let error = await #expect(throws: RepaveError.self) { try await step.apply(world.context) }
        #expect(error?.errorCode == .rebindNoVolume)
        #expect(world.server.writes.isEmpty)
    }

    @Test("create-claim's object for a pre-bound volume: volumeName, the target class, no binding annotations, the run id")
    func createdClaim() throws {
        let saved = StubObjects.claim("home", in: "devpod", uid: "u", storageClass: "longhorn-1r", volume: "pvc-old",
                                      annotations: ["pv.kubernetes.io/bind-completed": "yes", "volume.beta.kubernetes.io/storage-provisioner": "x", "team": "a"])
        let object = Rebind.claim(from: saved, storageClass: "longhorn-3r", volume: Self.stagingVolume, run: Self.runID)
        #expect(object[path: "spec", "volumeName"] == .string(Self.stagingVolume))
        #expect(object[path: "spec", "storageClassName"] == "longhorn-3r")
        #expect(object[path: "metadata", "annotations"] == ["team": "a", "repave/run-id": .string(Self.runID)])
        #expect(object[path: "metadata", "uid"] == nil && object[path: "metadata", "resourceVersion"] == nil)
    }

    // MARK: preflight refusals

    func refusal(_ check: PreflightCheck, findings: PreflightFindings, world: World) async throws -> RepaveError? {
        var findings = findings
        return await #expect(throws: RepaveError.self) { try await check.run(&findings, world.context) }
    }

    @Test("preflight refuses a Block claim, a class of another provisioner, an unknown finalizer and a StatefulSet that deletes its claims; none sends a write")
    func refusals() async throws {
        let world = try World()
        let migrate = try #require(world.steps.first { $0 is CopyStep } as? CopyStep).migrate
        var claim = StubObjects.claim("home", in: "devpod", uid: "u", storageClass: "longhorn-1r", volume: "pvc-old")
        claim["spec"]?["volumeMode"] = "Block"
        var findings = PreflightFindings()
        findings.claim = PersistentVolumeClaim(claim)
        #expect(try await refusal(migrate.filesystemVolume, findings: findings, world: world)?.errorCode == .blockVolume)

        var other = StubObjects.volume("pvc-old", uid: "uid-pv-old")
        other["spec"]?["csi"]?["driver"] = "rbd.csi.ceph.com"
        world.server.on(.get, "/api/v1/persistentvolumes/pvc-old", .object(other))
        let mismatch = try await refusal(migrate.sameProvisioner, findings: findings, world: world)
        #expect(mismatch?.errorCode == .otherProvisioner && mismatch?.message.contains("rbd.csi.ceph.com") == true)

        claim["metadata"]?["finalizers"] = ["kubernetes.io/pvc-protection", "example.com/backup"]
        findings.claim = PersistentVolumeClaim(claim)
        let finalizer = try await refusal(migrate.knownFinalizers, findings: findings, world: world)
        #expect(finalizer?.errorCode == .unknownFinalizers && finalizer?.message.contains("example.com/backup") == true)

        // The 1.20 lab cannot hold the field: the StatefulSet's raw JSON carries it here.
        let set: JSON = ["apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": ["name": "ws", "namespace": "devpod"],
                         "spec": ["replicas": 1, "persistentVolumeClaimRetentionPolicy": ["whenDeleted": "Retain", "whenScaled": "Delete"]]]
        findings.workloads = [(Workload(kind: .statefulSet, name: "ws"), set)]
        let retention = try await refusal(migrate.claimsKeptByStatefulSets, findings: findings, world: world)
        #expect(retention?.errorCode == .claimRetentionDelete && retention?.message.contains("whenScaled: Delete") == true)
        var retained = set
        retained["spec"]?["persistentVolumeClaimRetentionPolicy"] = ["whenDeleted": "Retain", "whenScaled": "Retain"]
        findings.workloads = [(Workload(kind: .statefulSet, name: "ws"), retained)]
        try await migrate.claimsKeptByStatefulSets.run(&findings, world.context)
        #expect(world.server.writes.isEmpty)
    }

    // MARK: the window

    @Test("before the window opens the staging claim and the warm copy run; scale-down stops; once a window step changed something the window only warns")
    func window() {
        let steps: [RunMachine.StepInfo] = [
            .init(id: "preflight", mutates: false, estimate: .seconds(10)),
            .init(id: "warm-copy", mutates: true, estimate: .seconds(3600), needsWindow: false),
            .init(id: "scale-down", mutates: true, estimate: .seconds(30)),
            .init(id: "delete-claim", mutates: true, pointOfNoReturn: true, estimate: .seconds(30)),
        ]
        let closed = RunMachine.Event.gated(window: .notYetOpen(opensIn: 600), lockLost: nil)
        var machine = RunMachine(steps: steps, confirmationRequired: false)
        #expect(machine.next(after: .start) == .observe("preflight"))
        #expect(machine.next(after: .observed(goalHolds: true)) == .record("preflight"))
        #expect(machine.next(after: .recorded) == .observe("warm-copy"))
        // The gate's remaining time counts only the steps that need the window.
        #expect(machine.next(after: .observed(goalHolds: false)) == .gate("warm-copy", remaining: .seconds(60)))
        #expect(machine.next(after: closed) == .apply("warm-copy", windowWarning: nil))
        #expect(machine.next(after: .applied) == .await("warm-copy"))
        #expect(machine.next(after: .awaited) == .record("warm-copy"))
        #expect(machine.next(after: .recorded) == .observe("scale-down"))
        #expect(machine.next(after: .observed(goalHolds: false)) == .gate("scale-down", remaining: .seconds(60)))
        #expect(machine.next(after: closed) == .stop("not starting scale-down: the maintenance window opens in 10m"))

        // Resumed after scale-down was done: the window only warns.
        var resumed = RunMachine(steps: steps, confirmationRequired: false)
        #expect(resumed.next(after: .resume(done: ["preflight", "warm-copy", "scale-down"], dangling: nil)) == .observe("delete-claim"))
        #expect(resumed.next(after: .observed(goalHolds: false)) == .gate("delete-claim", remaining: .seconds(30)))
        if case .apply("delete-claim", windowWarning: .some) = resumed.next(after: closed) {} else { Issue.record("the window should only warn") }
        // Resumed after the warm copy only: the window still gates scale-down.
        var early = RunMachine(steps: steps, confirmationRequired: false)
        #expect(early.next(after: .resume(done: ["preflight", "warm-copy"], dangling: nil)) == .observe("scale-down"))
        #expect(early.next(after: .observed(goalHolds: false)) == .gate("scale-down", remaining: .seconds(60)))
        if case .stop = early.next(after: closed) {} else { Issue.record("the window should stop scale-down") }
    }

    /// The plan's finalCopy and verifyCopy timeouts (2h each by default) would make a short window
    /// refuse every migrate; once the warm copy measured its rate, the window holds estimates.
    @Test("final-copy's and verify-copy's estimates come from the warm copy's bytes and rate (at least 60 s, at most the plan's timeout), and the next window check holds them")
    func finalCopyEstimate() throws {
        let world = try World()
        let final = try world.step("final-copy")
        #expect(final.estimate(given: Facts()) == final.estimate)
        var facts = Facts()
        facts.set(MigrateFact.bytes(.warm), 600_000_000)
        facts.set(MigrateFact.rate(.warm), 2_000_000)
        #expect(final.estimate(given: facts) == .seconds(301))
        facts.set(MigrateFact.rate(.warm), 1_000_000_000)
        #expect(final.estimate(given: facts) == .seconds(60))
        facts.set(MigrateFact.rate(.warm), 1)
        #expect(final.estimate(given: facts) == final.estimate)
        facts.set(MigrateFact.rate(.warm), 2_000_000)
        // verify-copy reads both sides: twice the bytes at the warm rate.
        #expect(try world.step("verify-copy").estimate(given: facts) == .seconds(601))
        #expect(try world.step("verify-copy").estimate(given: Facts()) == world.step("verify-copy").estimate)
        #expect(try world.step("warm-copy").estimate(given: facts) == world.step("warm-copy").estimate)

        // The runner revises the machine's estimates as facts arrive: scale-down's gate holds it.
        var machine = RunMachine(steps: [
            .init(id: "warm-copy", mutates: true, estimate: .seconds(3600), needsWindow: false),
            .init(id: "scale-down", mutates: true, estimate: .seconds(30)),
            .init(id: "final-copy", mutates: true, estimate: .seconds(7200)),
        ], confirmationRequired: false)
        #expect(machine.next(after: .start) == .observe("warm-copy"))
        #expect(machine.next(after: .observed(goalHolds: true)) == .record("warm-copy"))
        machine.revise(estimate: final.estimate(given: facts), of: "final-copy")
        #expect(machine.next(after: .recorded) == .observe("scale-down"))
        #expect(machine.next(after: .observed(goalHolds: false)) == .gate("scale-down", remaining: .seconds(331)))
    }

    /// The staging claim's copy pod `suffix` (warm, final, verify) as the stub server shows it.
    static func copyPod(_ suffix: String, uid: String? = nil, status: JSON? = nil) -> (name: String, path: String, pod: JSON) {
        let name = "\(staging)-\(suffix)"
        var pod = StubObjects.pod(name, in: "devpod", claim: "home", replicaSet: "none")
        if let uid { pod["metadata"]?["uid"] = .string(uid) }
        if let status { pod["status"] = status }
        return (name, "/api/v1/namespaces/devpod/pods/\(name)", pod)
    }

    /// A copy pod whose container exited 0.
    static let succeeded: JSON = ["phase": "Succeeded", "containerStatuses": [["name": .string(CopyPod.container), "state": ["terminated": ["exitCode": 0]]]]]

    /// The whole log of a small copy that succeeded: `rsync --version`, then the copy's stats.
    static func finishedCopyLog() throws -> [String] {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/rsync")
        return try ["version-v3.2.7.txt", "small.txt"].flatMap {
            try String(contentsOf: fixtures.appendingPathComponent($0), encoding: .utf8).components(separatedBy: "\n")
        }
    }

    /// A resumed run whose copy step was applied goes straight to its wait: there, the pod that
    /// stopped the run (or none at all) is replaced before anything is followed.
    @Test("a resumed copy wait replaces the pod that was refused (DELETE with its uid, then a new POST) and one that is gone (POST), before following", arguments: [true, false])
    func resumedWaitReplacesRefusedPod(refusedPodExists: Bool) async throws {
        var facts = Self.stagingFacts
        facts.set(MigrateFact.refusedPod(.final), "uid-refused")
        facts.set(ClaimFact.workloads, [Workload(kind: .statefulSet, name: "ws")])
        let world = try World(facts: facts)
        let (_, podPath, refused) = Self.copyPod("final", uid: "uid-refused")
        if refusedPodExists {
            world.server.on(.get, podPath, .object(refused))
            world.server.on(.delete, podPath, .object(refused))
            world.server.on(.get, "/api/v1/namespaces/devpod/pods", query: ["fieldSelector": "metadata.name=\(Self.staging)-final"], .object(StubObjects.list([], resourceVersion: "9")))
        } else {
            world.server.absent(podPath)
        }
        world.server.on(.get, "/apis/apps/v1/namespaces/devpod/statefulsets/ws", .failure(500, reason: "InternalError", message: "stop here"))
        let step = try world.step("final-copy")
        await #expect(throws: (any Error).self) { try await step.await(world.context) }
        let sent = world.server.requests
        if refusedPodExists {
            #expect(sent.prefix(2) == ["GET \(podPath)", "DELETE \(podPath)"], "\(sent)")
            #expect(world.server.writes.first?.body?[path: "preconditions", "uid"]?.stringValue == "uid-refused")
        } else {
            #expect(sent.first == "GET \(podPath)", "\(sent)")
        }
        // Then the final copy's source is journaled (its read stops this test before the POST).
        #expect(sent.last == "GET /apis/apps/v1/namespaces/devpod/statefulsets/ws", "\(sent)")
    }

    /// A log follow that ends before the container's last lines (the kubelet or a proxy closing
    /// it; the fault matrix's `log-ended`, cut after `rsync --version`'s first line) was judged as
    /// the whole log: its missing capabilities made a good image "built without ACLs and xattrs"
    /// (copy.image-unsuitable), and its missing stats left the copy's facts out.
    @Test("a copy log cut short (the follow ended after rsync's version line) is read again whole from the finished container; the verdict and facts come from the whole log")
    func cutLogReadAgain() async throws {
        let world = try World(facts: Self.stagingFacts)
        let (name, podPath, pod) = Self.copyPod("final", status: Self.succeeded)
        let whole = try Self.finishedCopyLog()
        world.server.on(.get, podPath, .object(pod))
        world.server.on(.get, "/api/v1/namespaces/devpod/pods", query: ["fieldSelector": "metadata.name=\(name)"], .object(StubObjects.list([pod], resourceVersion: "9")))
        world.server.on(.get, podPath + "/log", query: ["follow": "true"], .text(Array(whole.prefix(1))))
        world.server.on(.get, podPath + "/log", .text(whole))
        // The pod's deletion after the verdict stops the test: the verdict is journaled by then.
        world.server.on(.delete, podPath, .failure(500, reason: "InternalError", message: "stop here"))
        let step = try world.step("final-copy")
        await #expect(throws: (any Error).self) { try await step.await(world.context) }
        let logs = world.server.sent.filter { $0.path.hasSuffix("/log") }
        #expect(logs.map { $0.query("follow") } == ["true", nil], "\(world.server.requests)")
        let facts = world.context.facts
        #expect(facts[MigrateFact.exitCode(.final)] == 0 && facts[MigrateFact.rsyncVersion] == "3.2.7")
        #expect(facts[MigrateFact.files(.final)] == 4, "\(world.server.requests)")
    }

    /// The real-node fault matrix stopped a run on a refused log connection: a followed log is
    /// a read, and one that fails is followed again.
    @Test("a copy log stream that fails (a 500 head) is followed again; the verdict comes from the log that follows")
    func failedLogFollowedAgain() async throws {
        let world = try World(facts: Self.stagingFacts)
        let (name, podPath, pod) = Self.copyPod("final", status: Self.succeeded)
        let whole = try Self.finishedCopyLog()
        world.server.on(.get, podPath, .object(pod))
        world.server.on(.get, "/api/v1/namespaces/devpod/pods", query: ["fieldSelector": "metadata.name=\(name)"], .object(StubObjects.list([pod], resourceVersion: "9")))
        world.server.on(.get, podPath + "/log", query: ["follow": "true"], .failure(500, reason: "InternalError", message: "injected"), .text(whole))
        world.server.on(.delete, podPath, .failure(500, reason: "InternalError", message: "stop here"))
        let step = try world.step("final-copy")
        await #expect(throws: (any Error).self) { try await step.await(world.context) }
        #expect(world.server.sent.filter { $0.path.hasSuffix("/log") }.count == 2, "\(world.server.requests)")
        #expect(world.context.facts[MigrateFact.exitCode(.final)] == 0 && world.context.facts[MigrateFact.files(.final)] == 4)
    }

    @Test("a copy pod the scheduler cannot place stops the step after the grace with copy.unschedulable and the scheduler's message, and is marked for replacement on resume")
    func unschedulablePod() async throws {
        let world = try World(facts: Self.stagingFacts)
        let message = "0/1 nodes are available: 1 node(s) didn't match node selector."
        let (name, podPath, stub) = Self.copyPod("verify", uid: "uid-pending", status: [
            "phase": "Pending", "conditions": [["type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": .string(message)]]])
        var pending = stub
        pending["metadata"]?["resourceVersion"] = "700"
        world.server.on(.get, podPath, .object(pending))
        world.server.on(.get, "/api/v1/namespaces/devpod/pods", query: ["watch": "1", "fieldSelector": "metadata.name=\(name)"], .events([(type: "MODIFIED", object: pending)]))
        var step = try #require(try world.step("verify-copy") as? CopyStep)
        step.unschedulableGrace = .milliseconds(300)
        let error = await #expect(throws: RepaveError.self) { try await step.await(world.context) }
        #expect(error?.errorCode == .copyUnschedulable)
        #expect(error?.message == "verify-copy: the copy pod \(name) has not been scheduled for 0s: \(message)", "\(error?.message ?? "")")
        #expect(world.context.facts[MigrateFact.refusedPod(.verify)] == "uid-pending")
        #expect(world.server.writes.isEmpty)

        #expect(CopyStep.unschedulable(pending) == message)
        var scheduled = pending
        scheduled["status"]?["conditions"] = [["type": "PodScheduled", "status": "True"]]
        #expect(CopyStep.unschedulable(scheduled) == nil)
    }

    @Test("a copy pod the kubelet refused (phase Failed before its container ran) stops the step with copy.failed and the pod's reason, not a silent pass")
    func rejectedPod() async throws {
        let world = try World(facts: Self.stagingFacts)
        let (name, podPath, rejected) = Self.copyPod("verify", uid: "uid-rejected",
                                                     status: ["phase": "Failed", "reason": "OutOfcpu", "message": "Pod Node didn't have enough resource: cpu"])
        world.server.on(.get, podPath, .object(rejected))
        let step = try world.step("verify-copy")
        let error = await #expect(throws: RepaveError.self) { try await step.await(world.context) }
        #expect(error?.errorCode == .copyFailed)
        #expect(error?.message == "verify-copy: the copy pod \(name) failed before its container ran: OutOfcpu: Pod Node didn't have enough resource: cpu")
        #expect(world.context.facts[MigrateFact.refusedPod(.verify)] == "uid-rejected")
        #expect(world.context.facts[MigrateFact.exitCode(.verify)] == nil)
    }

    @Test("a copy pod whose image cannot be pulled is named at once (its waiting reason), not at the copy's timeout")
    func cannotStart() {
        let pod: JSON = ["status": ["phase": "Pending", "containerStatuses": [["name": "rsync", "state": ["waiting": [
            "reason": "ErrImageNeverPull", "message": "Container image \"lab/nothing:1\" is not present with pull policy of Never"]]]]]]
        #expect(CopyStep.cannotStart(pod) == "ErrImageNeverPull: Container image \"lab/nothing:1\" is not present with pull policy of Never")
        let creating: JSON = ["status": ["phase": "Pending", "containerStatuses": [["name": "rsync", "state": ["waiting": ["reason": "ContainerCreating"]]]]]]
        #expect(CopyStep.cannotStart(creating) == nil)
    }
}
