import Foundation
import Testing

@testable import RepaveCore

@Suite("plan files")
struct PlanTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    func parse(_ text: String) throws(PlanError) -> RecreatePlan {
        try RecreatePlan.parse(Data(text.utf8), file: "p.yaml")
    }

    /// A minimal valid plan; `edit` swaps one line for the malformed cases.
    static let minimal = """
        apiVersion: repave/v1
        kind: RecreatePlan
        metadata: {name: devpod-home}
        target:
          namespace: devpod
          claim: home
        storageClass:
          name: longhorn-3r
          provisioner: driver.longhorn.io
          parameters: {numberOfReplicas: "3"}
        timeouts:
          scaleDown: 5m
        """

    @Test("the devpod plan parses, with every default explicit")
    func devpodPlan() throws {
        let plan = try RecreatePlan.load(contentsOf: Self.repositoryRoot + "/plans/devpod-home.yaml")
        #expect(plan.name == "devpod-home")
        #expect(plan.context == "ardenone-cluster")
        #expect(plan.target.namespace == "devpod")
        #expect(plan.target.claim == "coder-jeda-codespace-home")
        #expect(plan.target.workloads == [.init(kind: .deployment, name: "coder-jeda-codespace")])
        #expect(plan.storageClass.parameters["numberOfReplicas"] == "3")
        #expect(plan.oldVolume == .retainUntilVerified)
        #expect(plan.gitPreflight?.report == "git-report.json")
        #expect(plan.gitPreflight?.maxReportAge.seconds == 1800)
        #expect(plan.window?.duration.seconds == 2700)
        #expect(plan.verify.replicas == 3)
        #expect(plan.timeouts.rollout.seconds == 600)
    }

    @Test("kind: Plan with strategy: recreate is the same plan as kind: RecreatePlan, with the same digest; plans/devpod-home.yaml stays valid")
    func strategySpellings() throws {
        let old = try parse(Self.minimal)
        let new = try parse(Self.minimal.replacingOccurrences(of: "kind: RecreatePlan", with: "kind: Plan\nstrategy: recreate"))
        #expect(new == old)
        #expect(new.digest == old.digest)
        #expect(old.kind == "Plan" && old.strategy == .recreate)
        let devpod = try RecreatePlan.load(contentsOf: Self.repositoryRoot + "/plans/devpod-home.yaml")
        #expect(devpod.strategy == .recreate)
        // RecreatePlan may say strategy: recreate, nothing else.
        #expect(try parse(Self.minimal.replacingOccurrences(of: "kind: RecreatePlan", with: "kind: RecreatePlan\nstrategy: recreate")) == old)
    }

    @Test("a strategy is named, known and available; a key of another strategy is named as such, with file:line:col", arguments: [
        ("kind: Plan", 2, "p.yaml:1:1: strategy: required key is missing"),
        ("kind: Plan\nstrategy: recreat", 3, "strategy: unknown strategy 'recreat' (did you mean 'recreate'?)"),
        ("kind: Plan\nstrategy: migrate", 3, "strategy: strategy 'migrate' is not available in this release of repave"),
        ("kind: Plan\nstrategy: replicas", 3, "strategy: strategy 'replicas' is not a recreate plan"),
        ("kind: RecreatePlan\nstrategy: migrate", 3, "strategy: kind RecreatePlan is always strategy recreate"),
        ("kind: Plan\nstrategy: recreate\ncopy: {image: lab/mover:1}", 4, "copy: this key belongs to strategy migrate, not recreate"),
        ("kind: Plan\nstrategy: recreate\nwhenDetached: refuse", 4, "whenDetached: this key belongs to strategy replicas, not recreate"),
    ])
    func strategies(kind: String, line: Int, fragment: String) throws {
        let error = #expect(throws: PlanError.self) { try parse(Self.minimal.replacingOccurrences(of: "kind: RecreatePlan", with: kind)) }
        #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")")
        #expect(error?.line == line || fragment.hasPrefix("p.yaml:1:1"), "\(error?.message ?? "")")
        #expect(error?.column != nil)
    }

    @Test("defaults are filled in and the digest ignores comments and formatting")
    func defaultsAndDigest() throws {
        let plan = try parse(Self.minimal)
        #expect(plan.storageClass.ensure)
        #expect(plan.storageClass.reclaimPolicy == "Delete")
        #expect(plan.storageClass.volumeBindingMode == "Immediate")
        #expect(plan.oldVolume == .retainUntilVerified)
        #expect(plan.timeouts.claimDeletion.seconds == 300)
        #expect(plan.verify == .init(namespace: "longhorn-system", replicas: 3, robustness: "healthy"))
        let reformatted = try parse("""
            # a comment
            kind: RecreatePlan
            apiVersion: repave/v1
            metadata:
              name: devpod-home
            storageClass: {name: longhorn-3r, provisioner: driver.longhorn.io, parameters: {numberOfReplicas: "3"}}
            target: {claim: home, namespace: devpod}
            timeouts: {scaleDown: 300s}
            """)
        #expect(reformatted.digest == plan.digest)
        #expect(plan.digest.count == 64)
        var changed = plan
        changed.target.claim = "other"
        #expect(changed.digest != plan.digest)
        #expect(String(decoding: plan.canonicalJSON(), as: UTF8.self).contains(#""scaleDown":"5m""#))
    }

    @Test("durations", arguments: [("90s", 90.0), ("5m", 300), ("1h30m", 5400), ("1.5h", 5400), ("250ms", 0.25)])
    func durations(text: String, seconds: Double) {
        #expect(PlanDuration(parsing: text)?.seconds == seconds)
    }

    @Test("durations are exact, bounded and written back exactly")
    func durationEdges() {
        #expect(PlanDuration(parsing: "99999999999999999999h") == nil)   // no crash, refused
        #expect(PlanDuration(parsing: "169h") == nil)
        #expect(PlanDuration(parsing: "0.0001ms") == nil)
        #expect(PlanDuration(parsing: "500ms")?.description == "500ms")
        #expect(PlanDuration(parsing: "1.4s")?.description == "1400ms")
        #expect(PlanDuration(parsing: "1.4s") != PlanDuration(parsing: "1s"))
        #expect(PlanDuration(parsing: "90s")?.description == "1m30s")
    }

    struct Bad: Sendable, CustomTestStringConvertible {
        let name: String
        let replace: String?
        let with: String
        let line: Int?
        let fragment: String
        var testDescription: String { name }
    }

    /// Each malformed plan: one line of `minimal` replaced (or the whole text when `replace` is
    /// nil), the line the error must name, and words it must contain.
    static let badPlans: [Bad] = [
        .init(name: "typo in a top-level key", replace: "timeouts:", with: "timeout:", line: 11, fragment: "timeout: unknown key (did you mean 'timeouts'?)"),
        .init(name: "typo in a nested key", replace: "  scaleDown: 5m", with: "  scaleDwn: 5m", line: 12, fragment: "timeouts.scaleDwn: unknown key (did you mean 'scaleDown'?)"),
        .init(name: "typo in target", replace: "  claim: home", with: "  claims: home", line: 6, fragment: "target.claims: unknown key (did you mean 'claim'?)"),
        .init(name: "wrong apiVersion", replace: "apiVersion: repave/v1", with: "apiVersion: repave/v2", line: 1, fragment: "unsupported apiVersion 'repave/v2'"),
        .init(name: "unknown kind", replace: "kind: RecreatePlan", with: "kind: MigratePlan", line: 2, fragment: "unknown kind 'MigratePlan'"),
        .init(name: "missing target", replace: "target:", with: "targetx:", line: 4, fragment: "unknown key (did you mean 'target'?)"),
        .init(name: "missing claim", replace: "  claim: home", with: "", line: 5, fragment: "target.claim: required key is missing"),
        .init(name: "bad duration", replace: "  scaleDown: 5m", with: "  scaleDown: 5 minutes", line: 12, fragment: "'5 minutes' is not a duration"),
        .init(name: "duration unit", replace: "  scaleDown: 5m", with: "  scaleDown: 5d", line: 12, fragment: "'5d' is not a duration"),
        .init(name: "zero duration", replace: "  scaleDown: 5m", with: "  scaleDown: 0s", line: 12, fragment: "'0s' is not a duration"),
        .init(name: "duration as a number", replace: "  scaleDown: 5m", with: "  scaleDown: 300", line: 12, fragment: "'300' is not a duration"),
        .init(name: "uppercase namespace", replace: "  namespace: devpod", with: "  namespace: DevPod", line: 5, fragment: "'DevPod' is not a valid name"),
        .init(name: "namespace too long", replace: "  namespace: devpod", with: "  namespace: " + String(repeating: "a", count: 64), line: 5, fragment: "is not a valid name"),
        .init(name: "claim with underscore", replace: "  claim: home", with: "  claim: my_home", line: 6, fragment: "'my_home' is not a valid object name"),
        .init(name: "claim is a list", replace: "  claim: home", with: "  claim: [home]", line: 6, fragment: "target.claim: expected a string"),
        .init(name: "Norway problem", replace: "  namespace: devpod", with: "  namespace: no", line: 5, fragment: "unquoted 'no'"),
        .init(name: "unquoted replica count", replace: "  parameters: {numberOfReplicas: \"3\"}", with: "  parameters: {numberOfReplicas: 3}", line: 10, fragment: "'3' must be quoted"),
        .init(name: "non-numeric replicas", replace: "  parameters: {numberOfReplicas: \"3\"}", with: "  parameters: {numberOfReplicas: \"three\"}", line: 10, fragment: "numberOfReplicas 'three' is not a whole number"),
        .init(name: "zero replicas", replace: "  parameters: {numberOfReplicas: \"3\"}", with: "  parameters: {numberOfReplicas: \"0\"}", line: 10, fragment: "from 1 to 10"),
        .init(name: "null parameter", replace: "  parameters: {numberOfReplicas: \"3\"}", with: "  parameters: {numberOfReplicas: \"3\", fsType: ~}", line: 10, fragment: "an empty or null parameter is not allowed"),
        .init(name: "bad reclaim policy", replace: "  provisioner: driver.longhorn.io", with: "  provisioner: driver.longhorn.io\n  reclaimPolicy: Retian", line: 10, fragment: "'Retian' is not allowed (did you mean 'Retain'?)"),
        .init(name: "ensure not a bool", replace: "  provisioner: driver.longhorn.io", with: "  provisioner: driver.longhorn.io\n  ensure: maybe", line: 10, fragment: "expected true or false"),
        .init(name: "unknown workload kind", replace: "  claim: home", with: "  claim: home\n  workloads: [{kind: Deploymnet, name: ws}]", line: 7, fragment: "unsupported workload kind 'Deploymnet' (did you mean 'Deployment'?)"),
        .init(name: "unknown reconciler", replace: "  claim: home", with: "  claim: home\nacknowledge: [argo]", line: 7, fragment: "unknown reconciler 'argo' (did you mean 'argocd'?)"),
        .init(name: "duplicate key", replace: "  claim: home", with: "  claim: home\n  claim: other", line: 6, fragment: "claim: duplicate key"),
        .init(name: "bad window start", replace: "timeouts:", with: "window: {start: \"next Saturday\", duration: 45m}\ntimeouts:", line: 11, fragment: "'next Saturday' is not an RFC 3339 UTC timestamp"),
        .init(name: "unknown git rule", replace: "timeouts:", with: "gitPreflight: {paths: [/home], require: [comitted]}\ntimeouts:", line: 11, fragment: "unknown rule 'comitted'"),
        .init(name: "gitPreflight without paths or report", replace: "timeouts:", with: "gitPreflight: {maxReportAge: 30m}\ntimeouts:", line: 11, fragment: "gitPreflight needs paths to scan or a report"),
        .init(name: "an anchor and alias", replace: "timeouts:", with: "x: &a [1]\ntimeouts:", line: 11, fragment: "unknown key"),
        .init(name: "an alias where a string belongs", replace: "  claim: home", with: "  claim: *nothing", line: 6, fragment: "not valid YAML"),
        .init(name: "an aliased list where strings belong", replace: "timeouts:", with: "gitPreflight: {paths: [[a, b]]}\ntimeouts:", line: 11, fragment: "gitPreflight.paths[0]: expected a string"),
        .init(name: "not YAML", replace: "  claim: home", with: "  claim: [home", line: 7, fragment: "not valid YAML"),
        .init(name: "a list at the top", replace: nil, with: "- apiVersion: repave/v1", line: 1, fragment: "expected a mapping"),
        .init(name: "empty file", replace: nil, with: "", line: nil, fragment: "the file is empty"),
        .init(name: "tab-indented", replace: "  claim: home", with: "\tclaim: home", line: 6, fragment: "not valid YAML"),
    ]

    @Test("malformed plans get one line naming line, column and key", arguments: badPlans)
    func malformed(_ bad: Bad) throws {
        let text = bad.replace.map { Self.minimal.replacingOccurrences(of: $0, with: bad.with) } ?? bad.with
        if let replace = bad.replace { #expect(text != Self.minimal, "fixture line '\(replace)' not found") }
        let error = #expect(throws: PlanError.self) { try parse(text) }
        guard let error else { return }
        #expect(error.message.contains(bad.fragment), "\(error.message)")
        #expect(error.line == bad.line, "\(error.message)")
        if bad.line != nil { #expect(error.column != nil, "\(error.message)") }
        #expect(!error.message.contains("\n"), "one line: \(error.message)")
        #expect(error.message.hasPrefix("p.yaml"))
        #expect(error.exitStatus == .refused)
    }

    @Test("an alias bomb is refused at once, and a huge file before parsing")
    func bombs() throws {
        var bomb = "apiVersion: repave/v1\nkind: RecreatePlan\nmetadata: {name: x}\na0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        for level in 1..<30 {
            bomb += "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 9).joined(separator: ",") + "]\n"
        }
        let clock = ContinuousClock()
        let start = clock.now
        #expect(throws: PlanError.self) { try parse(bomb) }
        #expect(clock.now - start < .seconds(1))

        let huge = Data(repeating: UInt8(ascii: "#"), count: PlanReader.maxBytes + 1)
        let error = #expect(throws: PlanError.self) { try RecreatePlan.parse(huge, file: "huge.yaml") }
        #expect(error?.problem.contains("a plan is at most") == true)
    }

    @Test("a missing file is one clear error")
    func missingFile() {
        let error = #expect(throws: PlanError.self) { try RecreatePlan.load(contentsOf: "/nonexistent/plan.yaml") }
        #expect(error?.message == "/nonexistent/plan.yaml: no such file")
    }
}
