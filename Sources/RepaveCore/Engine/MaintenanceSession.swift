import Blocking
import Foundation
import Journal
import KubeAPI
import Logging
import Synchronization

/// One run of any strategy, from its creation to its outcome: the permission check, the header
/// that binds it, its journal and `plan.json`, the operator's consent, the Lease, interruption,
/// resume, abort and the server dry run. Commands parse, confirm and render; the lab's engine
/// demo runs its own strategy through the same session.
public struct MaintenanceSession: Sendable {
    public let strategy: any Strategy
    public let client: KubeClient
    public let directory: String
    public let journal: Journal
    /// Whether this process checked every permission a moment ago (a fresh run does, before it
    /// makes the journal), so the preflight step does not ask again.
    let permissionsChecked: Bool
    /// Continues a run that had changed something (false: a fresh run, or one starting over).
    public let resuming: Bool
    let logger: Logger

    public var run: RunInfo { RunInfo(id: journal.run, directory: directory, permissionsChecked: permissionsChecked) }

    // MARK: - create and reopen

    /// A new run: every permission checked first (all missing ones listed at once), then the
    /// header that binds it (plan digest, cluster, the target's uid), the journal, the plan as
    /// approved (`plan.json`, what resume reads), and the consent `--yes` gave.
    /// - Parameter directory: the run directory to create (`RunDirectory.name(plan:)` under the
    ///   state root, for `repave run`).
    public static func start(_ strategy: any Strategy, client: KubeClient, directory: String, consentGiven: Bool,
                             logger: Logger = Logger(label: "repave.run")) async throws -> MaintenanceSession {
        // The cluster's identity is read first: that read answers the permission question about
        // it (`get namespaces kube-system`, by name), so it costs no review of its own.
        var cluster: RunHeader.Cluster?
        var answered: [KubeClient.AccessQuestion: Bool] = [:]
        do {
            cluster = try await RunHeader.identify(client)
            answered[identityQuestion] = true
        } catch let error as KubeAPIError where error.reason == .forbidden {
            answered[identityQuestion] = false
        }
        try await checkPermissions(strategy.permissions(), client: client, answered: answered)
        guard let cluster else { throw RepaveError(.internal, "the cluster's identity was not read") }
        let header = RunHeader(strategy: strategy.kind, plan: strategy.planName, planDigest: strategy.planDigest,
                               cluster: cluster, targets: try await strategy.bindings(client),
                               tlsVerified: client.connection.tls.verification == .verify)
        let plan = strategy.canonicalPlan
        let journal = try await offPool("journal create") { () throws(JournalError) -> Journal in
            let journal = try Journal.create(directory: directory, run: UUID().uuidString.lowercased(), header: header)
            try RunDirectory.writeAtomically(plan, to: directory + "/plan.json")
            return journal
        }
        if consentGiven { try await EngineRecord.confirmed(by: "--yes").append(to: journal, step: nil) }
        return MaintenanceSession(strategy: strategy, client: client, directory: directory, journal: journal,
                                  permissionsChecked: true, resuming: false, logger: logger)
    }

    /// What `resume` needs to know before it connects: whether the run changed anything yet (if
    /// not, it starts over, with the window and the confirmation a run has) and whether the
    /// operator already consented.
    public struct Resumable: Sendable {
        public let history: RunHistory
        public var startingOver: Bool { !history.state.changed }
        /// A run starting over asks again unless the operator answered, or gave --yes, before.
        public func mustConfirm(yes: Bool) -> Bool { startingOver && !yes && !history.confirmed }
    }

