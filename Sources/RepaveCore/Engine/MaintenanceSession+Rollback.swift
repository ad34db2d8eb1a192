import Blocking
import Foundation
import Journal
import KubeAPI
import Synchronization

/// `repave rollback`: after the swap, the claim's name back on the old volume, on the old class,
/// with its data; the new volume (and what was written on it since the swap) is left, retained,
/// for `repave finalize`. Under the run's Lease, journaled into the run's own directory.
/// Interrupted, the same command carries on: the steps are the run's own (``Rollback``), each
/// observe-then-apply, and a step done is not looked at again.
extension MaintenanceSession {
    /// The step name rollback's own records carry (its steps are `rollback-…`).
    public static let rollbackStep = Rollback.step

    /// What rollback will do, for the confirmation.
    public struct RollbackPreview: Sendable {
        /// `namespace/claim`: what the operator types.
        public var claim: String
        /// The old volume the claim goes back to, and its class.
        public var restored: String
        public var oldClass: String
        /// The new volume the claim leaves, with everything written since the swap.
        public var left: String
        public var steps: [(id: String, summary: String)]
    }

    /// What rollback did, or found done.
    public struct RolledBack: Sendable {
        public var claim: String
        public var restored: String
        public var oldClass: String
        public var left: String
        /// One line per step: done now, or found done.
        public var lines: [String]
        /// The journal said rollback had finished already: nothing was sent.
        public var alreadyDone: Bool
    }

    /// Whether `rollback` may run now, and why (for ``allowedCommands(_:strategy:run:)``).
    static func rollbackAllowed(_ history: RunHistory, strategy: (any Strategy)?, run: String) -> (Bool, String) {
        if history.rolledBack != nil { return (false, "done: the claim is back on its old volume") }
        if history.finalizing || history.finalized != nil { return (false, "finalize has begun: the old volume is gone or going") }
        guard let rolls = strategy as? any RollsBack, rolls.keptVolume(history.facts, run: run) != nil else {
            return (false, strategy is any RollsBack ? "the run kept no old volume to go back to" : "this strategy keeps the claim's volume: there is nothing to roll back")
        }
        if history.rollingBack { return (true, "it began and did not finish: run it again") }
        if history.aborted != nil { return (false, "the run was aborted: the claim is on its old volume") }
        if !history.crossedPointOfNoReturn { return (false, "before the point of no return: abort puts everything back") }
        if !history.swapped { return (false, "the run stopped inside the swap: resume it first") }
        return (true, "puts the claim back on its old volume \(history.facts[ClaimFact.volume] ?? "?")")
    }

