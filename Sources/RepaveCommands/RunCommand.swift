import ArgumentParser
import Curl
import Foundation
import Journal
import KubeAPI
import Logging
import RepaveCore
import Synchronization

/// `repave run PLAN`: executes the recreate strategy, journaled, asking once (on a terminal)
/// before the first change.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Recreate the plan's claim: preflight, then the steps, journaled and resumable.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The plan file.")
    var plan: String

    @Flag(help: "Do not ask for the typed confirmation (required without a terminal).")
    var yes = false

    @Option(name: .customLong("state-dir"), help: "Where run directories go (default: $XDG_STATE_HOME/repave/runs).")
    var stateDirectory: String?

    @Option(name: .customLong("window-start"), help: "Override the plan's window start: 'now' or an RFC 3339 time (tests, demos).")
    var windowStart: String?

    func run() async throws {
        var parsed = try RecreatePlan.load(contentsOf: plan)
        if let windowStart {
            let start: Date
            if windowStart == "now" { start = Date() } else {
                guard let date = try? Date(windowStart, strategy: .iso8601) else { throw ValidationError("--window-start: '\(windowStart)' is not 'now' or an RFC 3339 time") }
                start = date
            }
            parsed.window = .init(start: start, duration: parsed.window?.duration ?? PlanDuration(minutes: 45))
        }
        guard yes || Confirmation.isInteractive else {
            throw RepaveError(code: "run.no-terminal", "refusing to change the cluster without a terminal to confirm on",
                              hint: "run it on a terminal, or pass --yes", exitStatus: .refused)
        }
        let session = try await RunSession.connect(global: global, plan: parsed)
        // Permissions before anything else is read: all missing ones listed at once.
        let recreate = Recreate(plan: parsed, run: "", runDirectory: "")
        try await recreate.checkPermissions(session.client, workloads: recreate.plannedWorkloadsOrAny)
        let identity = try await RunHeader.identify(session.client)
        let claim = try await session.client.getIfPresent(.persistentVolumeClaims, named: parsed.target.claim, in: parsed.target.namespace)
        let header = RunHeader(plan: parsed.name, planDigest: parsed.digest, cluster: identity,
                               targets: claim.map { [RunHeader.claimTarget(namespace: parsed.target.namespace, claim: parsed.target.claim): PersistentVolumeClaim($0).uid] } ?? [:],
                               tlsVerified: session.client.connection.tls.verification == .verify)
        let root = stateDirectory ?? RunDirectory.root()
        let directory = root + "/" + RunDirectory.name(plan: parsed.name)
        let journal = try Journal.create(directory: directory, run: UUID().uuidString.lowercased(), header: header)
        // The plan as approved, beside its journal: resume reads this copy, not the file.
        try RunDirectory.writeAtomically(parsed.canonicalJSON(), to: directory + "/plan.json")
        // The operator's consent, for a resume that has to start over.
        if yes { try journal.append(kind: "confirmed", data: ["by": "--yes"]) }
        FileHandle.standardError.write(Data("run \(directory)\n".utf8))
        try await RunSession.execute(session, plan: parsed, journal: journal, directory: directory, resuming: false,
                                     permissionsChecked: true, confirm: !yes, json: global.output == .json)
    }
}