    /// Reads a run's journal for resuming: an aborted run is refused.
    public static func resumable(_ journal: Journal, directory: String) throws -> Resumable {
        let history = try RunHistory(journal.records)
        if history.aborted != nil {
            throw RepaveError(.resumeAborted, "\(directory) was aborted: what it changed was put back, so there is nothing to resume",
                              hint: "start a new run: repave run PLAN")
        }
        // The run finished and finalize is deleting the volume it kept: going forward again
        // would find that volume gone and report it lost.
        if history.finalizing {
            throw RepaveError(.resumeFinalized, "finalize has begun on \(directory): the run finished, there is nothing to resume",
                              hint: "finish deleting the kept volume with 'repave finalize \(directory)'")
        }
        // Rollback moved (or is moving) the claim back to its old volume: going forward would
        // move it again.
        if history.rollingBack {
            throw RepaveError(.resumeRolledBack, "rollback has begun on \(directory): the run is not resumed forward",
                              hint: history.rolledBack == nil ? "finish it with 'repave rollback \(directory)'" : "it is rolled back; 'repave finalize \(directory)' deletes the new volume it left")
        }
        // An abort that began and did not finish may have put back Retain already: going forward
        // now could delete the claim of a volume set to be deleted with it.
        if history.entries.contains(where: { $0.record.step == Self.abortStep }) {
            throw RepaveError(.resumeAborted, "an abort of \(directory) began and did not finish: the run is not resumed forward",
                              hint: "finish it with 'repave abort \(directory)'")
        }
        return Resumable(history: history)
    }

    /// An existing run, to resume: refused when its binding changed (another plan, cluster or
    /// target object) unless the operator accepts that, which is journaled.
    /// - Parameter storedPlan: the bytes of the run's `plan.json`. A run begun before schema 2
    ///   is compared against their hash, the digest it recorded then.
    /// - Parameter bindingChecked: false for `abort`, which puts back what the run saved, by uid,
    ///   whatever else changed.
    public static func reopen(_ strategy: any Strategy, journal: Journal, directory: String, client: KubeClient, storedPlan: Data?,
                              acceptChanged: Bool, bindingChecked: Bool = true,
                              logger: Logger = Logger(label: "repave.run")) async throws -> MaintenanceSession {
        let history = try RunHistory(journal.records)
        guard bindingChecked else {
            return MaintenanceSession(strategy: strategy, client: client, directory: directory, journal: journal,
                                      permissionsChecked: false, resuming: history.state.changed, logger: logger)
        }
        let recorded = history.header
        var current = recorded
        current.planDigest = planDigest(recorded: recorded, strategy: strategy, storedPlan: storedPlan)
        current.cluster = try await RunHeader.identify(client)
        // Before the point of no return the targets must still be the objects the run started
        // with (after it, the run itself replaced them, and its steps tell ours from another's).
        if !history.crossedPointOfNoReturn {
            for (key, uid) in try await strategy.bindings(client) { current.targets[key] = uid }
        }
        let problems = recorded.mismatches(current)
        if !problems.isEmpty {
            guard acceptChanged else {
                throw RepaveError(.resumeChanged, "resume refused: the run's binding changed", causes: problems,
                                  hint: "if you are sure, pass --accept-changed-plan (it is journaled)")
            }
            try await EngineRecord.override(accepted: problems.joined(separator: "; ")).append(to: journal, step: nil)
        }
        return MaintenanceSession(strategy: strategy, client: client, directory: directory, journal: journal,
                                  permissionsChecked: false, resuming: history.state.changed, logger: logger)
    }

    /// The digest resume compares with the one the run recorded: the plan's now. A run begun
    /// before schema 2 hashed its own spelling of the plan (`kind: RecreatePlan`), which
    /// `plan.json` holds byte for byte: when those bytes still hash to the recorded digest, the
    /// plan is the one the run began with.
    static func planDigest(recorded: RunHeader, strategy: any Strategy, storedPlan: Data?) -> String {
        if recorded.schema < 2, let storedPlan, SHA256.hex(of: storedPlan) == recorded.planDigest { return recorded.planDigest }
        return strategy.planDigest
    }

    // MARK: - run

    /// What a run ended with: finished (with the strategy's summary lines), or the error to
    /// report — already carrying the exit status the session's rules give it.
    public struct Report: Sendable {
        public let directory: String
        public let summary: RunSummary?
        public let error: RepaveError?
    }

