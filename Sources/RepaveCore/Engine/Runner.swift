import Foundation
import Journal
import Synchronization
import KubeAPI
import Logging

/// Performs a `RunMachine`'s actions with real steps, a journal and a cluster. It decides
/// nothing itself: which step, whether to ask, whether the window and the Lease allow a change,
/// and whether a failure is tried again are the machine's.
final class Runner {
    enum Outcome: Sendable {
        case finished
        /// Stopped before this run changed anything (exit 2), with the error that stopped it.
        case refused(String, (any Error)?)
        /// Stopped after a change (exit 3: resume is safe).
        case stopped(String, (any Error)?)
        /// Stopped by SIGINT or SIGTERM after the last record was written.
        case interrupted(Int32)
    }

    let steps: [any Step]
    let journal: Journal
    let context: StepContext
    let confirm: @Sendable (String?) async -> Bool
    let logger: Logger
    let interruption: Interruption
    let window: PlanWindow?
    let clock: @Sendable () -> Date
    let lock: ClusterLock?
    private let lockLost = LockLoss()

    init(
        steps: [any Step], journal: Journal, facts: Facts, client: KubeClient,
        interruption: Interruption = Interruption(), window: PlanWindow? = nil, lock: ClusterLock? = nil,
        clock: @escaping @Sendable () -> Date = { Date() },
        logger: Logger = Logger(label: "repave.run"),
        confirm: @escaping @Sendable (String?) async -> Bool,
        progress: @escaping @Sendable (ProgressEvent) -> Void = { _ in }
    ) {
        self.steps = steps
        self.journal = journal
        self.logger = logger
        self.confirm = confirm
        self.interruption = interruption
        self.window = window
        self.clock = clock
        self.lock = lock
        context = StepContext(client: client, journal: journal, dryRun: false, facts: facts, logger: logger)
        context.update { $0.progress = progress }
    }

    private var progress: @Sendable (ProgressEvent) -> Void { context.update { $0.progress } }

