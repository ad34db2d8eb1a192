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
        let header = RunHeader(strategy: "recreate", plan: "p", planDigest: "d", cluster: .init(server: "s", kubeSystemUID: "u"), targets: [:], tlsVerified: true)
        #expect(header.schema == 2)
        let journal = try Journal.create(directory: scratch.file("run"), run: "r", header: header)
        let written: [(EngineRecord, String?)] = [
            (.intent(.init(verb: "PATCH", path: "/p", precondition: "1", attempt: 1, dryRun: false)), "a"), (.outcome(.init(result: "ok", detail: nil)), "a"),
            (.fact(key: "k", value: "v"), "a"), (.applied, "a"), (.stepDone, "a"), (.resolved(applied: true), "b"), (.confirmed(by: "--yes"), nil),
            (.pointOfNoReturn(step: "b"), "b"), (.lock(.init(lease: "ns/l", holder: "r", intent: "acquire", result: nil)), nil),
            (.note(["note": "hello"]), "b"), (.override(accepted: "x"), nil), (.stopped(reason: "why"), nil), (.aborted(undone: "u"), nil), (.finished, nil), (.finalized(deleted: "pv"), nil),
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
        let header = RunHeader(strategy: "recreate", plan: "p", planDigest: "d", cluster: .init(server: "s", kubeSystemUID: "u"), targets: [:], tlsVerified: true)
        let journal = try Journal.create(directory: scratch.file("run"), run: "r", header: header)
        try journal.append(kind: "telemetry", critical: false, data: ["x": "y"])
        #expect(try RunHistory(journal.records).entries.isEmpty)
        try journal.append(kind: "copy_progress", data: ["bytes": "1"])
        #expect(throws: RunHistoryError.unknownKind("copy_progress", sequence: 3)) { try RunHistory(journal.records) }
    }

    @Test("status's allowed commands follow the journal: resume and abort before the point of no return, resume past it, finalize once finished with a kept volume and until it is done; rollback never in this release")
    func allowedCommands() async throws {
        let scratch = try ScratchDirectory()
        var plan = try RecreatePlan.parse(Data(PlanTests.minimal.utf8), file: "p.yaml")
        let header = RunHeader(strategy: "recreate", plan: "p", planDigest: "d", cluster: .init(server: "s", kubeSystemUID: "u"), targets: [:], tlsVerified: true)
        let journal = try Journal.create(directory: scratch.file("run"), run: "r", header: header)
        func allowed(_ plan: RecreatePlan) throws -> [String] {
            let commands = MaintenanceSession.allowedCommands(try RunHistory(journal.records), strategy: RecreateStrategy(plan: plan), run: "r")
            #expect(commands.first { $0.command == "rollback" }.map { !$0.allowed && $0.why == "not available in this release" } == true)
            return commands.filter(\.allowed).map(\.command)
        }
        try await EngineRecord.fact(key: ClaimFact.volume.key, value: "pvc-old").append(to: journal, step: "save-manifests")
        try await EngineRecord.fact(key: ClaimFact.volumeUID.key, value: "uid-old").append(to: journal, step: "save-manifests")
        #expect(try allowed(plan) == ["resume", "abort"])
        try await EngineRecord.pointOfNoReturn(step: "delete-claim").append(to: journal, step: "delete-claim")
        #expect(try allowed(plan) == ["resume"])
        try await EngineRecord.finished.append(to: journal, step: nil)
        #expect(try allowed(plan) == ["finalize"])
        plan.oldVolume = .delete
        #expect(try allowed(plan) == [], "the run deleted its old volume itself")
        plan.oldVolume = .retainUntilVerified
        try await EngineRecord.confirmed(by: "--yes").append(to: journal, step: MaintenanceSession.finalizeStep)
        #expect(try RunHistory(journal.records).finalizing)
        #expect(try allowed(plan) == ["finalize"], "finalize began: only finalize carries it on")
        try await EngineRecord.finalized(deleted: "pv").append(to: journal, step: nil)
        #expect(try allowed(plan) == [])
        #expect(try RunHistory(journal.records).ending?.kind == .finalized)
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