    /// Runs (or resumes) the steps under the Lease until they finish or something stops them.
    /// - Parameters:
    ///   - confirm: asks the operator once, before the first change (nil: no question, as with
    ///     `--yes`); gets the point of no return's step id and the steps.
    ///   - progress: what happens as it happens, for `--progress`.
    public func execute(confirm: (@Sendable (_ pointOfNoReturn: String?, _ steps: [(id: String, summary: String)]) async -> Bool)?,
                        progress: @escaping @Sendable (ProgressEvent) -> Void = { _ in },
                        interruption: Interruption = Interruption()) async throws -> Report {
        let history = try RunHistory(journal.records)
        let steps = strategy.steps(for: run)
        let summaries = steps.map { (id: $0.id, summary: $0.summary) }
        let target = strategy.target
        let lock = target.lease ? ClusterLock(client: client, namespace: target.namespace, claim: target.name, holder: journal.run, duration: Self.leaseDuration) : nil
        let started = ContinuousClock.now
        let seen = FirstSeen()
        let runner = Runner(
            steps: steps, journal: journal, facts: resuming ? history.facts : Facts(), client: client, interruption: interruption,
            window: strategy.window, lock: lock, logger: logger,
            confirm: { pnr in await confirm?(pnr, summaries) ?? true },
            progress: { event in
                if case .step(let id, _) = event { seen.mark(id, at: ContinuousClock.now - started) }
                progress(event)
            })
        let resuming = self.resuming
        let task = Task { await runner.run(resuming: resuming, state: history.state, confirmationRequired: confirm != nil) }
        interruption.install { task.cancel() }
        switch await task.value {
        case .finished:
            // Every record, the ones this process appended included: no need to read the file again.
            let records = journal.records
            // Downtime as this process measured it (a fresh run did all of it); after a resume,
            // the journal's times, since the workload may have gone down in an earlier process.
            let measured = resuming ? nil : seen.downtime().map { ($0, ContinuousClock.now - started) }
            let finished = FinishedRun(directory: directory, records: records, measured: measured, reads: runner.context.keptReads)
            let summary = await strategy.summary(of: finished, client: client)
            return Report(directory: directory, summary: summary, error: nil)
        case .refused(let reason, let failure):
            if let failure = (failure as? any UserFacingError).map(Self.userFacing) {
                return Report(directory: directory, summary: nil, error: RepaveError(
                    failure.code, failure.message, causes: failure.causes + ["nothing was changed"], hint: failure.hint, exitStatus: .refused))
            }
            return Report(directory: directory, summary: nil, error: RepaveError(.runRefused, "refused before changing anything", causes: [reason]))
        case .stopped(let reason, let failure):
            let resume = "then: repave resume \(directory)"
            if let failure = (failure as? any UserFacingError).map(Self.userFacing) {
                return Report(directory: directory, summary: nil, error: RepaveError(
                    failure.code, failure.message, causes: failure.causes,
                    hint: (failure.hint.map { $0 + "; " } ?? "fix the cause, ") + resume, exitStatus: .stoppedMidRun))
            }
            return Report(directory: directory, summary: nil, error: RepaveError(.runStopped, "the run stopped", causes: [reason], hint: "fix the cause, \(resume)"))
        case .interrupted(let signal):
            return Report(directory: directory, summary: nil, error: RepaveError(
                .runInterrupted, "interrupted by signal \(signal) after the last journal record was written",
                hint: "repave resume \(directory)", exitStatus: signal == SIGINT ? .interrupted : .terminated))
        }
    }

    /// A step's error with its code from the catalog.
    private static func userFacing(_ error: any UserFacingError) -> (code: ErrorCode, message: String, causes: [String], hint: String?) {
        let code = (error as? RepaveError)?.errorCode ?? ErrorCode.all.first { $0.name == error.code } ?? .runStopped
        return (code, error.message, error.causes, error.hint)
    }

