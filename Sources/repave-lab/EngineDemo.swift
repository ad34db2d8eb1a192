import ArgumentParser
import Foundation
import Journal
import KubeAPI
import Logging
import RepaveCore

/// `repave-lab engine-demo`: the run engine with three small ConfigMap steps (create, patch,
/// delete with a uid precondition), for the crash tests: they run it with REPAVE_FAILPOINTS or
/// kill it, then resume it, and check the cluster and the journal.
struct EngineDemo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine-demo", abstract: "Run (or resume) the engine on test-only ConfigMap steps.")

    @Option var kubeconfig: String
    @Option var namespace: String
    @Option(name: .customLong("run-dir")) var runDirectory: String
    @Flag var resume = false
    @Option(name: .customLong("wait-delay"), help: "Seconds the delete step waits before checking (for kill tests).")
    var waitDelay: Double = 0
    @Option(name: .customLong("window-start"), help: "'now' or an RFC 3339 time.")
    var windowStart: String?
    @Option(name: .customLong("window-duration"), help: "Seconds.")
    var windowDuration: Double = 3600
    @Flag(help: "Skip the typed confirmation.")
    var yes = false
    @Flag(name: .customLong("accept-changed-plan"), help: "Resume even though the run's binding changed (journaled).")
    var acceptChangedPlan = false
    @Flag(help: "Hold the cluster lock (Lease repave-engine-demo) while running.")
    var lease = false

    func run() async throws {
        let logger = Logger(label: "engine-demo")
        let connection = try KubeconfigLoader(explicitPath: kubeconfig).load()
        let client = try KubeClient(connection: connection, userAgent: "repave-lab/engine-demo", logger: logger)
        if !resume && !yes && !Confirmation.isInteractive {
            FileHandle.standardError.write(Data("error: refusing to change the cluster without a terminal to confirm on; pass --yes\n".utf8))
            throw ExitCode(2)
        }
        // The header binds the run: a "plan" (here the namespace), the cluster, the target.
        let namespaceUID = Namespace(try await client.get(.namespaces, named: namespace)).uid
        let current = RunHeader(plan: "engine-demo", planDigest: SHA256.hex(of: Data(namespace.utf8)),
                                cluster: try await RunHeader.identify(client),
                                targets: ["namespace/\(namespace)": namespaceUID], tlsVerified: true)
        let journal: Journal
        if resume {
            journal = try Journal.open(directory: runDirectory)
            let recorded = try journal.records[0].decode(RunHeader.self)
            let problems = recorded.mismatches(current)
            if !problems.isEmpty {
                guard acceptChangedPlan else {
                    FileHandle.standardError.write(Data(("error: resume refused: " + problems.joined(separator: "; ") + "\nhint: pass --accept-changed-plan to continue anyway (it is journaled)\n").utf8))
                    throw ExitCode(4)
                }
                try journal.append(kind: "override", data: ["accepted": problems.joined(separator: "; ")])
            }
        } else {
            journal = try Journal.create(directory: runDirectory, run: UUID().uuidString.lowercased(), header: current)
        }
        var window: RecreatePlan.Window?
        if let windowStart {
            let start = windowStart == "now" ? Date() : try Date(windowStart, strategy: .iso8601)
            window = RecreatePlan.Window(start: start, duration: PlanDuration(seconds: windowDuration))
        }
        let steps: [any Step] = [
            CreateConfigMap(namespace: namespace, run: journal.run),
            PatchConfigMap(namespace: namespace),
            DeleteConfigMap(namespace: namespace, delay: waitDelay),
        ]
        let interruption = Interruption()
        let target = "\(namespace)/\(demoName)"
        let summaries = steps.map { (id: $0.id, summary: $0.summary) }
        let lock = lease ? ClusterLock(client: client, namespace: namespace, claim: demoName, holder: journal.run) : nil
        let runner = Runner(
            steps: steps, journal: journal, client: client, interruption: interruption, window: window, lock: lock, logger: logger,
            confirm: { pnr in Confirmation.askTypedName(target, steps: summaries, pointOfNoReturn: pnr) })
        let resume = self.resume
        let confirmationRequired = !yes && !resume
        let task = Task { await runner.run(resuming: resume, confirmationRequired: confirmationRequired) }
        interruption.install { task.cancel() }
        switch await task.value {
        case .finished: print("finished")
        case .refused(let reason):
            FileHandle.standardError.write(Data("stopped before any change: \(reason)\n".utf8))
            throw ExitCode(2)
        case .stopped(let reason):
            FileHandle.standardError.write(Data("stopped: \(reason)\n".utf8))
            throw ExitCode(3)
        case .interrupted(let signal):
            FileHandle.standardError.write(Data("interrupted by signal \(signal); resume with --resume\n".utf8))
            throw ExitCode(128 + signal)
        }
    }
}

