import ArgumentParser
import Blocking
import Foundation
import Journal
import KubeAPI
import Logging
import RepaveCommands
import RepaveCore

/// `repave-lab engine-demo`: the run engine with three small ConfigMap steps (create, patch,
/// delete with a uid precondition), for the crash tests: they run it with REPAVE_FAILPOINTS or
/// kill it, then resume it, and check the cluster and the journal.
struct EngineDemo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine-demo", abstract: "Run, resume, abort or show the engine on test-only ConfigMap steps.")

    @Option var kubeconfig: String
    @Option var namespace: String
    @Option(name: .customLong("run-dir")) var runDirectory: String
    @Flag var resume = false
    @Flag(help: "Put back what the run changed (before its point of no return).")
    var abort = false
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
        var window: PlanWindow?
        if let windowStart {
            let start = windowStart == "now" ? Date() : try Date(windowStart, strategy: .iso8601)
            window = PlanWindow(start: start, duration: PlanDuration(seconds: windowDuration))
        }
        let strategy = DemoStrategy(namespace: namespace, window: window, lease: lease, delay: waitDelay)
        do {
            if abort || resume {
                let directory = runDirectory
                let journal = try await offPool("journal open") { () throws(JournalError) in try Journal.open(directory: directory) }
                if resume { _ = try MaintenanceSession.resumable(journal, directory: runDirectory) }
                let stored = FileManager.default.contents(atPath: runDirectory + "/plan.json")
                let session = try await MaintenanceSession.reopen(strategy, journal: journal, directory: runDirectory, client: client,
                                                                  storedPlan: stored, acceptChanged: acceptChangedPlan, bindingChecked: !abort)
                if abort {
                    let undone = try await session.abort()
                    print(undone.isEmpty ? "aborted: nothing had been changed" : "aborted: " + undone.joined(separator: "; "))
                    return
                }
                try await finish(session, confirm: false)
            } else {
                guard yes || Confirmation.isInteractive else {
                    throw RepaveError(.noTerminal, "refusing to change the cluster without a terminal to confirm on; pass --yes")
                }
                let session = try await MaintenanceSession.start(strategy, client: client, directory: runDirectory, consentGiven: yes)
                try await finish(session, confirm: !yes)
            }
        } catch let error as any UserFacingError {
            FileHandle.standardError.write(Data(ErrorRenderer.text(error).utf8))
            throw ExitCode(error.exitStatus.rawValue)
        }
    }

    private func finish(_ session: MaintenanceSession, confirm: Bool) async throws {
        let target = session.strategy.target.description
        let ask: @Sendable (String?, [(id: String, summary: String)]) async -> Bool = { pnr, steps in
            await Confirmation.askTypedName(target, steps: steps, pointOfNoReturn: pnr)
        }
        let report = try await session.execute(confirm: confirm ? ask : nil)
        if let error = report.error { throw error }
        print("finished")
    }
}

/// The engine's second, test-only strategy: three ConfigMap steps (create, patch, delete with a
/// uid precondition, the point of no return), run by the same session as recreate.
struct DemoStrategy: Strategy {
    let namespace: String
    let window: PlanWindow?
    let lease: Bool
    let delay: Double

    var kind: String { "engine-demo" }
    var planName: String { "engine-demo" }
    /// The "plan" is the namespace: another namespace is another plan.
    var canonicalPlan: Data { Data(#"{"namespace":"\#(namespace)","strategy":"engine-demo"}"#.utf8) }
    var kubeContext: String? { nil }
    var target: MaintenanceTarget { MaintenanceTarget(namespace: namespace, name: demoName, lease: lease) }

    func steps(for run: RunInfo) -> [any Step] {
        [CreateConfigMap(namespace: namespace, run: run.id), PatchConfigMap(namespace: namespace), DeleteConfigMap(namespace: namespace, delay: delay)]
    }

    func bindings(_ client: KubeClient) async throws -> [String: String] {
        ["namespace/\(namespace)": Namespace(try await client.get(.namespaces, named: namespace)).uid]
    }

    func summary(of run: FinishedRun, client: KubeClient) async -> RunSummary { RunSummary(headline: "\(target.description) done") }
    func liveState(_ client: KubeClient) async throws -> [String: String] { [:] }
    func describe(file: String) -> String { "engine demo in \(namespace)\n" }
    func runbook(planFile: String, evidence: RunbookEvidence?) -> String { "" }
}

let demoName = "engine-demo"

/// The one fact the demo journals: the uid of the ConfigMap it created.
enum DemoFact {
    static let uid = Fact<String>("uid")
}

struct CreateConfigMap: Step {
    let namespace: String
    let run: String
    var id: String { "create" }
    var mutates: Bool { true }
    var summary: String { "create configmap \(namespace)/\(demoName)" }
    var estimate: Duration { .seconds(5) }
    var permissions: [KubeClient.AccessQuestion] { ["get", "create", "delete"].map { .init($0, .configMaps, namespace: namespace) } }

    /// The ConfigMap this run created goes (uid-guarded).
    func undo(_ context: StepContext) async throws -> [String] {
        guard let uid = context.facts[DemoFact.uid],
              let object = try await context.client.getIfPresent(.configMaps, named: demoName, in: namespace),
              ObjectMeta(object["metadata"] ?? [:]).uid == uid else { return [] }
        try await context.mutate("DELETE", ResourceType.configMaps.path(namespace: namespace, name: demoName), precondition: uid) {
            try await context.client.delete(.configMaps, named: demoName, in: namespace, uid: uid)
        }
        return ["configmap \(namespace)/\(demoName) deleted"]
    }

    func observe(_ context: StepContext) async throws -> Bool {
        guard let object = try await context.client.getIfPresent(.configMaps, named: demoName, in: namespace) else {
            // Gone after this run created it: a later step deleted it, the goal held.
            return context.facts[DemoFact.uid] != nil
        }
        let meta = ObjectMeta(object["metadata"] ?? [:])
        guard meta.annotations["repave/run-id"] == run else {
            throw RepaveError(.demoForeign, "configmap \(namespace)/\(demoName) was not created by this run")
        }
        if context.facts[DemoFact.uid] == nil { try await context.remember(DemoFact.uid, meta.uid) }
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
        try await context.remember(DemoFact.uid, ObjectMeta(created["metadata"] ?? [:]).uid)
    }
}

struct PatchConfigMap: Step {
    let namespace: String
    var id: String { "patch" }
    var mutates: Bool { true }
    var summary: String { "mark configmap \(namespace)/\(demoName) patched" }
    var estimate: Duration { .seconds(5) }
    var permissions: [KubeClient.AccessQuestion] { ["get", "patch"].map { .init($0, .configMaps, namespace: namespace) } }

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
    var permissions: [KubeClient.AccessQuestion] { ["get", "delete", "list", "watch"].map { .init($0, .configMaps, namespace: namespace) } }

    func observe(_ context: StepContext) async throws -> Bool {
        try await context.client.getIfPresent(.configMaps, named: demoName, in: namespace) == nil
    }

    func apply(_ context: StepContext) async throws {
        guard let uid = context.facts[DemoFact.uid] else {
            throw RepaveError(.demoNoUID, "no recorded uid to delete")
        }
        try await context.crossPointOfNoReturn()
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
