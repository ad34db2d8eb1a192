import Blocking
import Foundation
import Journal
import Curl
import KubeAPI
@testable import RepaveCore
import RepaveTestSupport
import Testing

/// `repave audit` without a lab: the decoding of list pages, the finding rules, the reads it makes
/// (RecordingTransport), and the plans `--write-plans` writes.
@Suite("audit: decoding, rules, reads and plans")
struct AuditTests {
    static let longhorn = "/apis/longhorn.io/v1beta2"

    // MARK: fixtures

    static func replica(_ name: String, volume: String, node: String, healthy: Bool = true, failed: Bool = false, running: Bool = true) -> JSON {
        ["apiVersion": "longhorn.io/v1beta2", "kind": "Replica",
         "metadata": ["name": .string(name), "namespace": "longhorn-system", "uid": .string("uid-\(name)"), "labels": ["longhornvolume": .string(volume)]],
         "spec": ["volumeName": .string(volume), "nodeID": .string(node), "healthyAt": healthy ? "2026-12-01T00:00:00Z" : "",
                  "failedAt": failed ? "2026-12-02T00:00:00Z" : "", "dataPath": "/var/lib/longhorn/replicas/x"],
         "status": ["currentState": running ? "running" : "stopped", "ownerID": .string(node)]]
    }

    /// Three replicas on distinct nodes, all healthy and running.
    static func replicas(_ volume: String, count: Int = 3) -> [JSON] {
        (1...count).map { replica("\(volume)-r\($0)", volume: volume, node: "node-\($0)") }
    }

    static func volume(_ name: String, claim: (String, String), annotations: [String: String] = [:], phase: String = "Bound", policy: String = "Delete") -> JSON {
        var object = StubObjects.volume(name, uid: "uid-\(name)", reclaimPolicy: policy, claim: (claim.0, claim.1, "uid-claim-\(claim.1)"))
        object["metadata"]?["annotations"] = .object(annotations.mapValues { .string($0) })
        object["status"] = ["phase": .string(phase)]
        return object
    }

    /// A world of claims in `apps`: healthy (3 replicas, attached), single (1 replica, class of 1),
    /// degraded (attached, 2 of 3 healthy), faulted (attached), resting (3 replicas, detached,
    /// robustness unknown: no finding), waiting (Pending), and a PV kept by an earlier run.
    struct World {
        let scratch: ScratchDirectory
        let server = RecordingTransport()
        let client: KubeClient

