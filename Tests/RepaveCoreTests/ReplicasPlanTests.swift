import Foundation
import Testing

@testable import RepaveCore

@Suite("replicas plan files")
struct ReplicasPlanTests {
    func parse(_ text: String) throws(PlanError) -> ReplicasPlan {
        try ReplicasPlan.parse(Data(text.utf8), file: "r.yaml")
    }

    /// A minimal valid replicas plan; the malformed cases swap one line.
    static let minimal = """
        apiVersion: repave/v1
        kind: Plan
        strategy: replicas
        metadata: {name: devpod-home-replicas}
        target:
          namespace: devpod
          claim: home
        replicas: 3
        timeouts:
          rebuild: 30m
        """

    @Test("plans/devpod-home-replicas.yaml parses, with every default explicit, and PlanFile gives the replicas strategy")
    func examplePlan() throws {
        let file = PlanTests.repositoryRoot + "/plans/devpod-home-replicas.yaml"
        let plan = try ReplicasPlan.load(contentsOf: file)
        #expect(plan.name == "devpod-home-replicas")
        #expect(plan.context == "ardenone-cluster")
        #expect(plan.target == .init(namespace: "devpod", claim: "coder-jeda-codespace-home"))
        #expect(plan.replicas == 3)
        #expect(plan.whenDetached == .refuse)
        #expect(plan.window == nil)
        #expect(plan.timeouts.rebuild.seconds == 7200)
        #expect(plan.verify == .init(namespace: "longhorn-system", replicas: 3, robustness: "healthy"))
        let strategy = try PlanFile.load(contentsOf: file)
        #expect(strategy.kind == "replicas")
        #expect(strategy.planDigest == plan.digest)
        #expect(strategy.steps(for: .planning).map(\.id) == ["preflight", "save-manifests", "patch-replicas", "await-rebuild"])
        #expect(!strategy.steps(for: .planning).contains(where: { $0.isPointOfNoReturn }))
    }

    @Test("defaults: whenDetached refuse, rebuild 2h, verify.longhorn.replicas follows replicas; the stored plan.json reads back the same")
    func defaults() throws {
        let plan = try parse(Self.minimal.replacingOccurrences(of: "timeouts:\n  rebuild: 30m", with: "replicas: 2").replacingOccurrences(of: "replicas: 3\n", with: ""))
        #expect(plan.replicas == 2)
        #expect(plan.whenDetached == .refuse)
        #expect(plan.timeouts.rebuild.seconds == 7200)
        #expect(plan.verify.replicas == 2)
        let stored = try PlanFile.stored(plan.canonicalJSON())
        #expect((stored as? ReplicasStrategy)?.plan == plan)
        #expect(try parse(Self.minimal).timeouts.rebuild.seconds == 1800)
        #expect(try parse(Self.minimal + "\nwhenDetached: wait").whenDetached == .wait)
        #expect(try parse(Self.minimal + "\nverify: {longhorn: {replicas: 2}}").verify.replicas == 2)
        #expect(try parse(Self.minimal + "\nwindow: {start: \"2026-11-28T02:00:00Z\", duration: 3h}").window?.duration.seconds == 10800)
        // A different count is a different plan.
        #expect(try parse(Self.minimal).digest != plan.digest)
    }

    @Test("malformed replicas plans are one line naming the key and what to do", arguments: [
        ("replicas: 3", "", 1, "replicas: required key is missing"),
        ("replicas: 3", "replicas: 0", 8, "replicas: 0 is out of range 1…10"),
        ("replicas: 3", "replicas: \"3\"", 8, "replicas: expected a whole number"),
        ("replicas: 3", "replicas: 3\nwhenDetached: later", 9, "whenDetached: 'later' is not allowed"),
        ("  rebuild: 30m", "  rebuld: 30m", 10, "timeouts.rebuld: unknown key (did you mean 'rebuild'?)"),
        ("  rebuild: 30m", "  scaleDown: 5m", 10, "timeouts.scaleDown: unknown key"),
        ("  rebuild: 30m", "  rebuild: soon", 10, "'soon' is not a duration"),
        ("replicas: 3", "replicas: 3\nstorageClass: {name: x}", 9, "storageClass: this key belongs to strategies recreate and migrate, not replicas"),
        ("  claim: home", "  claim: home\n  workloads: []", 8, "target.workloads: this key belongs to strategies recreate and migrate, not replicas"),
        ("replicas: 3", "replicas: 2\nverify: {longhorn: {replicas: 3}}", 9, "more than the 2 replicas the plan asks for"),
    ])
    func malformed(replace: String, with: String, line: Int, fragment: String) throws {
        let error = #expect(throws: PlanError.self) { try parse(Self.minimal.replacingOccurrences(of: replace, with: with)) }
        #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")")
        #expect(error?.line == line || fragment.hasSuffix("required key is missing"), "\(error?.message ?? "")")
        #expect(error?.hint != nil || fragment.contains("out of range") || fragment.contains("whole number") || fragment.contains("required"), "\(error?.message ?? "")")
    }

    @Test("recreate's parser and replicas' parser each refuse the other's plan; a migrate plan with replicas' keys is refused by migrate's")
    func strategiesApart() throws {
        let error = #expect(throws: PlanError.self) { try RecreatePlan.parse(Data(Self.minimal.utf8), file: "r.yaml") }
        #expect(error?.message.contains("strategy 'replicas' is not a recreate plan") == true)
        let other = #expect(throws: PlanError.self) { try parse(PlanTests.minimal) }
        #expect(other?.message.contains("strategy 'recreate' is not a replicas plan") == true)
        let migrate = #expect(throws: PlanError.self) { try PlanFile.parse(Data(Self.minimal.replacingOccurrences(of: "strategy: replicas", with: "strategy: migrate").utf8), file: "r.yaml") }
        #expect(migrate?.message.contains("belongs to strategy replicas, not migrate") == true, "\(migrate?.message ?? "")")
    }

    @Test("repave plan's description and the runbook name the count, the detached policy and the class caveat; the runbook is deterministic")
    func describeAndRunbook() throws {
        let strategy = ReplicasStrategy(plan: try parse(Self.minimal))
        let text = strategy.describe(file: "r.yaml")
        #expect(text.contains("replicas:      3"))
        #expect(text.contains("when detached: refuse"))
        #expect(text.contains("window:        none"))
        #expect(text.contains("timeouts:      rebuild 30m"))
        let runbook = strategy.runbook(planFile: "r.yaml", evidence: nil)
        #expect(runbook == strategy.runbook(planFile: "r.yaml", evidence: nil))
        #expect(runbook.contains("| `patch-replicas` |"))
        #expect(runbook.contains("\"numberOfReplicas\":3"))
        #expect(runbook.contains("Longhorn keeps the replicas it already built"))
        #expect(runbook.contains("keeps its StorageClass"))
    }
}
