import Foundation
import Journal
import KubeAPI

/// `repave finalize`: once the operator is satisfied with a finished run, the volume the run kept
/// (and its claim no longer uses) is deleted with its Longhorn volume, uid-guarded, under the
/// run's Lease, journaled into the run's own directory. Interrupted, the same command carries on:
/// every step looks at the cluster before it changes anything.
extension MaintenanceSession {
    /// The step name finalize's own records carry (its steps are `finalize-…`).
    public static let finalizeStep = "finalize"

    /// What finalize did, or found done.
    public struct Finalized: Sendable {
        public var volume: String
        /// What was deleted or found already gone, one line each.
        public var lines: [String]
        /// The journal said finalize had finished already: nothing was sent.
        public var alreadyDone: Bool
    }

    /// Which of the run commands the journal allows now, and why the others are not (for
    /// `repave status`).
    public static func allowedCommands(_ history: RunHistory, strategy: (any Strategy)?, run: String) -> [(command: String, allowed: Bool, why: String)] {
        let finished = history.finished, aborted = history.aborted != nil
        let kept = Self.volumeToFinalize(history, strategy: strategy, run: run)
        let finalize: (Bool, String) =
            if let deleted = history.finalized { (false, "done: deleted \(deleted)") }
            else if history.finalizing { (true, "it began and did not finish: run it again") }
            else if history.rollingBack && history.rolledBack == nil { (false, "rollback has begun: finish it first") }
            else if !finished && history.rolledBack == nil { (false, "the run has not finished") }
            else if let kept { (true, "deletes the " + (history.rolledBack != nil ? "new volume rollback left, " : "kept volume ") + kept.name) }
            else { (false, "the run kept no volume") }
        let resume: (Bool, String) = aborted ? (false, "the run was aborted")
            : history.finalizing ? (false, "finalize has begun") : history.rollingBack ? (false, "rollback has begun")
            : finished ? (false, "the run has finished") : (true, "continues the run")
        let rollback = rollbackAllowed(history, strategy: strategy, run: run)
        let abort: (Bool, String) = aborted ? (false, "already aborted") : finished ? (false, "the run has finished")
            : history.crossedPointOfNoReturn ? (false, "past the point of no return") : (true, "puts back what the run changed")
        return [("resume", resume.0, resume.1), ("abort", abort.0, abort.1), ("rollback", rollback.0, rollback.1),
                ("finalize", finalize.0, finalize.1)]
    }