        /// - Parameter forbidden: paths answered 403 instead.
        init(replicasServed: Bool = true, forbidden: Set<String> = []) throws {
            scratch = try ScratchDirectory()
            client = try KubeClient(connection: try scratch.unreachableConnection(), userAgent: "repave-test/audit",
                                    transport: server, retryPolicy: RetryPolicy(maxRetries: 0, maxConnectionRetries: 0))
            let server = ForbiddingRoutes(server: server, forbidden: forbidden)
            server.on(.get, AuditTests.longhorn, .object(["kind": "APIResourceList", "resources": .array(
                ["volumes", "nodes", "settings"].map { ["name": .string($0)] } + (replicasServed ? [["name": "replicas"]] : []))]))
            let claims = [
                // Re-created by run-3, whose old PV (kept before runs annotated PVs) is Released.
                StubObjects.claim("healthy", in: "apps", uid: "uid-claim-healthy", storageClass: "longhorn-3r", volume: "pvc-healthy",
                                  annotations: [RecreateRun.runAnnotation: "run-3"]),
                StubObjects.claim("single", in: "apps", uid: "uid-claim-single", storageClass: "longhorn-1r", volume: "pvc-single"),
                StubObjects.claim("degraded", in: "apps", uid: "uid-claim-degraded", storageClass: "longhorn-3r", volume: "pvc-degraded"),
                StubObjects.claim("faulted", in: "apps", uid: "uid-claim-faulted", storageClass: "longhorn-3r", volume: "pvc-faulted"),
                StubObjects.claim("resting", in: "apps", uid: "uid-claim-resting", storageClass: "longhorn-3r", volume: "pvc-resting"),
                StubObjects.claim("waiting", in: "apps", uid: "uid-claim-waiting", storageClass: "longhorn-3r", volume: nil, phase: "Pending"),
            ]
            server.on(.get, "/api/v1/namespaces/apps/persistentvolumeclaims", .object(StubObjects.list(claims)))
            let names = ["healthy", "single", "degraded", "faulted", "resting"]
            let volumes = names.map { AuditTests.volume("pvc-\($0)", claim: ("apps", $0)) } + [
                AuditTests.volume("pvc-kept", claim: ("apps", "old"), annotations: [RetainedVolume.runAnnotation: "run-1", RetainedVolume.claimAnnotation: "apps/old"],
                                  phase: "Released", policy: "Retain"),
                AuditTests.volume("pvc-old-healthy", claim: ("apps", "healthy"), phase: "Released", policy: "Retain")
                    .merging(["spec": ["claimRef": ["uid": "uid-of-the-claim-before"]]]),
                // Released, its claim not re-created by a run: not Repave's.
                AuditTests.volume("pvc-foreign", claim: ("apps", "gone"), phase: "Released", policy: "Retain"),
                // Kept by a run in another namespace: not in this audit's scope.
                AuditTests.volume("pvc-elsewhere", claim: ("other", "x"), annotations: [RetainedVolume.runAnnotation: "run-2", RetainedVolume.claimAnnotation: "other/x"],
                                  phase: "Released", policy: "Retain"),
            ]
            server.on(.get, "/api/v1/persistentvolumes", .object(StubObjects.list(volumes)))
            server.on(.get, "/apis/storage.k8s.io/v1/storageclasses", .object(StubObjects.list([
                StubObjects.storageClass("longhorn-3r", replicas: 3), StubObjects.storageClass("longhorn-1r", replicas: 1)])))
            server.on(.get, "\(AuditTests.longhorn)/namespaces/longhorn-system/volumes", .object(StubObjects.list([
                StubObjects.longhornVolume("pvc-healthy", uid: "lh-healthy", replicas: 3),
                StubObjects.longhornVolume("pvc-single", uid: "lh-single", replicas: 1),
                StubObjects.longhornVolume("pvc-degraded", uid: "lh-degraded", replicas: 3, robustness: "degraded"),
                StubObjects.longhornVolume("pvc-faulted", uid: "lh-faulted", replicas: 3, robustness: "faulted"),
                StubObjects.longhornVolume("pvc-resting", uid: "lh-resting", replicas: 3, state: "detached", robustness: "unknown"),
                StubObjects.longhornVolume("pvc-kept", uid: "lh-kept", replicas: 1, state: "detached", robustness: "unknown"),
            ])))
            let replicas = AuditTests.replicas("pvc-healthy") + AuditTests.replicas("pvc-single", count: 1)
                + AuditTests.replicas("pvc-degraded", count: 2) + [AuditTests.replica("pvc-degraded-r3", volume: "pvc-degraded", node: "node-3", healthy: false)]
                + AuditTests.replicas("pvc-faulted").map { var r = $0; r["spec"]?["failedAt"] = "2026-12-03T00:00:00Z"; return r }
                + AuditTests.replicas("pvc-resting").map { var r = $0; r["status"]?["currentState"] = "stopped"; return r }
            if replicasServed {
                // Two pages: the audit follows the continue token.
                server.on(.get, "\(AuditTests.longhorn)/namespaces/longhorn-system/replicas",
                          .object(["kind": "List", "metadata": ["continue": "page-2"], "items": .array(Array(replicas.prefix(5)))]))
                server.on(.get, "\(AuditTests.longhorn)/namespaces/longhorn-system/replicas", query: ["continue": "page-2"],
                          .object(StubObjects.list(Array(replicas.dropFirst(5)))))
            }
            server.on(.get, "\(AuditTests.longhorn)/namespaces/longhorn-system/settings/default-replica-count",
                      .object(["kind": "Setting", "metadata": ["name": "default-replica-count"], "value": "2"]))
        }

        /// A run directory under the state root whose journal has a header and then `ending`.
        func run(_ run: String, ending records: [EngineRecord]) async throws -> String {
            let directory = scratch.file("runs/\(run)-20261201T000000Z")
            try FileManager.default.createDirectory(atPath: scratch.file("runs"), withIntermediateDirectories: true)
            let header = RunHeader(strategy: "recreate", plan: run, planDigest: "d", cluster: .init(server: "s", kubeSystemUID: "u"), targets: [:], tlsVerified: true)
            let journal = try await offPool("test journal") { try Journal.create(directory: directory, run: run, header: header) }
            for record in records { try await record.append(to: journal, step: record == .finished ? nil : "delete-claim") }
            return directory
        }