/// `repave resume RUN`: continues a stopped run from its journal.
struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume", abstract: "Continue a stopped run from its journal.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The run directory or name.")
    var run: String

    @Flag(name: .customLong("accept-changed-plan"), help: "Resume although the cluster or targets changed since the run started (journaled).")
    var acceptChanged = false

    @Flag(help: "A run that stopped before its first change starts over, and asks the confirmation 'run' asks; --yes answers it.")
    var yes = false

    func run() async throws {
        let directory = RunLocator.resolve(run)
        let journal = try Journal.open(directory: directory)
        if let copy = journal.repairedCopy {
            FileHandle.standardError.write(Data("note: the journal's torn last record was cut away (copy: \(copy))\n".utf8))
        }
        let plan = try RunLocator.plan(in: directory, journal: journal)
        if journal.records.contains(where: { $0.kind == "aborted" }) {
            throw RepaveError(code: "resume.aborted", "\(directory) was aborted: what it changed was put back, so there is nothing to resume",
                              hint: "start a new run: repave run PLAN", exitStatus: .journalRefused)
        }
        // Nothing changed yet (declined, refused, or stopped before its first change): this is a
        // run starting over, with the window a run has, and its confirmation unless the operator
        // gave it already (answered, or --yes at the start).
        let startingOver = !Runner.state(of: journal.records).changed
        let mustConfirm = startingOver && !yes && !journal.records.contains { $0.kind == "confirmed" }
        guard !mustConfirm || Confirmation.isInteractive else {
            throw RepaveError(code: "run.no-terminal", "the run changed nothing yet, so resuming it asks for the confirmation 'run' asks, and there is no terminal to ask on",
                              hint: "resume it on a terminal, or pass --yes", exitStatus: .refused)
        }
        let recorded = try journal.records[0].decode(RunHeader.self)
        let session = try await RunSession.connect(global: global, plan: plan)
        var current = recorded
        current.planDigest = plan.digest
        current.cluster = try await RunHeader.identify(session.client)
        // Before the point of no return the claim must still be the one the run started with
        // (after it, the run itself replaced it, and create-claim tells ours from another's).
        if !journal.records.contains(where: { $0.kind == "pnr" }) {
            let key = RunHeader.claimTarget(namespace: plan.target.namespace, claim: plan.target.claim)
            current.targets[key] = try await session.client.getIfPresent(.persistentVolumeClaims, named: plan.target.claim, in: plan.target.namespace)
                .map { PersistentVolumeClaim($0).uid }
        }
        let problems = recorded.mismatches(current)
        if !problems.isEmpty {
            guard acceptChanged else {
                throw RepaveError(code: "resume.changed", "resume refused: the run's binding changed", causes: problems,
                                  hint: "if you are sure, pass --accept-changed-plan (it is journaled)", exitStatus: .journalRefused)
            }
            try journal.append(kind: "override", data: ["accepted": problems.joined(separator: "; ")])
        }
        try await RunSession.execute(session, plan: plan, journal: journal, directory: directory, resuming: !startingOver,
                                     permissionsChecked: false, confirm: mustConfirm, json: global.output == .json)
    }
}

/// `repave abort RUN`: before the point of no return, undo what the run changed.
struct AbortCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abort", abstract: "Before the point of no return: put the workloads and the old volume back as they were.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The run directory or name.")
    var run: String

    func run() async throws {
        let directory = RunLocator.resolve(run)
        let journal = try Journal.open(directory: directory)
        let plan = try RunLocator.plan(in: directory, journal: journal)
        let session = try await RunSession.connect(global: global, plan: plan)
        let undone = try await Recreate(plan: plan, run: journal.run, runDirectory: directory).abort(journal: journal, client: session.client)
        print(undone.isEmpty ? "aborted: nothing had been changed" : "aborted:\n" + undone.map { "  \($0)" }.joined(separator: "\n"))
    }
}

extension AbortCommand: GlobalOptionsCarrier {}

/// What `run` and `resume` share: connecting, running the steps, reporting, exit statuses.
enum RunSession {
    struct Connected {
        let client: KubeClient
    }

    static func connect(global: GlobalOptions, plan: RecreatePlan) async throws -> Connected {
        let connection = try KubeconfigLoader(explicitPath: global.kubeconfig, context: global.context ?? plan.context).load()
        let client = try KubeClient(connection: connection, userAgent: RepaveVersion.userAgent, logger: Logger(label: "repave"))
        return Connected(client: client)
    }

    /// For commands that also work without a cluster: a kubeconfig problem's hint names the
    /// offline form of the command.
    static func connect(global: GlobalOptions, plan: RecreatePlan, offline command: String) async throws -> Connected {
        do {
            return try await connect(global: global, plan: plan)
        } catch where ErrorRenderer.isOurs(error) {
            let error = ErrorRenderer.userFacing(error)
            throw RepaveError(code: error.code, error.message, causes: error.causes,
                              hint: (error.hint.map { $0 + "; " } ?? "") + "or without the cluster: \(command)", exitStatus: error.exitStatus)
        }
    }

