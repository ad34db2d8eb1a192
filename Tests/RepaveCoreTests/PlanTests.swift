import Foundation
import RepaveTestSupport
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
        ("kind: Plan\nstrategy: migrate", 3, "strategy: strategy 'migrate' is not a recreate plan"),
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
        let time = elapsed { #expect(throws: PlanError.self) { try parse(bomb) } }
        #expect(time < .seconds(1))

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

@Suite("migrate plan files")
struct MigratePlanTests {
    func parse(_ text: String) throws(PlanError) -> MigratePlan {
        try MigratePlan.parse(Data(text.utf8), file: "m.yaml")
    }

    /// Recreate's minimal plan as a migrate plan: the same lines, with `strategy` and `copy`.
    static let minimal = PlanTests.minimal
        .replacingOccurrences(of: "kind: RecreatePlan", with: "kind: Plan\nstrategy: migrate")
        .replacingOccurrences(of: "timeouts:", with: "copy:\n  image: lab/mover:1\ntimeouts:")

    @Test("plans/devpod-home-migrate.yaml parses as a migrate plan, and PlanFile.load gives the migrate strategy")
    func devpodPlan() throws {
        let path = PlanTests.repositoryRoot + "/plans/devpod-home-migrate.yaml"
        let plan = try MigratePlan.load(contentsOf: path)
        #expect(plan.strategy == .migrate && plan.name == "devpod-home-migrate")
        #expect(plan.target.claim == "coder-jeda-codespace-home")
        #expect(plan.copy.image == "lab/mover:1")
        #expect(plan.copy.resources.requests == ["cpu": "100m", "memory": "128Mi"] && plan.copy.resources.limits == ["memory": "1Gi"])
        #expect(plan.timeouts.warmCopy.seconds == 6 * 3600 && plan.timeouts.rollout.seconds == 600)
        #expect(plan.gitPreflight == nil)
        let strategy = try PlanFile.load(contentsOf: path)
        #expect(strategy.kind == "migrate" && (strategy as? MigrateStrategy)?.plan == plan)
    }

    @Test("defaults are explicit: warm, checksum, IfNotPresent, no extra options, the copy timeouts, the old volume kept")
    func defaults() throws {
        let plan = try parse(Self.minimal)
        #expect(plan.copy == MigratePlan.Copy(image: "lab/mover:1", warm: true, verify: .checksum, imagePullPolicy: "IfNotPresent",
                                              nodeSelector: [:], tolerations: [], resources: .init(requests: [:], limits: [:]), extraArgs: []))
        #expect(plan.oldVolume == .retainUntilVerified)
        #expect(plan.timeouts.warmCopy.description == "6h" && plan.timeouts.finalCopy.description == "2h" && plan.timeouts.verifyCopy.description == "2h")
        #expect(plan.timeouts.scaleDown.description == "5m" && plan.timeouts.verify.description == "10m")
        #expect(plan.verify.replicas == 3)
        let json = String(decoding: plan.canonicalJSON(), as: UTF8.self)
        #expect(json.contains("\"strategy\":\"migrate\""))
        #expect(json.contains("\"copy\":{\"extraArgs\":[],\"image\":\"lab/mover:1\",\"imagePullPolicy\":\"IfNotPresent\""), "\(json)")
        // Comments and formatting leave the digest alone; a copy setting changes it.
        #expect(try parse("# a comment\n" + Self.minimal).digest == plan.digest)
        #expect(try parse(Self.minimal.replacingOccurrences(of: "  image: lab/mover:1", with: "  image: lab/mover:1\n  warm: false")).digest != plan.digest)
        // The same sections as recreate, read by the same code.
        let recreate = try RecreatePlan.parse(Data(Self.minimal.replacingOccurrences(of: "strategy: migrate", with: "strategy: recreate")
            .replacingOccurrences(of: "copy:\n  image: lab/mover:1\n", with: "").utf8), file: "r.yaml")
        #expect(recreate.target == plan.target && recreate.storageClass == plan.storageClass && recreate.verify == plan.verify)
    }

    @Test("every copy key is read")
    func everyCopyKey() throws {
        let plan = try parse(Self.minimal.replacingOccurrences(of: "  image: lab/mover:1", with: """
              image: registry.example/mover@sha256:0123
              warm: false
              verify: none
              imagePullPolicy: Always
              nodeSelector: {kubernetes.io/hostname: k3s-dell-micro, disk: "true"}
              tolerations:
                - {key: dedicated, operator: Equal, value: storage, effect: NoSchedule}
                - {operator: Exists, effect: NoExecute, tolerationSeconds: 60}
              resources: {requests: {cpu: 1, memory: 256Mi}, limits: {ephemeral-storage: 1.5Gi}}
              extraArgs: [--exclude=lost+found, -W, --bwlimit=50m, "--exclude=a b"]
            """))
        #expect(plan.copy.image == "registry.example/mover@sha256:0123")
        #expect(!plan.copy.warm && plan.copy.verify == .none && plan.copy.imagePullPolicy == "Always")
        #expect(plan.copy.nodeSelector == ["kubernetes.io/hostname": "k3s-dell-micro", "disk": "true"])
        #expect(plan.copy.tolerations == [
            .init(key: "dedicated", operator: "Equal", value: "storage", effect: "NoSchedule", tolerationSeconds: nil),
            .init(key: nil, operator: "Exists", value: nil, effect: "NoExecute", tolerationSeconds: 60),
        ])
        #expect(plan.copy.resources == .init(requests: ["cpu": "1", "memory": "256Mi"], limits: ["ephemeral-storage": "1.5Gi"]))
        #expect(plan.copy.extraArgs == ["--exclude=lost+found", "-W", "--bwlimit=50m", "--exclude=a b"])
        let timeouts = try parse(Self.minimal.replacingOccurrences(of: "  scaleDown: 5m", with: "  warmCopy: 30m\n  finalCopy: 1h\n  verifyCopy: 45m\n  bind: 1m"))
            .timeouts
        #expect(timeouts.warmCopy.seconds == 1800 && timeouts.finalCopy.seconds == 3600 && timeouts.verifyCopy.seconds == 2700 && timeouts.bind.seconds == 60)
    }

    /// rsync options that would change what is copied or kept: each refused where it is written.
    /// extraArgs is an allow-list, so the negations, data-skipping, copy-nothing and file-reading
    /// filter options are refused as well as the ones the issue names.
    @Test("extraArgs refuses options that change what is copied or kept, at file:line:col with what to do", arguments: [
        ("--inplace", "--inplace is refused", "--partial"),
        ("--remove-source-files", "deletes files from the old volume", "repave finalize"),
        ("-n", "-n (--dry-run) is refused", "--server-dry-run"),
        ("-avn", "-n (--dry-run) is refused in '-avn'", "remove it"),
        ("--dry-run", "--dry-run is refused", "remove it"),
        ("--delete", "--delete is refused", "remove it"),
        ("--delete-after", "--delete-after is refused", "remove it"),
        ("--delete-excluded", "--delete-excluded is refused", "remove it"),
        ("--del", "--del is refused", "remove it"),
        ("-e", "-e (--rsh) is refused", "remove it"),
        ("-ve", "-e (--rsh) is refused in '-ve'", "remove it"),
        ("--rsh=ssh", "--rsh is refused", "remove it"),
        ("--files-from=/tmp/list", "--files-from is refused", "remove it"),
        ("/etc", "'/etc' is not an rsync option", "--exclude=lost+found"),
        ("--", "'--' is not an rsync option", "one item"),
        // Negations of what repave passes.
        ("--no-H", "--no-H is refused: it turns off part of what repave passes", "remove it"),
        ("--no-hard-links", "--no-hard-links is refused", "remove it"),
        ("--no-A", "--no-A is refused", "remove it"),
        ("--no-X", "--no-X is refused", "remove it"),
        ("--no-S", "--no-S is refused", "remove it"),
        ("--no-o", "--no-o is refused", "remove it"),
        ("--no-g", "--no-g is refused", "remove it"),
        ("--no-p", "--no-p is refused", "remove it"),
        ("--no-t", "--no-t is refused", "remove it"),
        ("--no-D", "--no-D is refused", "remove it"),
        ("--no-numeric-ids", "--no-numeric-ids is refused", "remove it"),
        ("--no-inc-recursive", "repave passes it already", "remove it"),
        ("-a", "-a (--archive) is refused: repave passes it already", "remove it"),
        // Options that skip data.
        ("--size-only", "--size-only is refused: it leaves out files", "every pass copies whatever differs"),
        ("--ignore-existing", "--ignore-existing is refused: it leaves out files", "remove it"),
        ("--existing", "--existing is refused: it leaves out files", "remove it"),
        ("--max-size=1m", "--max-size is refused: it leaves out files", "remove it"),
        ("--min-size=1", "--min-size is refused: it leaves out files", "remove it"),
        ("--modify-window=5", "--modify-window is refused: it leaves out files", "remove it"),
        ("-@5", "-@ (--modify-window) is refused", "remove it"),
        ("-u", "-u (--update) is refused: it leaves out files", "remove it"),
        ("-Wu", "-u (--update) is refused in '-Wu'", "remove it"),
        ("--update", "--update is refused", "remove it"),
        ("--append-verify", "--append-verify is refused", "remove it"),
        ("--link-dest=/tmp", "--link-dest is refused", "remove it"),
        // Options that copy nothing.
        ("--list-only", "--list-only is refused: the copy would copy nothing", "remove it"),
        ("--only-write-batch=/tmp/b", "--only-write-batch is refused: the copy would copy nothing", "remove it"),
        ("--write-batch=/tmp/b", "--write-batch is refused", "remove it"),
        // Filters read from files.
        ("-C", "-C (--cvs-exclude) is refused: it reads filter rules from files", "--exclude=PATTERN"),
        ("--cvs-exclude", "--cvs-exclude is refused", "--exclude=PATTERN"),
        ("-F", "-F (--filter) is refused", "--exclude=PATTERN"),
        ("--filter=merge /source/.rules", "--filter is refused", "--exclude=PATTERN"),
        ("-f. /source/.rules", "-f (--filter) is refused", "--exclude=PATTERN"),
        ("--exclude-from=/source/list", "--exclude-from is refused", "--exclude=PATTERN"),
        // Allowed options with a value that defeats them, or none.
        ("--exclude=*", "matches every entry of the volume", "--exclude=lost+found"),
        ("--exclude=/**/", "matches every entry of the volume", "--exclude=lost+found"),
        ("--exclude=+ keep", "rsync reads '+' at the start as a rule", "write the pattern alone"),
        ("--include=- drop", "rsync reads '-' at the start as a rule", "write the pattern alone"),
        ("--exclude", "--exclude needs its value in the same item", "--exclude=lost+found"),
        ("--bwlimit", "--bwlimit needs its value in the same item", "--bwlimit=50m"),
        ("--bwlimit=fast", "'fast' is not a rate", "--bwlimit=50m"),
        ("--cc=none", "rsync would not check the data it wrote", "--cc=xxh128"),
        ("--checksum-choice=xxh128,none", "rsync would not check the data it wrote", "--checksum-choice=xxh128"),
        ("--whole-file=yes", "--whole-file takes no value", "--whole-file"),
        // Everything else is simply not on the list.
        ("-z", "-z (--compress) is refused: the copy runs inside one pod", "remove it"),
        ("--compress-level=9", "--compress-level is refused", "remove it"),
        ("-v", "-v (--verbose) is refused: it changes the log repave reads", "kubectl logs"),
        ("--info=progress0", "--info is refused: it changes the log repave reads", "kubectl logs"),
        ("-h", "-h (--human-readable) is refused", "remove it"),
        ("--preallocate", "sparse files would no longer be sparse", "remove it"),
        ("--chmod=ugo+r", "--chmod is refused: it changes what is kept", "remove it"),
        ("-T/tmp", "-T (--temp-dir) is refused in '-T/tmp': extraArgs takes only options", "--bwlimit=RATE"),
        ("--delay-updates", "--delay-updates is refused: extraArgs takes only options", "--exclude=PATTERN and --include=PATTERN"),
        ("--frobnicate", "--frobnicate is refused: extraArgs takes only options", "plans/README.md"),
    ])
    func refusedExtraArgs(_ argument: String, _ fragment: String, _ hint: String) throws {
        let text = Self.minimal.replacingOccurrences(of: "  image: lab/mover:1", with: "  image: lab/mover:1\n  extraArgs:\n    - --bwlimit=10m\n    - \"\(argument)\"")
        let error = #expect(throws: PlanError.self) { try parse(text) }
        #expect(error?.line == 16 && error?.column == 7, "\(error?.message ?? "")")
        #expect(error?.key == "copy.extraArgs[1]")
        #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")")
        #expect(error?.hint?.contains(hint) == true, "\(error?.hint ?? "")")
    }

    @Test("the allow-list: a rate limit, whole files, a checksum choice, and exclude/include patterns pass")
    func allowedExtraArgs() {
        for argument in ["--bwlimit=50m", "--bwlimit=1.5M", "--bwlimit=0", "--bwlimit=100KiB", "-W", "--whole-file", "--checksum-choice=xxh128",
                         "--cc=md5,md5", "--exclude=lost+found", "--exclude=node_modules/", "--exclude=/tmp/*", "--exclude=*.tmp",
                         "--include=keep/***", "--exclude=it's here"] {
            #expect(MigratePlan.Copy.refusal(of: argument) == nil, "\(argument): \(MigratePlan.Copy.refusal(of: argument)?.problem ?? "")")
        }
    }

    static let badPlans: [PlanTests.Bad] = [
        .init(name: "copy missing", replace: "copy:\n  image: lab/mover:1\n", with: "", line: 1, fragment: "copy: required key is missing"),
        .init(name: "image missing", replace: "  image: lab/mover:1", with: "  warm: true", line: 13, fragment: "copy.image: required key is missing"),
        .init(name: "image with a space", replace: "  image: lab/mover:1", with: "  image: lab/mover 1", line: 13, fragment: "'lab/mover 1' is not an image reference"),
        .init(name: "typo in copy", replace: "  image: lab/mover:1", with: "  image: lab/mover:1\n  imagePulPolicy: Never", line: 14, fragment: "copy.imagePulPolicy: unknown key (did you mean 'imagePullPolicy'?)"),
        .init(name: "bad pull policy", replace: "  image: lab/mover:1", with: "  image: lab/mover:1\n  imagePullPolicy: Sometimes", line: 14, fragment: "'Sometimes' is not allowed"),
        .init(name: "bad verify", replace: "  image: lab/mover:1", with: "  image: lab/mover:1\n  verify: sha256", line: 14, fragment: "'sha256' is not allowed"),
        .init(name: "warm not a bool", replace: "  image: lab/mover:1", with: "  image: lab/mover:1\n  warm: yes", line: 14, fragment: "expected true or false"),
        .init(name: "unquoted selector value", replace: "  image: lab/mover:1", with: "  image: lab/mover:1\n  nodeSelector: {ssd: true}", line: 14, fragment: "node selector values are strings; 'true' must be quoted"),
        .init(name: "Exists with a value", replace: "  image: lab/mover:1", with: "  image: lab/mover:1\n  tolerations: [{key: a, operator: Exists, value: b}]", line: 14, fragment: "operator Exists takes no value"),
        .init(name: "keyless Equal", replace: "  image: lab/mover:1", with: "  image: lab/mover:1\n  tolerations: [{value: b}]", line: 14, fragment: "without a key must have operator Exists"),
        .init(name: "seconds without NoExecute", replace: "  image: lab/mover:1", with: "  image: lab/mover:1\n  tolerations: [{key: a, tolerationSeconds: 5}]", line: 14, fragment: "tolerationSeconds applies only to effect NoExecute"),
        .init(name: "bad effect", replace: "  image: lab/mover:1", with: "  image: lab/mover:1\n  tolerations: [{key: a, effect: NoScheduel}]", line: 14, fragment: "'NoScheduel' is not allowed (did you mean 'NoSchedule'?)"),
        .init(name: "bad quantity", replace: "  image: lab/mover:1", with: "  image: lab/mover:1\n  resources: {limits: {memory: 1 GB}}", line: 14, fragment: "'1 GB' is not a quantity"),
        .init(name: "unknown resource", replace: "  image: lab/mover:1", with: "  image: lab/mover:1\n  resources: {limits: {gpu: 1}}", line: 14, fragment: "copy.resources.limits.gpu: unknown key"),
        .init(name: "oldVolume delete", replace: "copy:", with: "oldVolume: delete\ncopy:", line: 12, fragment: "migrate keeps the old volume until 'repave finalize'; 'delete' is not allowed"),
        .init(name: "bad copy timeout", replace: "  scaleDown: 5m", with: "  warmCopy: forever", line: 15, fragment: "timeouts.warmCopy: 'forever' is not a duration"),
        .init(name: "typo in a copy timeout", replace: "  scaleDown: 5m", with: "  finalCpy: 1h", line: 15, fragment: "timeouts.finalCpy: unknown key (did you mean 'finalCopy'?)"),
        .init(name: "a replicas key", replace: "copy:", with: "whenDetached: wait\ncopy:", line: 12, fragment: "whenDetached: this key belongs to strategy replicas, not migrate"),
        .init(name: "a recreate plan", replace: "strategy: migrate", with: "strategy: recreate", line: 3, fragment: "this is a recreate plan, not a migrate plan"),
        .init(name: "shared section still checked", replace: "  claim: home", with: "  claim: my_home", line: 7, fragment: "'my_home' is not a valid object name"),
    ]

    @Test("malformed migrate plans get one line naming line, column and key", arguments: badPlans)
    func malformed(_ bad: PlanTests.Bad) throws {
        let text = bad.replace.map { Self.minimal.replacingOccurrences(of: $0, with: bad.with) } ?? bad.with
        if let replace = bad.replace { #expect(text != Self.minimal, "fixture '\(replace)' not found") }
        let error = #expect(throws: PlanError.self) { try parse(text) }
        guard let error else { return }
        #expect(error.message.contains(bad.fragment), "\(error.message)")
        #expect(error.line == bad.line, "\(error.message)")
        #expect(error.column != nil, "\(error.message)")
        #expect(!error.message.contains("\n"), "one line: \(error.message)")
        #expect(error.message.hasPrefix("m.yaml"))
    }
}