    /// Runs from the start (`resuming: false`) or from where the journal says it stopped.
    func run(resuming: Bool, state: RunState, confirmationRequired: Bool) async -> Outcome {
        var machine = RunMachine(
            steps: steps.map { .init(id: $0.id, mutates: $0.mutates, pointOfNoReturn: $0.isPointOfNoReturn, estimate: $0.estimate(given: context.facts),
                                     needsWindow: $0.needsWindow) },
            confirmationRequired: confirmationRequired)
        var renewal: Task<Void, Never>?
        if let lock {
            do {
                // The Lease is written like any change: intent first, result after.
                try await journal.appendLock(lock, intent: "acquire")
                // A new run creates the Lease straight away; a resume, or a try after a failure,
                // reads it first.
                var tries = 0
                let acquired = try await TransientFailure.retrying("take the cluster lock", logger: logger) { () async throws -> ClusterLock.Acquired in
                    tries += 1
                    return try await lock.acquire(createFirst: !resuming && tries == 1)
                }
                try await journal.appendLock(lock, result: "\(acquired)")
                let loss = lockLost
                renewal = lock.keepRenewed(journal: journal) { reason in loss.set(reason) }
            } catch {
                _ = try? await EngineRecord.stopped(reason: "\(error)").append(to: journal, step: nil)
                return state.changed ? .stopped("\(error)", error) : .refused("\(error)", error)
            }
        }
        defer { renewal?.cancel() }
        // Before the run's last records: the renewal's own records come first, and no renewal
        // races the release.
        func stopRenewal() async {
            renewal?.cancel()
            await renewal?.value
            renewal = nil
        }
        var failure: (any Error)?
        var action = machine.next(after: resuming
            ? .resume(done: state.done, dangling: state.dangling, applied: state.applied, changed: state.changed) : .start)
        while true {
            var event: RunMachine.Event
            if let signal = interruption.signal {
                // Between records: stop here, cleanly; resume continues from this point.
                await stopRenewal()
                _ = try? await EngineRecord.stopped(reason: "interrupted by signal \(signal)").append(to: journal, step: nil)
                return .interrupted(signal)
            }
            do {
                switch action {
                case .finish:
                    await stopRenewal()
                    try await releaseLock()
                    try await EngineRecord.finished.append(to: journal, step: nil)
                    return .finished
                case .stop(let reason):
                    await stopRenewal()
                    try await EngineRecord.stopped(reason: reason).append(to: journal, step: nil)
                    if machine.changed { return .stopped(reason, failure) }
                    // Nothing changed: nothing to protect, so the lock goes too; if it cannot be
                    // released now it expires by itself (a failure here must not stop again).
                    try? await releaseLock()
                    return .refused(reason, failure)
                case .observe(let id):
                    let step = try find(id)
                    context.update {
                        $0.currentStep = id
                        $0.attempt = (state.attempts[id] ?? 0) + machine.retries[id, default: 0] + 1
                    }
                    progress(.step(id: id, summary: step.summary))
                    event = .observed(goalHolds: try await step.observe(context))
                case .confirm(let pointOfNoReturn):
                    event = .confirmed(await confirm(pointOfNoReturn))
                    // The operator may have taken minutes: the step is observed again afresh.
                    context.forgetReads()
                    if case .confirmed(true) = event { try await EngineRecord.confirmed(by: "operator").append(to: journal, step: nil) }
                case .gate(_, let remaining):
                    let seconds = Double(remaining.components.seconds) + Double(remaining.components.attoseconds) / 1e18
                    event = .gated(window: WindowCheck.evaluate(window, now: clock(), remaining: seconds), lockLost: lockLost.reason)
                case .apply(let id, let warning):
                    if let warning {
                        logger.warning("\(warning); continuing: the run has already changed the cluster")
                        try await EngineRecord.note(["window": warning]).append(to: journal, step: id)
                    }
                    try await find(id).apply(context)
                    // Durable before the wait: a resume then goes straight back to waiting.
                    try await EngineRecord.applied.append(to: journal, step: id)
                    event = .applied
                case .await(let id):
                    context.update {
                        $0.currentStep = id
                        if $0.waitStarted?.step != id { $0.waitStarted = (id, .now) }
                    }
                    try await find(id).await(context)
                    event = .awaited
                case .settle(let id, let applied):
                    try await EngineRecord.resolved(applied: applied).append(to: journal, step: id)
                    event = .recorded
                case .record(let id):
                    try await EngineRecord.stepDone.append(to: journal, step: id)
                    // What the step journaled may revise what later steps are expected to take.
                    let facts = context.facts
                    for step in steps { machine.revise(estimate: step.estimate(given: facts), of: step.id) }
                    event = .recorded
                case .pause(let id, let reason, let delay, let attempt):
                    logger.info("\(id): \(reason); trying again in \(delay.milliseconds) ms (attempt \(attempt) of \(RunMachine.maxRetries))")
                    progress(.retrying(step: id, reason: reason, in: delay, attempt: attempt, of: RunMachine.maxRetries))
                    try await EngineRecord.note(["retry": reason, "attempt": "\(attempt)"]).append(to: journal, step: id)
                    try? await Task.sleep(for: delay)
                    failure = nil
                    event = .paused
                }
            } catch {
                logger.info("step failed", metadata: ["step": "\(context.currentStep)", "error": "\(error)"])
                failure = error
                // A conflict says a kept read is stale; a lost answer leaves it unknown: whatever
                // comes next reads the cluster again.
                context.forgetReads()
                // A journal that can no longer be written must not be written again.
                if error is JournalError {
                    await stopRenewal()
                    return machine.changed ? .stopped("\(error)", error) : .refused("\(error)", error)
                }
                event = .failed(Self.failure(error, step: context.currentStep))
            }
            action = machine.next(after: event)
        }
    }

    /// The machine's view of an error: passing (tried again from an observation) or final.
    static func failure(_ error: any Error, step: String) -> RunMachine.Failure {
        switch TransientFailure.classify(error) {
        case .final(let reason): .final("\(step): \(reason)")
        case .passing(let reason, let retryAfter): .passing("\(step): \(reason)", retryAfter: retryAfter)
        }
    }

    private func releaseLock() async throws {
        guard let lock else { return }
        try await journal.appendLock(lock, intent: "release")
        try await TransientFailure.retrying("release the cluster lock", logger: logger) { try await lock.release() }
        try await journal.appendLock(lock, result: "released")
    }

    private func find(_ id: String) throws -> any Step {
        guard let step = steps.first(where: { $0.id == id }) else { throw RepaveError(.internal, "no step \(id)") }
        return step
    }
}

/// Set once by the lease renewal when the cluster lock is lost.
final class LockLoss: Sendable {
    private let value = Mutex<String?>(nil)
    func set(_ reason: String) { value.withLock { if $0 == nil { $0 = reason } } }
    var reason: String? { value.withLock { $0 } }
}

extension Journal {
    /// A `lock` record: the Lease's intent before it is written, or the result after. Renewals
    /// carry step `lease-renewal`, so their failpoints (`before-lock:lease-renewal`) do not shift
    /// the numbering of the run's own named `lock:run` points whenever a renewal falls (`@N`
    /// counts every point reached, renewals included).
    func appendLock(_ lock: ClusterLock, intent: String? = nil, result: String? = nil, renewal: Bool = false) async throws(JournalError) {
        let record = EngineRecord.LockRecord(lease: "\(lock.namespace)/\(lock.name)", holder: lock.holder, intent: intent, result: result)
        try await EngineRecord.lock(record).append(to: self, step: renewal ? "lease-renewal" : nil)
    }
}