    /// The Lease's duration: 60 s. Debug builds take `REPAVE_LEASE_SECONDS`, so a test can hold
    /// the confirmation open longer than a short Lease and see it renewed meanwhile.
    static var leaseDuration: Duration {
        #if DEBUG
        if let text = ProcessInfo.processInfo.environment["REPAVE_LEASE_SECONDS"], let seconds = Int(text), seconds > 0 { return .seconds(seconds) }
        #endif
        return .seconds(60)
    }

    // MARK: - abort

    /// The step name abort's records carry.
    static let abortStep = "abort"

    /// `repave abort`: before the point of no return, each applied step's `undo`, last step
    /// first (each change journaled like any other); then the Lease is released and the run
    /// recorded as aborted. After the point of no return only `resume` goes forward.
    public func abort() async throws -> [String] {
        let history = try RunHistory(journal.records)
        // The step that is the point of no return done, applied or with an answer outstanding:
        // past it, whatever the journal says about the record itself.
        let state = history.state
        let pastIt = strategy.steps(for: run).filter(\.isPointOfNoReturn).map(\.id)
            .contains { state.done.contains($0) || state.applied.contains($0) || state.dangling == $0 }
        if history.crossedPointOfNoReturn || pastIt {
            let hint = history.rolledBack != nil ? "it was rolled back: the claim is on its old volume; 'repave finalize \(directory)' deletes the new one"
                : history.rollingBack ? "finish the rollback with 'repave rollback \(directory)'"
                : "finish it with 'repave resume \(directory)', or once the claim is on the new volume take it back with 'repave rollback \(directory)'"
            throw RepaveError(.abortPastPointOfNoReturn, "the run has passed its point of no return: abort cannot undo it", hint: hint)
        }
        if history.finished {
            throw RepaveError(.abortEnded, "the run has already finished: there is nothing to abort")
        }
        // Aborting again (say after the first abort was killed once done) changes nothing; resume
        // refuses an aborted run, so nothing can have changed after it.
        if let undone = history.aborted { return undone.isEmpty ? [] : ["already aborted: " + undone] }
        // Passing failures (a conflict with the controller updating the workload, a lost
        // answer) are tried again from the top: every undo reads before it writes.
        return try await TransientFailure.retrying("abort", logger: logger) {
            let context = StepContext(client: client, journal: journal, dryRun: false, facts: try RunHistory(journal.records).facts, logger: logger)
            context.update { $0.currentStep = Self.abortStep }
            var report: [String] = []
            for step in strategy.steps(for: run).reversed() { report += try await step.undo(context) }
            let target = strategy.target
            if target.lease {
                let lock = ClusterLock(client: client, namespace: target.namespace, claim: target.name, holder: journal.run)
                try await journal.appendLock(lock, intent: "release")
                try await lock.release()
            }
            try await EngineRecord.aborted(undone: report.joined(separator: "; ")).append(to: journal, step: nil)
            return report
        }
    }

    // MARK: - plan: the preflight and the server dry run

