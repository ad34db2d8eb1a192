import Foundation
import Journal
import KubeAPI
import RepaveTestSupport
import Testing

@testable import RepaveCore

/// Journals written before this release: `Fixtures/journal-v1` is a run made by the release
/// before strategies (8963942: `repave run plans/devpod-home.yaml` on the lab, stopped by
/// `REPAVE_FAILPOINTS=after-step_done:scale-down`), kept as it was written.
@Suite("journal schema 1 and 2", .blockingCallsAllowed)
struct JournalSchemaTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/journal-v1").path
    /// A schema-2 header of a recreate run, as the tests here write it.
    static let header = RunHeader(strategy: "recreate", plan: "p", planDigest: "d", cluster: .init(server: "s", kubeSystemUID: "u"), targets: [:], tlsVerified: true)

    @Test("a schema-1 run is read whole: every record decodes, steps done, facts, the plan it stored as recreate")
    func schemaOne() throws {
        let records = try Journal.read(directory: Self.fixture).records
        let history = try RunHistory(records)
        #expect(history.header.schema == 1)
        #expect(history.header.strategy == nil)
        #expect(history.entries.count == records.count - 1, "every record but the header is an entry")
        #expect(history.state.done == ["preflight", "save-manifests", "ensure-storage-class", "retain-old-volume", "scale-down"])
        #expect(history.state.changed)
        #expect(history.state.dangling == nil)
        #expect(history.facts[ClaimFact.claimUID] == history.header.targets["persistentvolumeclaim/devpod/coder-jeda-codespace-home"])
        #expect(history.facts[ClaimFact.replicas(Workload(kind: .deployment, name: "coder-jeda-codespace"))] == 1)
        #expect(!history.crossedPointOfNoReturn)

        let stored = try Data(contentsOf: URL(fileURLWithPath: Self.fixture + "/plan.json"))
        let strategy = try #require(try PlanFile.stored(stored) as? RecreateStrategy)
        #expect(strategy.plan.target.claim == "coder-jeda-codespace-home")
        // The digest it recorded is that of its own spelling (kind: RecreatePlan); today's
        // normalised plan hashes differently, and resume compares against the stored bytes.
        #expect(strategy.planDigest != history.header.planDigest)
        #expect(MaintenanceSession.planDigest(recorded: history.header, strategy: strategy, storedPlan: stored) == history.header.planDigest)
        // A schema-2 header gets no such allowance: its plan is compared as it is now.
        var newer = history.header
        newer.schema = 2
        #expect(MaintenanceSession.planDigest(recorded: newer, strategy: strategy, storedPlan: stored) == strategy.planDigest)
        // An edited plan.json does not match the digest the run recorded.
        var edited = stored
        edited.append(contentsOf: Array(" ".utf8))
        #expect(MaintenanceSession.planDigest(recorded: history.header, strategy: strategy, storedPlan: edited) != history.header.planDigest)
    }

    @Test("schema 2: the header names the strategy, and each record kind round-trips through its payload")
    func schemaTwo() async throws {
        let scratch = try ScratchDirectory()
        let header = Self.header
        #expect(header.schema == 2)
        let journal = try Journal.create(directory: scratch.file("run"), run: "r", header: header)
        let written: [(EngineRecord, String?)] = [
            (.intent(.init(verb: "PATCH", path: "/p", precondition: "1", attempt: 1, dryRun: false)), "a"), (.outcome(.init(result: "ok", detail: nil)), "a"),
            (.fact(key: "k", value: "v"), "a"), (.applied, "a"), (.stepDone, "a"), (.resolved(applied: true), "b"), (.confirmed(by: "--yes"), nil),
            (.pointOfNoReturn(step: "b"), "b"), (.lock(.init(lease: "ns/l", holder: "r", intent: "acquire", result: nil)), nil),
            (.note(["note": "hello"]), "b"), (.override(accepted: "x"), nil), (.stopped(reason: "why"), nil), (.aborted(undone: "u"), nil), (.finished, nil), (.finalized(deleted: "pv"), nil),
            (.rolledBack(restored: "pv old", left: "pv new"), nil),
        ]
        for (record, step) in written { try await record.append(to: journal, step: step) }
        let history = try RunHistory(try Journal.read(directory: scratch.file("run")).records)
        #expect(history.header.strategy == "recreate")
        #expect(history.entries.map(\.event) == written.map(\.0))
        #expect(history.entries.first { $0.event.kind == .note }?.record.critical == false)
        let othersCritical = history.entries.filter { $0.event.kind != .note }.allSatisfy { $0.record.critical }
        #expect(othersCritical)
    }

    @Test("a critical record of an unknown kind refuses the journal, naming it; an unknown note-like one is skipped")
    func unknownKinds() async throws {
        let scratch = try ScratchDirectory()
        let header = Self.header
        let journal = try Journal.create(directory: scratch.file("run"), run: "r", header: header)
        try journal.append(kind: "telemetry", critical: false, data: ["x": "y"])
        #expect(try RunHistory(journal.records).entries.isEmpty)
        try journal.append(kind: "copy_progress", data: ["bytes": "1"])
        #expect(throws: RunHistoryError.unknownKind("copy_progress", sequence: 3)) { try RunHistory(journal.records) }
    }

    @Test("status's allowed commands follow the journal: resume and abort before the point of no return, resume past it, rollback and finalize once finished with a kept volume, finalize alone once it began and until it is done")
    func allowedCommands() async throws {
        let scratch = try ScratchDirectory()
        var plan = try RecreatePlan.parse(Data(PlanTests.minimal.utf8), file: "p.yaml")
        let header = Self.header
        let journal = try Journal.create(directory: scratch.file("run"), run: "r", header: header)
        func allowed(_ plan: RecreatePlan) throws -> [String] {
            let commands = MaintenanceSession.allowedCommands(try RunHistory(journal.records), strategy: RecreateStrategy(plan: plan), run: "r")
            return commands.filter(\.allowed).map(\.command)
        }
        func whyNot(_ command: String) throws -> String? {
            MaintenanceSession.allowedCommands(try RunHistory(journal.records), strategy: RecreateStrategy(plan: plan), run: "r").first { $0.command == command && !$0.allowed }?.why
        }
        try await EngineRecord.fact(key: ClaimFact.volume.key, value: "pvc-old").append(to: journal, step: "save-manifests")
        try await EngineRecord.fact(key: ClaimFact.volumeUID.key, value: "uid-old").append(to: journal, step: "save-manifests")
        #expect(try allowed(plan) == ["resume", "abort"])
        #expect(try whyNot("rollback") == "before the point of no return: abort puts everything back")
        try await EngineRecord.pointOfNoReturn(step: "delete-claim").append(to: journal, step: "delete-claim")
        #expect(try allowed(plan) == ["resume"])
        #expect(try whyNot("rollback") == "the run stopped inside the swap: resume it first")
        try await EngineRecord.stepDone.append(to: journal, step: "await-bound")
        #expect(try allowed(plan) == ["resume", "rollback"], "the claim is Bound to the new volume: rollback may take it back before the run ends")
        try await EngineRecord.finished.append(to: journal, step: nil)
        #expect(try allowed(plan) == ["rollback", "finalize"])
        plan.oldVolume = .delete
        #expect(try allowed(plan) == [], "the run deleted its old volume itself")
        #expect(try whyNot("rollback") == "the run kept no old volume to go back to")
        plan.oldVolume = .retainUntilVerified
        try await EngineRecord.confirmed(by: "--yes").append(to: journal, step: MaintenanceSession.finalizeStep)
        #expect(try RunHistory(journal.records).finalizing)
        #expect(try allowed(plan) == ["finalize"], "finalize began: only finalize carries it on")
        #expect(try whyNot("rollback") == "finalize has begun: the old volume is gone or going")
        try await EngineRecord.finalized(deleted: "pv").append(to: journal, step: nil)
        #expect(try allowed(plan) == [])
        #expect(try RunHistory(journal.records).ending?.kind == .finalized)
    }

    @Test("after a rollback began, only rollback carries it on; once rolled back, finalize names the new volume rollback left, and resume is refused")
    func allowedAfterRollback() async throws {
        let scratch = try ScratchDirectory()
        let plan = try RecreatePlan.parse(Data(PlanTests.minimal.utf8), file: "p.yaml")
        let header = Self.header
        let journal = try Journal.create(directory: scratch.file("run"), run: "r", header: header)
        func commands() throws -> [(command: String, allowed: Bool, why: String)] {
            MaintenanceSession.allowedCommands(try RunHistory(journal.records), strategy: RecreateStrategy(plan: plan), run: "r")
        }
        for (key, value) in [(ClaimFact.volume.key, "pvc-old"), (ClaimFact.volumeUID.key, "uid-old"), (RecreateFact.newClaimUID.key, "uid-claim-2")] {
            try await EngineRecord.fact(key: key, value: value).append(to: journal, step: "save-manifests")
        }
        try await EngineRecord.pointOfNoReturn(step: "delete-claim").append(to: journal, step: "delete-claim")
        try await EngineRecord.finished.append(to: journal, step: nil)
        try await EngineRecord.confirmed(by: "--yes").append(to: journal, step: MaintenanceSession.rollbackStep)
        for (key, value) in [(RollbackFact.claimUID.key, "uid-claim-2"), (RollbackFact.volume.key, "pvc-new"), (RollbackFact.volumeUID.key, "uid-new")] {
            try await EngineRecord.fact(key: key, value: value).append(to: journal, step: MaintenanceSession.rollbackStep)
        }
        #expect(try commands().filter(\.allowed).map(\.command) == ["rollback"])
        #expect(try commands().first { $0.command == "finalize" }?.why == "rollback has begun: finish it first")
        #expect(throws: RepaveError.self) { try MaintenanceSession.resumable(journal, directory: "run") }
        try await EngineRecord.rolledBack(restored: "persistentvolume pvc-old", left: "persistentvolume pvc-new").append(to: journal, step: nil)
        let history = try RunHistory(journal.records)
        #expect(history.ending?.kind == .rolledBack && history.rolledBack?.left == "persistentvolume pvc-new")
        #expect(try commands().filter(\.allowed).map(\.command) == ["finalize"])
        #expect(try commands().first { $0.command == "finalize" }?.why == "deletes the new volume rollback left, pvc-new")
        #expect(try commands().first { $0.command == "rollback" }?.why == "done: the claim is back on its old volume")
        let refused = #expect(throws: RepaveError.self) { try MaintenanceSession.resumable(journal, directory: "run") }
        #expect(refused?.errorCode == .resumeRolledBack)
        // The record round-trips through the journal file.
        let reread = try RunHistory(try Journal.read(directory: scratch.file("run")).records)
        #expect(reread.rolledBack?.restored == "persistentvolume pvc-old")
    }

    @Test("rollback's view of the facts: claim.uid and pv.* name the new claim and volume, the old volume is the one to rebind to, the run's new claim is forgotten; what rollback learns is journaled under rollback.")
    func rollbackView() {
        let run = Facts([ClaimFact.claimUID.key: "uid-claim-1", ClaimFact.volume.key: "pvc-old", ClaimFact.volumeUID.key: "uid-old", ClaimFact.longhornUID.key: "lh-old",
                         RecreateFact.newClaimUID.key: "uid-claim-2", "replicas.Deployment/ws": "2",
                         RollbackFact.claimUID.key: "uid-claim-2", RollbackFact.volume.key: "pvc-new", RollbackFact.volumeUID.key: "uid-new"])
        let view = RollbackFact.view(of: run)
        #expect(view[ClaimFact.claimUID] == "uid-claim-2" && view[ClaimFact.volume] == "pvc-new" && view[ClaimFact.volumeUID] == "uid-new")
        #expect(view[RollbackFact.previousVolume.name] == "pvc-old" && view[RollbackFact.previousVolume.uid] == "uid-old")
        #expect(view[RecreateFact.newClaimUID] == nil && view[ClaimFact.longhornUID] == nil)
        let left = RollbackFact.leftVolume(Facts(run.values.merging([RollbackFact.longhornName.key: "lh-new", RollbackFact.longhornUID.key: "uid-lh-new"]) { $1 }),
                                           run: "r", longhornNamespace: "longhorn-system")
        #expect(left == KeptVolume(name: "pvc-new", uid: "uid-new", longhornName: "lh-new", longhornUID: "uid-lh-new", longhornNamespace: "longhorn-system", run: "r"),
                "finalize after a rollback: the new volume and its Longhorn volume by its own name")
        #expect(view[Fact<Int>("replicas.Deployment/ws")] == 2, "the run's other facts stay")
        let created = RollbackFact.view(of: Facts(run.values.merging([RollbackFact.claimCreated.key: "uid-claim-3"]) { $1 }))
        #expect(created[RecreateFact.newClaimUID] == "uid-claim-3")
    }

    @Test("rollback refuses before the point of no return (pointing to abort) and inside the swap (pointing to resume), and a finished rollback is done again without a request")
    func rollbackRefusals() async throws {
        let facts: [EngineRecord] = [.fact(key: ClaimFact.volume.key, value: "pvc-old"), .fact(key: ClaimFact.volumeUID.key, value: "uid-old")]
        let before = try await session(try ScratchDirectory(), records: facts, steps: ["save-manifests", "save-manifests"])
        let early = await #expect(throws: RepaveError.self) { try await before.rollback(confirm: nil) }
        #expect(early?.errorCode == .rollbackBeforePointOfNoReturn && early?.exitStatus == .refused && early?.hint?.contains("repave abort") == true, "\(String(describing: early))")
        let inside = try await session(try ScratchDirectory(), records: facts + [.pointOfNoReturn(step: "delete-claim")], steps: ["save-manifests", "save-manifests", "delete-claim"])
        let swapping = await #expect(throws: RepaveError.self) { try await inside.rollback(confirm: nil) }
        #expect(swapping?.errorCode == .rollbackNotSwapped && swapping?.hint?.contains("repave resume") == true, "\(String(describing: swapping))")
        let finalized = try await session(try ScratchDirectory(), records: facts + [.pointOfNoReturn(step: "delete-claim"), .finished, .finalized(deleted: "pv")],
                                          steps: ["save-manifests", "save-manifests", "delete-claim", nil, nil])
        let gone = await #expect(throws: RepaveError.self) { try await finalized.rollback(confirm: nil) }
        #expect(gone?.errorCode == .rollbackFinalized)
        let done = try await session(try ScratchDirectory(), records: facts + [.pointOfNoReturn(step: "delete-claim"), .finished, .rolledBack(restored: "pv old", left: "pv new")],
                                     steps: ["save-manifests", "save-manifests", "delete-claim", nil, nil])
        let count = done.journal.records.count
        let again = try await done.rollback(confirm: nil)
        #expect(again.alreadyDone && again.lines.first?.hasPrefix("already rolled back") == true)
        #expect(done.journal.records.count == count)
    }

    /// A recreate session over a hand-written journal (no request is sent on these paths).
    func session(_ scratch: ScratchDirectory, records: [EngineRecord], steps: [String?]) async throws -> MaintenanceSession {
        let plan = try RecreatePlan.parse(Data(PlanTests.minimal.utf8), file: "p.yaml")
        let header = RunHeader(strategy: "recreate", plan: plan.name, planDigest: RecreateStrategy(plan: plan).planDigest,
                               cluster: .init(server: "https://127.0.0.1:1", kubeSystemUID: "u"), targets: [:], tlsVerified: true)
        let journal = try Journal.create(directory: scratch.file("run"), run: "r", header: header)
        for (record, step) in zip(records, steps) { try await record.append(to: journal, step: step) }
        let client = try KubeClient(connection: try scratch.unreachableConnection(), userAgent: "repave-test")
        return try await MaintenanceSession.reopen(RecreateStrategy(plan: plan), journal: journal, directory: scratch.file("run"), client: client,
                                                   storedPlan: nil, acceptChanged: false, bindingChecked: false)
    }

    @Test("abort refuses once the point-of-no-return step was done, even when no pnr record says so (someone else deleted the claim)")
    func abortPastTheStep() async throws {
        let scratch = try ScratchDirectory()
        let intent = EngineRecord.Intent(verb: "PATCH", path: "/pv", precondition: "1", attempt: 1, dryRun: false)
        let session = try await session(scratch, records: [.intent(intent), .outcome(.init(result: "ok", detail: nil)), .stepDone, .stepDone],
                                        steps: ["retain-old-volume", "retain-old-volume", "retain-old-volume", "delete-claim"])
        let error = await #expect(throws: RepaveError.self) { try await session.abort() }
        #expect(error?.errorCode == .abortPastPointOfNoReturn)
    }

    @Test("a run whose abort began and did not finish is not resumed forward")
    func halfAborted() async throws {
        let scratch = try ScratchDirectory()
        let intent = EngineRecord.Intent(verb: "PATCH", path: "/pv", precondition: "1", attempt: 1, dryRun: false)
        let session = try await session(scratch, records: [.intent(intent), .outcome(.init(result: "ok", detail: nil))], steps: ["abort", "abort"])
        let error = #expect(throws: RepaveError.self) { try MaintenanceSession.resumable(session.journal, directory: session.directory) }
        #expect(error?.errorCode == .resumeAborted)
        #expect(error?.hint?.contains("repave abort") == true)
    }
}