        func audit(_ scope: Audit.Scope = .namespace("apps")) -> Audit {
            Audit(scope: scope, minReplicas: 3, stateRoot: scratch.file("runs"))
        }
    }

    // MARK: decoding

    @Test("list pages decode into the few fields read, follow continue tokens, and send limit on every page")
    func pagedDecoding() async throws {
        let world = try World()
        var pages = 0, seen: [String] = []
        try await world.client.forEachPage(.longhornReplicas, as: AuditRecord.Replica.self, in: "longhorn-system", pageSize: 5) { page in
            pages += 1
            seen += page.map(\.metadata.name)
        }
        #expect(pages == 2)
        #expect(seen.count == 13 && seen.first == "pvc-healthy-r1" && seen.last == "pvc-resting-r3")
        let sent = world.server.sent.filter { $0.path.hasSuffix("/replicas") }
        #expect(sent.map { $0.query("limit") } == ["5", "5"])
        #expect(sent.map { $0.query("continue") } == [nil, "page-2"])
        let replica = try JSONDecoder().decode(AuditRecord.Replica.self, from: AuditTests.replica("r", volume: "v", node: "n", healthy: true).encoded())
        #expect(replica.volume == "v" && replica.isHealthy(volumeAttached: true))
        let failed = try JSONDecoder().decode(AuditRecord.Replica.self, from: AuditTests.replica("r", volume: "v", node: "n", failed: true).encoded())
        #expect(!failed.isHealthy(volumeAttached: false))
        let stopped = try JSONDecoder().decode(AuditRecord.Replica.self, from: AuditTests.replica("r", volume: "v", node: "n", running: false).encoded())
        #expect(stopped.isHealthy(volumeAttached: false) && !stopped.isHealthy(volumeAttached: true))
    }

    @Test("a list page that does not decode is an error naming the resource, not an empty list")
    func undecodable() async throws {
        let scratch = try ScratchDirectory()
        let server = RecordingTransport()
        let client = try KubeClient(connection: try scratch.unreachableConnection(), userAgent: "t", transport: server,
                                    retryPolicy: RetryPolicy(maxRetries: 0, maxConnectionRetries: 0))
        server.on(.get, "/api/v1/persistentvolumes", .object(["kind": "List", "items": [["metadata": ["name": 7]]]]))
        let error = await #expect(throws: KubeAPIError.self) { try await client.list(.persistentVolumes, as: AuditRecord.Volume.self) }
        #expect("\(error.map { "\($0)" } ?? "")".contains("persistentvolumes"))
    }

    // MARK: rules