    /// `repave plan`: the preflight step (read-only); with `writes` (`--server-dry-run`) every
    /// step rehearsed, each change sent with dryRun=All, so admission, RBAC, quotas and webhooks
    /// are checked by the API server itself. Nothing is stored; the scratch journal is removed.
    /// A refused preflight throws its refusal.
    public static func rehearse(_ strategy: any Strategy, client: KubeClient, writes: Bool,
                                logger: Logger = Logger(label: "repave.dry-run")) async throws -> [CheckResult] {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("repave-dry-run-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let journal = try await offPool("journal create") { () throws(JournalError) in try Journal.create(directory: scratch + "/run", run: "dry-run", header: ["dryRun": true]) }
        let context = StepContext(client: client, journal: journal, dryRun: true, facts: Facts(), logger: logger)
        var results: [CheckResult] = []
        for step in strategy.steps(for: RunInfo(id: "dry-run", directory: scratch + "/run")) {
            guard writes || step.id == preflightStepID else { continue }
            context.update { $0.currentStep = step.id }
            results += try await step.rehearse(context)
        }
        return results
    }

    // MARK: - permissions

    /// What `RunHeader.identify` reads.
    static let identityQuestion = KubeClient.AccessQuestion("get", .namespaces, name: "kube-system")

    /// What the session itself uses: the cluster's identity (`kube-system`) and the Lease.
    static func permissions(lease namespace: String?) -> [KubeClient.AccessQuestion] {
        var questions: [KubeClient.AccessQuestion] = [identityQuestion]
        if let namespace { questions += ["get", "create", "update", "delete"].map { .init($0, .leases, namespace: namespace) } }
        return questions
    }

    /// Asks the API server about every permission at once; refuses listing all that are missing,
    /// with the Role rules that would grant them. Namespaced questions: one rules review per
    /// namespace (single reviews when the authorizer cannot list rules); cluster-scoped ones: one
    /// review each. A rules review cannot answer those: it lists the rules of the namespace's
    /// RoleBindings together with the ClusterRoleBindings' without saying which is which, and a
    /// RoleBinding to a ClusterRole naming `persistentvolumes` grants nothing on them.
    /// - Parameter answered: questions the caller has answered by doing what they ask (a read
    ///   that succeeded, or was forbidden): not asked again.
    public static func checkPermissions(_ questions: [KubeClient.AccessQuestion], client: KubeClient,
                                        answered: [KubeClient.AccessQuestion: Bool] = [:]) async throws {
        var missing: [KubeClient.AccessQuestion] = []
        var rulesByNamespace: [String: [KubeClient.AccessRule]?] = [:]
        for question in questions {
            var allowed: Bool
            if let known = answered[question] {
                allowed = known
            } else if let namespace = question.namespace {
                if rulesByNamespace[namespace] == nil { rulesByNamespace[namespace] = .some(try await client.rulesReview(in: namespace)) }
                if let known = rulesByNamespace[namespace] ?? nil {
                    allowed = known.contains { $0.allows(question) }
                } else {
                    allowed = try await client.accessReview(question).allowed
                }
            } else {
                allowed = try await client.accessReview(question).allowed
            }
            if !allowed { missing.append(question) }
        }
        guard !missing.isEmpty else { return }
        // A subresource (`pods/log`) is named as RBAC names it.
        func resource(_ question: KubeClient.AccessQuestion) -> String { question.type.plural + (question.subresource.map { "/" + $0 } ?? "") }
        let lines = missing.map { "\($0.verb) \($0.type)" + ($0.subresource.map { "/" + $0 } ?? "") + ($0.namespace.map { " in \($0)" } ?? " (cluster-wide)") }
        var grouped: [String: [String]] = [:]
        for question in missing {
            grouped["\(question.type.group)|\(resource(question))|\(question.namespace ?? "*")", default: []].append(question.verb)
        }
        let rules = grouped.sorted { $0.key < $1.key }.map { key, verbs in
            let parts = key.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            return "{apiGroups: [\"\(parts[0])\"], resources: [\(parts[1])], verbs: [\(verbs.joined(separator: ", "))]}" + (parts[2] == "*" ? " (ClusterRole)" : " (Role in \(parts[2]))")
        }
        throw RepaveError(.permissions, "the user may not do everything the run needs: missing \(missing.count) permissions",
                          causes: lines, hint: "grant these rules (see deploy/rbac.yaml): " + rules.joined(separator: "; "))
    }
}

/// When this process first began each step, for the downtime it measured.
private final class FirstSeen: Sendable {
    private let seen = Mutex<[String: Duration]>([:])
    func mark(_ step: String, at elapsed: Duration) { seen.withLock { if $0[step] == nil { $0[step] = elapsed } } }
    /// From scale-down to verify (the workloads stopped until they are back), when both ran here.
    func downtime() -> Duration? {
        seen.withLock { seen in seen["scale-down"].flatMap { down in seen["verify"].map { $0 - down } } }
    }
}