    /// Deletes the volume the finished run kept: its reclaim policy back to its class's, then its
    /// Longhorn volume, then the PV (``KeptVolume/steps`` says why in this order).
    /// - Parameter confirm: asked once before finalize's first change, with the kept volume and
    ///   the steps (nil: `--yes`); not asked again when finalize already began (the operator
    ///   answered then). False refuses, nothing changed.
    public func finalize(confirm: (@Sendable (KeptVolume, [(id: String, summary: String)], _ pointOfNoReturn: String?) async throws -> Bool)?) async throws -> Finalized {
        let history = try RunHistory(journal.records)
        if let deleted = history.finalized { return Finalized(volume: history.facts[ClaimFact.volume] ?? "", lines: ["already finalized: deleted " + deleted], alreadyDone: true) }
        if history.rollingBack && history.rolledBack == nil {
            throw RepaveError(.finalizeNotFinished, "rollback of \(directory) began and did not finish: which volume is unused is not settled yet",
                              hint: "finish it first: repave rollback \(directory)")
        }
        guard history.finished || history.rolledBack != nil else {
            let next = history.aborted != nil ? "it was aborted: abort put the old volume back as it was"
                : history.crossedPointOfNoReturn ? "finish it first: repave resume \(directory)" : "finish it (repave resume \(directory)) or undo it (repave abort \(directory)) first"
            throw RepaveError(.finalizeNotFinished, "\(directory) has not finished: the volume it kept may still be needed", hint: next)
        }
        guard let kept = Self.volumeToFinalize(history, strategy: strategy, run: journal.run) else {
            throw RepaveError(.finalizeNothingKept, "\(directory) kept no volume: there is nothing to finalize",
                              hint: "its plan had the old volume deleted at the end of the run (oldVolume: delete)")
        }
        let began = history.finalizing
        let steps = kept.steps
        // The steps' own, the Lease, and the claims a kept PV's claimRef may name (the target's namespace).
        let claims = KubeClient.AccessQuestion("get", .persistentVolumeClaims, namespace: strategy.target.namespace)
        try await Self.checkPermissions(Self.permissions(lease: strategy.target.lease ? strategy.target.namespace : nil) + steps.flatMap(\.permissions) + [claims],
                                        client: client, answered: [Self.identityQuestion: true])
        // Refused before anything changes. Once finalize began, a PV gone or replaced is one the
        // cluster's reclaim took after the policy went back (or finalize's own delete): the steps
        // settle what is left.
        let found = try await client.getIfPresent(.persistentVolumes, named: kept.name).map(PersistentVolume.init)
        if !began || found?.uid == kept.uid { try await kept.requireDeletable(found, client: client) }
        let context = StepContext(client: client, journal: journal, dryRun: false, facts: history.facts, logger: logger)
        context.update { $0.currentStep = Self.finalizeStep }
        if !began {
            if let confirm {
                guard try await confirm(kept, steps.map { (id: $0.id, summary: $0.summary) }, steps.first(where: \.isPointOfNoReturn)?.id) else {
                    throw RepaveError(.finalizeDeclined, "the typed name was not \(kept.name): nothing was deleted", hint: "run 'repave finalize \(directory)' again")
                }
                try await EngineRecord.confirmed(by: "operator").append(to: journal, step: Self.finalizeStep)
            } else {
                try await EngineRecord.confirmed(by: "--yes").append(to: journal, step: Self.finalizeStep)
            }
        }
        if context.facts[FinalizeFact.reclaimPolicy] == nil, let found {
            try await context.remember(FinalizeFact.reclaimPolicy, try await classReclaimPolicy(of: found, facts: history.facts))
        }
        let target = strategy.target
        let lock = target.lease ? ClusterLock(client: client, namespace: target.namespace, claim: target.name, holder: journal.run) : nil
        if let lock {
            try await journal.appendLock(lock, intent: "acquire")
            let acquired = try await TransientFailure.retrying("take the cluster lock", logger: logger) { try await lock.acquire() }
            try await journal.appendLock(lock, result: "\(acquired)")
        }
        var lines: [String] = []
        do {
            for step in steps {
                context.update { $0.currentStep = step.id }
                // Passing failures (a conflict, a lost answer) are tried again from a fresh look.
                let changed = try await TransientFailure.retrying(step.id, logger: logger) { () async throws -> Bool in
                    context.forgetReads()
                    if try await step.observe(context) { return false }
                    try await step.apply(context)
                    return true
                }
                lines.append((changed ? "" : "already done: ") + step.summary)
                try await EngineRecord.stepDone.append(to: journal, step: step.id)
            }
        } catch var error as RepaveError {
            // A refusal after finalize changed something (a claim bound the volume since) is a
            // stop, not "nothing changed".
            if journal.records.contains(where: { $0.kind == EngineRecord.Kind.intent.rawValue && $0.step?.hasPrefix(Self.finalizeStep) == true }) {
                error.exitStatus = .stoppedMidRun
                error.hint = (error.hint.map { $0 + "; " } ?? "") + "then run 'repave finalize \(directory)' again"
            }
            throw error
        } catch {
            throw RepaveError(.finalizeStopped, "finalize stopped at \(context.currentStep)", cause: error,
                              hint: "fix the cause, then run 'repave finalize \(directory)' again: it continues from the cluster as it is")
        }
        if let lock {
            try await journal.appendLock(lock, intent: "release")
            try await TransientFailure.retrying("release the cluster lock", logger: logger) { try await lock.release() }
            try await journal.appendLock(lock, result: "released")
        }
        let deleted = "persistentvolume \(kept.name) (uid \(kept.uid))" + (kept.longhornUID.map { " and Longhorn volume \(kept.longhornNamespace)/\(kept.name) (uid \($0))" } ?? "")
        try await EngineRecord.finalized(deleted: deleted).append(to: journal, step: nil)
        return Finalized(volume: kept.name, lines: lines, alreadyDone: false)
    }

    /// The volume finalize deletes: the one the claim no longer uses, the old one after the run,
    /// the new one after a rollback.
    static func volumeToFinalize(_ history: RunHistory, strategy: (any Strategy)?, run: String) -> KeptVolume? {
        if let rolls = strategy as? any RollsBack { return rolls.volumeToFinalize(history, run: run) }
        return (strategy as? any KeepsVolume)?.keptVolume(history.facts, run: run)
    }

    /// The reclaim policy the kept volume's StorageClass gives its volumes; when the class is
    /// gone, the one the volume had before the run set Retain (Delete when that was not saved).
    private func classReclaimPolicy(of volume: PersistentVolume, facts: Facts) async throws -> String {
        if let name = volume.storageClassName, !name.isEmpty,
           let storageClass = try await client.getIfPresent(.storageClasses, named: name).map(StorageClass.init) {
            return storageClass.reclaimPolicy
        }
        return facts[ClaimFact.reclaimPolicy] ?? "Delete"
    }
}