    @Test("finds exactly the 1-replica, degraded and faulted claims; lists the kept PV, the Pending claim and the low default")
    func findings() async throws {
        let world = try World()
        let report = try await world.audit().run(world.client)
        #expect(report.findings.map(\.claim) == ["degraded", "faulted", "single"])
        let kinds = Dictionary(uniqueKeysWithValues: report.findings.map { ($0.claim, Set($0.problems.map(\.kind))) })
        #expect(kinds["single"] == [.desiredReplicas, .healthyReplicas, .classReplicas])
        #expect(kinds["degraded"] == [.robustness, .healthyReplicas])
        #expect(kinds["faulted"] == [.robustness, .healthyReplicas])
        #expect(report.findings.first { $0.claim == "degraded" }?.healthyReplicas == 2)
        #expect(report.unboundClaims == [.init(namespace: "apps", claim: "waiting", phase: "Pending")])
        #expect(report.retainedVolumes.map(\.volume) == ["pvc-kept", "pvc-old-healthy"])
        #expect(report.retainedVolumes.map(\.run) == ["run-1", "run-3"] && report.retainedVolumes.map(\.claim) == ["apps/old", "apps/healthy"])
        let kept = try #require(report.retainedVolumes.first)
        #expect(kept.runDirectory == nil && kept.longhornVolumeUID == "lh-kept")
        // No run directory here (issue 15): the uid-guarded deletes, with a note to check first that the run finished.
        // (pvc-old-healthy's Longhorn volume is gone: only its PV's delete.)
        #expect(report.retainedVolumes.map { $0.runState } == [.notFound, .notFound])
        #expect(report.retainedVolumes.map { $0.cleanup.count } == [2, 1] && report.retainedVolumes.allSatisfy { $0.cleanup.allSatisfy { $0.contains("\"uid\":") } },
                "\(report.retainedVolumes)")
        #expect(kept.note?.hasPrefix("run directory not found: make sure its run finished") == true, "\(kept.note ?? "")")
        #expect(report.settings.map(\.name) == ["default-replica-count"])
        #expect(report.claims == 6 && report.notAssessed.isEmpty && report.exitStatus == .refused)
        #expect(world.server.writes.isEmpty, "the audit only reads: \(world.server.writes)")
    }

    @Test("a bar of 1 finds only the unhealthy attached volumes; a kept volume whose finished run here names it gets 'repave finalize RUN', one its run does not name the uid-guarded deletes")
    func lowBarAndFinalize() async throws {
        let world = try World()
        let directory = try await world.run("run-1", ending: [.fact(key: ClaimFact.volume.key, value: "pvc-kept"), .stepDone, .finished])
        // A directory that is not a run is passed over.
        try FileManager.default.createDirectory(atPath: world.scratch.file("runs/notes"), withIntermediateDirectories: true)
        var audit = world.audit()
        audit.minReplicas = 1
        let report = try await audit.run(world.client)
        #expect(report.findings.map(\.claim) == ["degraded", "faulted"])
        #expect(report.settings.isEmpty)
        let kept = try #require(report.retainedVolumes.first)
        #expect(kept.runDirectory == directory)
        #expect(kept.cleanup == ["repave finalize \(directory)"], "\(kept.cleanup)")
        #expect(kept.runState == .finished && kept.note == nil)
        #expect(report.textLines.contains("  remove: repave finalize \(directory)"), "\(report.textLines)")
        #expect(report.retainedVolumes.last?.runDirectory == nil && report.retainedVolumes.last?.runState == .notFound)
        #expect(report.retainedVolumes.last?.cleanup.count == 1, "its PV's uid-guarded delete, its note saying to check the run first")
    }

    @Test("a kept volume whose finished run here does not name it (the journal kept another volume) gets the uid-guarded deletes")
    func finishedRunNamingAnotherVolume() async throws {
        let world = try World()
        _ = try await world.run("run-1", ending: [.fact(key: ClaimFact.volume.key, value: "pvc-other"), .stepDone, .finished])
        let kept = try #require(try await world.audit().run(world.client).retainedVolumes.first)
        #expect(kept.runState == .finished && kept.cleanup.count == 2 && kept.cleanup.allSatisfy { !$0.contains("finalize") }, "\(kept.cleanup)")
        #expect(kept.cleanup[0].contains("\"uid\":\"uid-pvc-kept\"") && kept.cleanup[0].contains("--raw /api/v1/persistentvolumes/pvc-kept"))
        #expect(kept.cleanup[1].contains("\"uid\":\"lh-kept\"") && kept.cleanup[1].contains("/namespaces/longhorn-system/volumes/pvc-kept"))
    }

    @Test("a kept volume whose run is not finished here, or was aborted, gets no delete command: resume or abort it first")
    func unfinishedRunKeepsItsVolume() async throws {
        let world = try World()
        // run-1 stopped after delete-claim: its old PV, Released, is the only copy of the data.
        let stopped = try await world.run("run-1", ending: [.stepDone, .stopped(reason: "the new claim did not bind")])
        let aborted = try await world.run("run-3", ending: [.aborted(undone: "nothing")])
        let report = try await world.audit().run(world.client)
        #expect(report.retainedVolumes.map(\.volume) == ["pvc-kept", "pvc-old-healthy"])
        let kept = report.retainedVolumes[0], old = report.retainedVolumes[1]
        #expect(kept.runDirectory == stopped && kept.runState == .notFinished && kept.cleanup.isEmpty, "\(kept)")
        #expect(kept.note == "run not finished here (\(stopped)): resume or abort it first; until then this volume may hold the only copy of the data")
        #expect(old.runDirectory == aborted && old.runState == .aborted && old.cleanup.isEmpty, "\(old)")
        let text = report.textLines
        #expect(!text.contains { $0.contains("remove:") || $0.contains("kubectl delete") }, "\(text)")
        #expect(text.contains("  keep: \(kept.note ?? "")"), "\(text)")
    }

    @Test("without replicas.longhorn.io the healthy counts are not assessed, and that alone makes exit 2")
    func replicasNotServed() async throws {
        let world = try World(replicasServed: false)
        let report = try await world.audit().run(world.client)
        #expect(report.notAssessed.count == 1 && report.notAssessed[0].contains("replicas.longhorn.io"))
        #expect(report.findings.allSatisfy { $0.healthyReplicas == nil && !$0.problems.contains { $0.kind == .healthyReplicas } })
    }

    @Test("no Longhorn: 'not assessed: Longhorn not found', exit 2, nothing else read")
    func noLonghorn() async throws {
        let scratch = try ScratchDirectory()
        let server = RecordingTransport()
        let client = try KubeClient(connection: try scratch.unreachableConnection(), userAgent: "t", transport: server,
                                    retryPolicy: RetryPolicy(maxRetries: 0, maxConnectionRetries: 0))
        server.on(.get, AuditTests.longhorn, .failure(404, reason: "NotFound", message: "the server could not find the requested resource"))
        let report = try await Audit(scope: .all).run(client)
        #expect(report.textLines.first == "not assessed: Longhorn not found: the API server serves no volumes.longhorn.io (is Longhorn installed?)")
        #expect(report.exitStatus == .refused && server.sent.count == 1)
    }

    @Test("-A: a forbidden cluster-wide list of claims falls back to each namespace; the forbidden ones are listed, exit 2")
    func unreadableNamespaces() async throws {
        let world = try World()
        world.server.on(.get, "/api/v1/persistentvolumeclaims", .failure(403, reason: "Forbidden", message: "forbidden"))
        world.server.on(.get, "/api/v1/namespaces", .object(StubObjects.list([["metadata": ["name": "apps"]], ["metadata": ["name": "secret"]]])))
        world.server.on(.get, "/api/v1/namespaces/secret/persistentvolumeclaims", .failure(403, reason: "Forbidden", message: "forbidden"))
        let report = try await world.audit(.all).run(world.client)
        #expect(report.unreadableNamespaces.map(\.namespace) == ["secret"])
        #expect(report.findings.count == 3)
        // Every kept volume is in scope under -A.
        #expect(report.retainedVolumes.map(\.volume) == ["pvc-elsewhere", "pvc-kept", "pvc-old-healthy"])
    }

    @Test("a forbidden read stops the audit naming every missing permission (exit 2)")
    func forbiddenReads() async throws {
        let world = try World(forbidden: ["/api/v1/persistentvolumes", "\(AuditTests.longhorn)/namespaces/longhorn-system/volumes"])
        let error = await #expect(throws: RepaveError.self) { try await world.audit().run(world.client) }
        #expect(error?.errorCode == .permissions && error?.exitStatus == .refused)
        #expect(error?.causes == ["list persistentvolumes (cluster-wide)", "list volumes.longhorn.io in longhorn-system"])
    }

    @Test("a PV naming a Longhorn volume that does not exist is a finding; a PV of another driver is none")
    func missingVolume() throws {
        func decode<T: Decodable>(_ type: T.Type, _ object: JSON) throws -> T { try JSONDecoder().decode(type, from: object.encoded()) }
        var inventory = AuditInventory()
        inventory.claims = [try decode(AuditRecord.Claim.self, StubObjects.claim("orphan", in: "apps", uid: "u1", storageClass: "x", volume: "pvc-orphan")),
                            try decode(AuditRecord.Claim.self, StubObjects.claim("nfs", in: "apps", uid: "u2", storageClass: "x", volume: "pvc-nfs"))]
        var nfs = AuditTests.volume("pvc-nfs", claim: ("apps", "nfs"))
        nfs["spec"]?["csi"] = ["driver": "nfs.csi.k8s.io", "volumeHandle": "share"]
        for volume in [AuditTests.volume("pvc-orphan", claim: ("apps", "orphan")), nfs] {
            let record = try decode(AuditRecord.Volume.self, volume)
            inventory.volumes[record.name] = record
        }
        inventory.replicas = [:]
        var report = AuditReport(namespace: "apps", minReplicas: 3, longhornNamespace: "longhorn-system")
        Audit.assess(inventory, into: &report)
        #expect(report.findings.map(\.claim) == ["orphan"])
        #expect(report.findings.first?.problems.map(\.kind) == [.longhornVolumeMissing])
        #expect(report.claims == 2 && report.exitStatus == .refused)
    }

    @Test("a class numberOfReplicas or a default-replica-count that is not a whole number is listed as not assessed (exit 2); the per-engine form is read")
    func unreadableCounts() throws {
        func decode<T: Decodable>(_ type: T.Type, _ object: JSON) throws -> T { try JSONDecoder().decode(type, from: object.encoded()) }
        var inventory = AuditInventory()
        inventory.claims = [try decode(AuditRecord.Claim.self, StubObjects.claim("a", in: "apps", uid: "u1", storageClass: "odd", volume: nil)),
                            try decode(AuditRecord.Claim.self, StubObjects.claim("b", in: "apps", uid: "u2", storageClass: "odd", volume: nil)),
                            try decode(AuditRecord.Claim.self, StubObjects.claim("c", in: "apps", uid: "u3", storageClass: "longhorn-1r", volume: nil))]
        var odd = StubObjects.storageClass("odd", replicas: 3)
        odd["parameters"]?["numberOfReplicas"] = "three"
        for object in [odd, StubObjects.storageClass("longhorn-1r", replicas: 1)] {
            let record = try decode(AuditRecord.StorageClass.self, object)
            inventory.classes[record.metadata.name] = record
        }
        inventory.defaultReplicaCount = "many"
        inventory.replicas = [:]
        var report = AuditReport(namespace: "apps", minReplicas: 3, longhornNamespace: "longhorn-system")
        Audit.assess(inventory, into: &report)
        #expect(report.notAssessed == [
            "class odd: numberOfReplicas \"three\" is not a whole number, so its claims' class-replicas rule was not applied",
            "Longhorn setting default-replica-count: \"many\" is not a whole number (nor one per data engine), so it was not compared with 3",
        ], "\(report.notAssessed)")
        #expect(report.findings.map(\.claim) == ["c"] && report.settings.isEmpty && report.exitStatus == .refused)
        // Longhorn 1.8's form, one count per data engine: the lowest is compared.
        for (value, note) in [("{\"v1\":\"2\",\"v2\":\"3\"}", true), ("{\"v1\":\"3\",\"v2\":\"3\"}", false), ("2", true)] {
            inventory.defaultReplicaCount = value
            var engines = AuditReport(namespace: "apps", minReplicas: 3, longhornNamespace: "longhorn-system")
            Audit.assess(inventory, into: &engines)
            #expect(!engines.notAssessed.contains { $0.contains("default-replica-count") }, "\(value): \(engines.notAssessed)")
            #expect(engines.settings.map(\.name) == (note ? ["default-replica-count"] : []), "\(value)")
        }
        #expect(AuditRecord.Setting.replicaCount("{\"v1\":\"x\"}") == nil && AuditRecord.Setting.replicaCount("{}") == nil)
    }

    // MARK: plans

    func findingsWithWorkloads(_ world: World) async throws -> AuditReport {
        world.server.on(.get, "/api/v1/namespaces/apps/pods", .object(StubObjects.list([
            StubObjects.pod("ws-1", in: "apps", claim: "single", replicaSet: "ws-rs"),
            StubObjects.pod("db-0", in: "apps", claim: "faulted", replicaSet: "ignored")
                .merging(["metadata": ["ownerReferences": [["kind": "StatefulSet", "name": "db", "uid": "u", "controller": true]]]]),
        ])))
        world.server.on(.get, "/apis/apps/v1/namespaces/apps/replicasets", .object(StubObjects.list([
            StubObjects.replicaSet("ws-rs", in: "apps", deployment: "ws")])))
        let audit = world.audit()
        var report = try await audit.run(world.client)
        try await audit.discoverWorkloads(world.client, into: &report)
        return report
    }

    @Test("recreate plans: one per finding, with the workloads found, passing the plan parser, naming <ns>-<claim>-git-report.json")
    func recreatePlans() async throws {
        let world = try World()
        let report = try await findingsWithWorkloads(world)
        #expect(report.findings.map { $0.workloads ?? ["?"] } == [[], ["StatefulSet/db"], ["Deployment/ws"]])
        let writer = AuditPlanWriter(directory: world.scratch.file("plans"), strategy: .recreate, storageClass: "longhorn-3r", copyImage: nil,
                                     minReplicas: 3, longhornNamespace: "longhorn-system", existingClass: nil)
        let files = writer.files(for: report.findings)
        #expect(files.map { ($0.path as NSString).lastPathComponent } == ["apps-degraded.yaml", "apps-faulted.yaml", "apps-single.yaml"])
        let written = try await writer.write(files)
        #expect(written == files.map(\.path))
        for file in files {
            let plan = try RecreatePlan.load(contentsOf: file.path)
            #expect(plan.gitPreflight?.report == "\(plan.target.namespace)-\(plan.target.claim)-git-report.json")
            #expect(plan.storageClass.name == "longhorn-3r" && plan.storageClass.parameters == ["numberOfReplicas": "3"])
            #expect(plan.oldVolume == .retainUntilVerified)
        }
        let single = try RecreatePlan.load(contentsOf: files[2].path)
        #expect(single.target.workloads == [.init(kind: .deployment, name: "ws")] && single.name == "apps-single")
    }

    @Test("a second --write-plans to the same directory refuses, naming the files, and writes nothing")
    func existingFilesRefused() async throws {
        let world = try World()
        let report = try await findingsWithWorkloads(world)
        let directory = world.scratch.file("plans")
        let writer = AuditPlanWriter(directory: directory, strategy: .replicas, storageClass: nil, copyImage: nil,
                                     minReplicas: 3, longhornNamespace: "longhorn-system", existingClass: nil)
        let files = writer.files(for: report.findings)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try "mine\n".write(toFile: files[1].path, atomically: true, encoding: .utf8)
        let error = await #expect(throws: RepaveError.self) { try await writer.write(files) }
        #expect(error?.errorCode == .auditPlanExists && error?.exitStatus == .refused)
        #expect(error?.causes == ["\(files[1].path) exists"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["apps-faulted.yaml"])
        #expect(try String(contentsOfFile: files[1].path, encoding: .utf8) == "mine\n")
    }

    @Test("migrate and replicas plans name their strategy's keys only, and pass their strategy's parser")
    func otherStrategies() async throws {
        let world = try World()
        let report = try await findingsWithWorkloads(world)
        for (strategy, own) in [(PlanStrategy.migrate, ["copy", "storageClass"]), (.replicas, ["replicas", "whenDetached"])] {
            let writer = AuditPlanWriter(directory: world.scratch.file("plans-\(strategy)"), strategy: strategy,
                                         storageClass: strategy == .migrate ? "longhorn-3r" : nil, copyImage: strategy == .migrate ? "lab/mover:1" : nil,
                                         minReplicas: 3, longhornNamespace: "longhorn-system", existingClass: nil)
            for file in writer.files(for: report.findings) {
                let root = try PlanReader.parse(Data(file.text.utf8), file: file.path)
                #expect(try PlanStrategy.read(root).0 == strategy)
                // Only the strategy's own keys and the common ones (any other is an error here).
                let keys = try root.mapping(PlanStrategy.keys(of: strategy)).keys
                #expect(own.allSatisfy(keys.contains), "\(keys)")
                // Each passes its own strategy's parser (migrate's, though `run` refuses migrate
                // in this release, checks every key of it).
                switch strategy {
                case .migrate: _ = try MigratePlan.parse(Data(file.text.utf8), file: file.path)
                default: _ = try ReplicasPlan.parse(Data(file.text.utf8), file: file.path)
                }
            }
        }
    }

    @Test("the migrate plans audit writes parse as migrate plans (as 'repave plan --offline' reads them), and are written; so are replicas plans")
    func migratePlansWritten() async throws {
        let world = try World()
        let report = try await findingsWithWorkloads(world)
        let directory = world.scratch.file("plans-migrate")
        let writer = AuditPlanWriter(directory: directory, strategy: .migrate, storageClass: "longhorn-3r", copyImage: "lab/mover:1",
                                     minReplicas: 3, longhornNamespace: "longhorn-system", existingClass: nil)
        let files = writer.files(for: report.findings)
        let written = try await writer.write(files)
        #expect(written.count == 3)
        for file in files {
            let strategy = try PlanFile.load(contentsOf: file.path)
            #expect(strategy.kind == "migrate", "\(file.path)")
        }
        let replicas = AuditPlanWriter(directory: world.scratch.file("plans-replicas"), strategy: .replicas, storageClass: nil, copyImage: nil,
                                       minReplicas: 3, longhornNamespace: "longhorn-system", existingClass: nil)
        #expect(try await replicas.write(replicas.files(for: report.findings)).count == 3)
    }

    @Test("a namespace of 63 and a claim of 253 characters make a file name within NAME_MAX, shortened with a hash; plans are written")
    func longNames() async throws {
        let scratch = try ScratchDirectory()
        let writer = AuditPlanWriter(directory: scratch.file("plans"), strategy: .replicas, storageClass: nil, copyImage: nil,
                                     minReplicas: 3, longhornNamespace: "longhorn-system", existingClass: nil)
        // A claim is a DNS subdomain: 253 characters, in labels of at most 63.
        let namespace = String(repeating: "n", count: 63), claim = Array(repeating: String(repeating: "c", count: 62), count: 4).joined(separator: ".") + "."
        let findings = ["a", "b"].map { AuditReport.Finding(namespace: namespace, claim: claim + $0, problems: [.init(kind: .desiredReplicas, detail: "x")]) }
            + [AuditReport.Finding(namespace: "apps", claim: "short", problems: [.init(kind: .desiredReplicas, detail: "x")])]
        let files = writer.files(for: findings)
        let names = files.map { ($0.path as NSString).lastPathComponent }
        #expect(names.allSatisfy { $0.utf8.count <= 255 }, "\(names.map(\.utf8.count))")
        // Two claims that differ only past the cut still get two files.
        #expect(Set(names).count == 3 && names[0].hasPrefix(namespace + "-ccc") && names[2] == "apps-short.yaml", "\(names)")
        #expect(try await writer.write(files) == files.map(\.path))
        let plan = try ReplicasPlan.parse(Data(files[1].text.utf8), file: files[1].path)
        #expect(plan.target.claim == claim + "b" && plan.name.count <= 63)
    }

    @Test("an existing target class is written as the cluster has it, so ensure finds it matching")
    func existingClass() throws {
        let existing = try JSONDecoder().decode(AuditRecord.StorageClass.self, from: StubObjects.storageClass("longhorn-3r", replicas: 3).encoded())
        let writer = AuditPlanWriter(directory: "/nowhere", strategy: .recreate, storageClass: "longhorn-3r", copyImage: nil,
                                     minReplicas: 3, longhornNamespace: "longhorn-system", existingClass: existing)
        let finding = AuditReport.Finding(namespace: "apps", claim: "data.v1." + String(repeating: "c", count: 60), problems: [.init(kind: .desiredReplicas, detail: "x")])
        let file = try #require(writer.files(for: [finding]).first)
        let plan = try RecreatePlan.parse(Data(file.text.utf8), file: file.path)
        #expect(plan.storageClass.allowVolumeExpansion && plan.storageClass.reclaimPolicy == "Delete" && plan.storageClass.volumeBindingMode == "Immediate")
        #expect(plan.name.count <= 63 && !plan.name.contains("."))
    }
}

/// Routes a fixture sets up, except those a test forbids: those answer 403 as RBAC would.
struct ForbiddingRoutes {
    let server: RecordingTransport
    let forbidden: Set<String>

    func on(_ method: HTTPMethod, _ path: String, query: [String: String] = [:], _ reply: RecordingTransport.Reply) {
        server.on(method, path, query: query, forbidden.contains(path) ? .failure(403, reason: "Forbidden", message: "\(path) is forbidden") : reply)
    }
}

extension JSON {
    /// A deep merge, for fixtures: objects merge, anything else is replaced.
    func merging(_ other: JSON) -> JSON {
        guard case .object(var mine) = self, case .object(let theirs) = other else { return other }
        for (key, value) in theirs { mine[key] = mine[key].map { $0.merging(value) } ?? value }
        return .object(mine)
    }
}