let demoName = "engine-demo"

struct CreateConfigMap: Step {
    let namespace: String
    let run: String
    var id: String { "create" }
    var mutates: Bool { true }
    var summary: String { "create configmap \(namespace)/\(demoName)" }
    var estimate: Duration { .seconds(5) }

    func observe(_ context: StepContext) async throws -> Bool {
        guard let object = try await context.client.getIfPresent(.configMaps, named: demoName, in: namespace) else {
            // Gone after this run created it: a later step deleted it, the goal held.
            return context.facts["uid"] != nil
        }
        let meta = ObjectMeta(object["metadata"] ?? [:])
        guard meta.annotations["repave/run-id"] == run else {
            throw RepaveError(code: "demo.foreign", "configmap \(namespace)/\(demoName) was not created by this run", exitStatus: .stoppedMidRun)
        }
        if context.facts["uid"] == nil { try context.remember("uid", meta.uid) }
        return true
    }

    func apply(_ context: StepContext) async throws {
        let created = try await context.mutate("POST", ResourceType.configMaps.path(namespace: namespace)) {
            try await context.client.create(.configMaps, in: namespace, [
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": ["name": .string(demoName), "annotations": ["repave/run-id": .string(run)]],
                "data": ["phase": "created"],
            ])
        }
        try context.remember("uid", ObjectMeta(created["metadata"] ?? [:]).uid)
    }
}

struct PatchConfigMap: Step {
    let namespace: String
    var id: String { "patch" }
    var mutates: Bool { true }
    var summary: String { "mark configmap \(namespace)/\(demoName) patched" }
    var estimate: Duration { .seconds(5) }

    func observe(_ context: StepContext) async throws -> Bool {
        guard let object = try await context.client.getIfPresent(.configMaps, named: demoName, in: namespace) else { return true }
        return object[path: "data", "phase"] == "patched"
    }

    func apply(_ context: StepContext) async throws {
        try await context.mutate("PATCH", ResourceType.configMaps.path(namespace: namespace, name: demoName)) {
            try await context.client.patch(.configMaps, named: demoName, in: namespace, .merge(["data": ["phase": "patched"]]))
        }
    }
}

struct DeleteConfigMap: Step {
    let namespace: String
    let delay: Double
    var id: String { "delete" }
    var mutates: Bool { true }
    var isPointOfNoReturn: Bool { true }
    var summary: String { "delete configmap \(namespace)/\(demoName) (uid-guarded)" }
    var estimate: Duration { .seconds(10) }

    func observe(_ context: StepContext) async throws -> Bool {
        try await context.client.getIfPresent(.configMaps, named: demoName, in: namespace) == nil
    }

    func apply(_ context: StepContext) async throws {
        guard let uid = context.facts["uid"] else {
            throw RepaveError(code: "demo.no-uid", "no recorded uid to delete", exitStatus: .stoppedMidRun)
        }
        try context.crossPointOfNoReturn()
        try await context.mutate("DELETE", ResourceType.configMaps.path(namespace: namespace, name: demoName), precondition: uid) {
            try await context.client.delete(.configMaps, named: demoName, in: namespace, uid: uid)
        }
    }

    func await(_ context: StepContext) async throws {
        context.waiting()
        if delay > 0 { try await Task.sleep(for: .milliseconds(Int(delay * 1000))) }
        try await context.client.wait(for: .configMaps, named: demoName, in: namespace, timeout: .seconds(10), describedAs: "configmap gone") { $0 == nil }
    }
}