    /// Gives the claim's name back to the old volume. Refused (exit 2, nothing changed) before the
    /// point of no return (`abort` is the way back then), inside the swap (`resume` first: the
    /// claim is between volumes), once finalize began, or when the old volume is not there to go
    /// back to. A finished rollback run again changes nothing.
    /// - Parameter confirm: asked once before rollback's first change (nil: `--yes`); not asked
    ///   again once rollback began. False refuses, nothing changed.
    public func rollback(confirm: (@Sendable (RollbackPreview) async throws -> Bool)?) async throws -> RolledBack {
        let history = try RunHistory(journal.records)
        let target = strategy.target, claim = "\(target.namespace)/\(target.name)"
        let facts = history.facts
        if let done = history.rolledBack {
            return RolledBack(claim: claim, restored: done.restored, oldClass: "", left: done.left,
                              lines: ["already rolled back: \(claim) is on \(done.restored); \(done.left) was left for 'repave finalize \(directory)'"], alreadyDone: true)
        }
        if history.finalizing || history.finalized != nil {
            throw RepaveError(.rollbackFinalized, "finalize has begun on \(directory): the old volume is gone or going, there is nothing to roll back to",
                              hint: history.finalized == nil ? "finish it with 'repave finalize \(directory)'" : "the run is finalized: the claim stays where it is")
        }
        guard let rolls = strategy as? any RollsBack, let old = rolls.keptVolume(facts, run: journal.run) else {
            throw RepaveError(.rollbackUnavailable, "\(directory) kept no old volume: there is nothing to roll back to",
                              hint: strategy is any RollsBack ? "its plan had the old volume deleted (oldVolume: delete)" : "a \(strategy.kind) run does not move the claim")
        }
        let began = history.rollingBack
        if !began {
            if history.aborted != nil || !history.crossedPointOfNoReturn {
                throw RepaveError(.rollbackBeforePointOfNoReturn,
                                  history.aborted != nil ? "\(directory) was aborted: the claim is on its old volume already" : "\(directory) has not passed its point of no return: the claim is still on its old volume",
                                  hint: history.aborted != nil ? "nothing to do" : "to undo the run, use 'repave abort \(directory)'")
            }
            guard history.swapped else {
                throw RepaveError(.rollbackNotSwapped, "\(directory) stopped inside the swap: the claim is between its volumes",
                                  hint: "finish the swap with 'repave resume \(directory)', then run 'repave rollback \(directory)'")
            }
        }
        let oldClass = try await previousClass(volume: old.name)
        let steps = rolls.rollbackSteps(for: run, oldClass: oldClass)
        let claims: [KubeClient.AccessQuestion] = [.init("get", .persistentVolumeClaims, namespace: target.namespace), .init("get", .persistentVolumes),
                                                   .init("get", .longhornVolumes, namespace: rolls.longhornNamespace)]
        try await Self.checkPermissions(Self.permissions(lease: target.lease ? target.namespace : nil) + steps.flatMap(\.permissions) + claims,
                                        client: client, answered: [Self.identityQuestion: true])
        // The claim to move off and its volume: learnt once (before the first change, so the
        // claim is still the run's), journaled as rollback's facts.
        var learnt: [(Fact<String>, String)] = []
        var left = facts[RollbackFact.volume]
        if facts[RollbackFact.volumeUID] == nil {
            learnt = try await newVolumeFacts()
            left = learnt.first { $0.0.key == RollbackFact.volume.key }?.1
            try await requireOldVolumeFree(old)
        }
        let leftName = left ?? "?"
        if !began {
            let preview = RollbackPreview(claim: claim, restored: old.name, oldClass: oldClass, left: leftName, steps: steps.map { (id: $0.id, summary: $0.summary) })
            if let confirm {
                guard try await confirm(preview) else {
                    throw RepaveError(.rollbackDeclined, "the typed name was not \(claim): nothing was changed", hint: "run 'repave rollback \(directory)' again")
                }
                try await EngineRecord.confirmed(by: "operator").append(to: journal, step: Self.rollbackStep)
            } else {
                try await EngineRecord.confirmed(by: "--yes").append(to: journal, step: Self.rollbackStep)
            }
        }
        for (fact, value) in learnt { try await EngineRecord.fact(key: fact.key, value: value).append(to: journal, step: Self.rollbackStep) }
        let view = RollbackFact.view(of: try RunHistory(journal.records).facts)
        let context = StepContext(client: client, journal: journal, dryRun: false, facts: view, logger: logger, factPrefix: RollbackFact.prefix,
                                  continueCommand: "repave rollback")
        context.update { $0.currentStep = Self.rollbackStep }
        let lock = target.lease ? ClusterLock(client: client, namespace: target.namespace, claim: target.name, holder: journal.run) : nil
        let lost = Mutex<String?>(nil)
        var renewal: Task<Void, Never>?
        if let lock {
            try await journal.appendLock(lock, intent: "acquire")
            let acquired = try await TransientFailure.retrying("take the cluster lock", logger: logger) { try await lock.acquire() }
            try await journal.appendLock(lock, result: "\(acquired)")
            // Scale-down and the rollout take minutes: the Lease is kept renewed meanwhile.
            renewal = lock.keepRenewed(journal: journal) { reason in lost.withLock { $0 = reason } }
        }
        defer { renewal?.cancel() }
        let state = history.state
        var applied = state.applied
        var lines: [String] = []
        do {
            for step in steps {
                if state.done.contains(step.id) { lines.append("already done: " + step.summary); continue }
                if let reason = lost.withLock({ $0 }) {
                    throw RepaveError(.lockHeld, "the cluster lock was lost: \(reason)", hint: "find who holds Lease repave-\(target.name) in \(target.namespace)")
                }
                context.update { $0.currentStep = step.id }
                var attempts = 0
                let changed = try await TransientFailure.retrying(step.id, logger: logger) { () async throws -> Bool in
                    // As the runner: what this process read stays usable for the next step (the
                    // created claim's answer is what await-bound watches from) until a failure.
                    attempts += 1
                    if attempts > 1 { context.forgetReads() }
                    var changed = false
                    if !applied.contains(step.id) {
                        if try await step.observe(context) { return false }
                        try await step.apply(context)
                        // Durable before the wait: a re-run goes straight back to waiting.
                        try await EngineRecord.applied.append(to: journal, step: step.id)
                        applied.insert(step.id)
                        changed = true
                    }
                    context.update { if $0.waitStarted?.step != step.id { $0.waitStarted = (step.id, .now) } }
                    try await step.await(context)
                    return changed
                }
                lines.append((changed ? "" : "already done: ") + step.summary)
                try await EngineRecord.stepDone.append(to: journal, step: step.id)
            }
        } catch {
            renewal?.cancel()
            await renewal?.value
            let changedAny = journal.records.contains { $0.kind == EngineRecord.Kind.intent.rawValue && $0.step?.hasPrefix(Self.rollbackStep) == true }
            if var refusal = error as? RepaveError {
                if changedAny { refusal.exitStatus = .stoppedMidRun }
                if refusal.hint?.contains("repave rollback") != true {
                    refusal.hint = (refusal.hint.map { $0 + "; " } ?? "") + "then run 'repave rollback \(directory)' again: it continues from the cluster as it is"
                }
                throw refusal
            }
            throw RepaveError(.rollbackStopped, "rollback stopped at \(context.currentStep)", cause: error,
                              hint: "fix the cause, then run 'repave rollback \(directory)' again: it continues from the cluster as it is",
                              exitStatus: changedAny ? .stoppedMidRun : .refused)
        }
        renewal?.cancel()
        await renewal?.value
        if let lock {
            try await journal.appendLock(lock, intent: "release")
            try await TransientFailure.retrying("release the cluster lock", logger: logger) { try await lock.release() }
            try await journal.appendLock(lock, result: "released")
        }
        let restored = "persistentvolume \(old.name) (uid \(old.uid)) on storageclass \(oldClass.isEmpty ? "\"\"" : oldClass)"
        let leftVolume = "persistentvolume \(leftName) (uid \(context.facts[ClaimFact.volumeUID] ?? "?"))"
        try await EngineRecord.rolledBack(restored: restored, left: leftVolume).append(to: journal, step: nil)
        return RolledBack(claim: claim, restored: old.name, oldClass: oldClass, left: leftName, lines: lines, alreadyDone: false)
    }

    /// The class the old volume (and so the claim) had: the saved PV's, else the saved claim's.
    private func previousClass(volume: String) async throws -> String {
        let manifests = directory + "/manifests/"
        for (file, path) in [("persistentvolume-\(volume).json", ["spec", "storageClassName"]), ("persistentvolumeclaim-\(strategy.target.name).json", ["spec", "storageClassName"])] {
            let data = try? await offPool("saved manifest read") { try Data(contentsOf: URL(fileURLWithPath: manifests + file)) }
            if let data, let name = try JSON.decode(data)[path: path[0], path[1]]?.stringValue { return name }
        }
        throw RepaveError(.rollbackUnavailable, "the run directory holds no saved claim or volume to read the old storage class from",
                          hint: "check \(manifests)")
    }

    /// The claim the run created and the volume it is Bound to, read now: rollback's facts. The
    /// claim must be the run's (its uid the one the run journaled) and Bound.
    private func newVolumeFacts() async throws -> [(Fact<String>, String)] {
        let target = strategy.target, facts = try RunHistory(journal.records).facts
        let claim = try await client.getIfPresent(.persistentVolumeClaims, named: target.name, in: target.namespace).map(PersistentVolumeClaim.init)
        guard let claim, claim.uid == facts[RecreateFact.newClaimUID], claim.isBound, let volumeName = claim.volumeName,
              let volume = try await client.getIfPresent(.persistentVolumes, named: volumeName).map(PersistentVolume.init), volume.claimRef?.uid == claim.uid
        else {
            let seen = claim.map { "uid \($0.uid), \($0.phase)" + ($0.volumeName.map { " on \($0)" } ?? "") } ?? "gone"
            throw RepaveError(.rollbackClaimChanged, "claim \(target.namespace)/\(target.name) is not the one the run created, Bound (run's uid \(facts[RecreateFact.newClaimUID] ?? "none"); now \(seen))",
                              hint: "repave moves only the claim its run made; inspect it, nothing was changed")
        }
        var learnt: [(Fact<String>, String)] = [(RollbackFact.claimUID, claim.uid), (RollbackFact.volume, volume.name)]
        if let namespace = (strategy as? any RollsBack)?.longhornNamespace,
           let longhorn = try await client.getIfPresent(.longhornVolumes, named: volume.volumeHandle ?? volume.name, in: namespace).map(LonghornVolume.init) {
            if longhorn.name != volume.name { learnt.append((RollbackFact.longhornName, longhorn.name)) }
            learnt.append((RollbackFact.longhornUID, longhorn.uid))
        }
        // The volume's uid last: it marks the facts complete.
        learnt.append((RollbackFact.volumeUID, volume.uid))
        return learnt
    }

    /// The old volume is there (the journaled uid) and no claim uses it: Released, as the run
    /// left it.
    private func requireOldVolumeFree(_ old: KeptVolume) async throws {
        let volume = try await client.getIfPresent(.persistentVolumes, named: old.name).map(PersistentVolume.init)
        guard let volume, volume.uid == old.uid else {
            throw RepaveError(.rollbackVolumeGone, "persistentvolume \(old.name) (uid \(old.uid)), the old volume, is " + (volume == nil ? "gone" : "another object now (uid \(volume!.uid))"),
                              hint: "there is nothing to roll back to; nothing was changed")
        }
        if let user = try await old.liveClaim(of: volume, client: client) {
            throw RepaveError(.rollbackVolumeGone, "persistentvolume \(old.name) is bound to \(user): rollback gives the claim only a volume no claim uses",
                              hint: "nothing was changed; inspect that claim")
        }
        guard volume.phase == "Released" else {
            throw RepaveError(.rollbackVolumeGone, "persistentvolume \(old.name) is \(volume.phase.isEmpty ? "of no phase" : volume.phase), not Released as the run left it",
                              hint: "find who changed it; nothing was changed")
        }
    }
}