    /// - Parameter permissionsChecked: this process checked every permission a moment ago (`run`
    ///   does, before it makes the journal), so the preflight step does not ask again.
    static func execute(_ session: Connected, plan: RecreatePlan, journal: sending Journal, directory: String, resuming: Bool,
                        permissionsChecked: Bool, confirm: Bool, json: Bool) async throws {
        let steps = Recreate(plan: plan, run: journal.run, runDirectory: directory, permissionsChecked: permissionsChecked).steps()
        let lock = ClusterLock(client: session.client, namespace: plan.target.namespace, claim: plan.target.claim, holder: journal.run)
        let interruption = Interruption()
        let target = "\(plan.target.namespace)/\(plan.target.claim)"
        let summaries = steps.map { (id: $0.id, summary: $0.summary) }
        let started = ContinuousClock.now
        let firstSeen = Mutex<[String: Duration]>([:])   // step -> when this process began it
        let runner = Runner(
            steps: steps, journal: journal, client: session.client, interruption: interruption, window: plan.window, lock: lock,
            confirm: { pnr in Confirmation.askTypedName(target, steps: summaries, pointOfNoReturn: pnr) },
            progress: { id, summary in
                let elapsed = ContinuousClock.now - started
                firstSeen.withLock { if $0[id] == nil { $0[id] = elapsed } }
                FileHandle.standardError.write(Data("[\(String(format: "%6.1f", elapsed.inSeconds))s] \(id): \(summary)\n".utf8))
            })
        let task = Task {
            let outcome = await runner.run(resuming: resuming, confirmationRequired: confirm)
            return (outcome, runner.failure)
        }
        interruption.install { task.cancel() }
        let (outcome, failure) = await task.value
        switch outcome {
        case .finished:
            if json {
                let object: [String: Any] = ["result": "finished", "run": directory, "claim": target, "storageClass": plan.storageClass.name]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print("finished: \(target) recreated on storageclass \(plan.storageClass.name) (run \(directory))")
                // Downtime as this process measured it (a fresh run did all of it); after a resume, the
                // journal's times, since the workload may have gone down in an earlier process.
                let seen = firstSeen.withLock { $0 }
                let measured = resuming ? nil : seen["scale-down"].flatMap { down in seen["verify"].map { $0 - down } }
                for line in await summary(plan: plan, directory: directory, client: session.client,
                                          measured: measured.map { ($0, ContinuousClock.now - started) }) { print("  " + line) }
            }
        case .refused(let reason):
            if let failure = failure as? any UserFacingError {
                throw RepaveError(code: failure.code, failure.message, causes: failure.causes + ["nothing was changed"], hint: failure.hint, exitStatus: .refused)
            }
            throw RepaveError(code: "run.refused", "refused before changing anything", causes: [reason], exitStatus: .refused)
        case .stopped(let reason):
            let resume = "then: repave resume \(directory)"
            if let failure = failure as? any UserFacingError {
                throw RepaveError(code: failure.code, failure.message, causes: failure.causes,
                                  hint: (failure.hint.map { $0 + "; " } ?? "fix the cause, ") + resume, exitStatus: .stoppedMidRun)
            }
            throw RepaveError(code: "run.stopped", "the run stopped", causes: [reason], hint: "fix the cause, \(resume)", exitStatus: .stoppedMidRun)
        case .interrupted(let signal):
            throw RepaveError(code: "run.interrupted", "interrupted by signal \(signal) after the last journal record was written",
                              hint: "repave resume \(directory)", exitStatus: signal == SIGINT ? .interrupted : .terminated)
        }
    }
}

extension RunSession {
    /// What the operator reports after the window: old and new claim uid, class, the Longhorn
    /// volume's replicas and robustness now, the downtime and the whole run as the journal
    /// measured them, and what became of the old volume.
    static func summary(plan: RecreatePlan, directory: String, client: KubeClient, measured: (downtime: Duration, total: Duration)?) async -> [String] {
        guard let records = try? Journal.read(directory: directory).records else { return [] }
        let facts = Runner.facts(in: records)
        let times = RunbookEvidence.PreviousRun(directory: directory, records: records.map { ($0.time, $0.kind, $0.step) })
        var lines = ["claim:      old uid \(facts[Recreate.Fact.claimUID] ?? "?") -> new uid \(facts[Recreate.Fact.newClaimUID] ?? "?")"]
        let claim = try? await client.getIfPresent(.persistentVolumeClaims, named: plan.target.claim, in: plan.target.namespace).map(PersistentVolumeClaim.init)
        if let volume = claim?.volumeName,
           let longhorn = try? await client.getIfPresent(.longhornVolumes, named: volume, in: plan.verify.namespace).map(LonghornVolume.init) {
            lines.append("volume:     \(volume) on \(claim?.storageClassName ?? "?"): \(longhorn.numberOfReplicas) replicas, \(longhorn.robustness.isEmpty ? "robustness unknown" : longhorn.robustness)")
        }
        if let measured {
            lines.append(String(format: "downtime:   %.1fs (scale-down to the workloads back); whole run %.1fs", measured.downtime.inSeconds, measured.total.inSeconds))
        } else {
            lines.append("downtime:   \(times.downtime.map(\.description) ?? "none") (scale-down to the workloads back, from the journal's whole-second times); whole run \(times.total)")
        }
        if let old = facts[Recreate.Fact.volume] {
            lines.append("old volume: \(old) " + (facts[Recreate.Fact.oldVolumeLost].map { "GONE: \($0)" }
                ?? (plan.oldVolume == .delete ? "deleted" : "retained (delete it later with the commands above)")))
        }
        return lines
    }
}

extension RunCommand: GlobalOptionsCarrier {}
extension ResumeCommand: GlobalOptionsCarrier {}
