import Foundation
import Journal
import Synchronization
import KubeAPI
import Logging

/// Performs a `RunMachine`'s actions with real steps, a journal and a cluster.
public final class Runner {
    public enum Outcome: Equatable, Sendable {
        case finished
        /// Stopped before this run changed anything (exit 2).
        case refused(String)
        /// Stopped after a change (exit 3: resume is safe).
        case stopped(String)
        /// Stopped by SIGINT or SIGTERM after the last record was written.
        case interrupted(Int32)
    }

    let steps: [any Step]
    let journal: Journal
    let context: StepContext
    let confirm: (String?) async -> Bool
    let logger: Logger
    /// Called with each step as it starts (progress output).
    let progress: (String, String) -> Void
    let interruption: Interruption
    let window: RecreatePlan.Window?
    let clock: @Sendable () -> Date
    let lock: ClusterLock?
    private let lockLost = LockLoss()
    /// The error that stopped the run, for the caller to render with its hint.
    public private(set) var failure: (any Error)?

    public init(
        steps: [any Step], journal: Journal, client: KubeClient, dryRun: Bool = false,
        interruption: Interruption = Interruption(), window: RecreatePlan.Window? = nil, lock: ClusterLock? = nil,
        clock: @escaping @Sendable () -> Date = { Date() },
        logger: Logger = Logger(label: "repave.run"),
        confirm: @escaping (String?) async -> Bool,
        progress: @escaping (String, String) -> Void = { _, _ in }
    ) {
        self.steps = steps
        self.journal = journal
        self.logger = logger
        self.confirm = confirm
        self.progress = progress
        self.interruption = interruption
        self.window = window
        self.clock = clock
        self.lock = lock
        self.context = StepContext(client: client, journal: journal, dryRun: dryRun, facts: Self.facts(in: journal.records), logger: logger)
        self.context.progress = progress
    }

    /// What the journal says: steps done, a step whose last intent has no outcome, facts.
    public struct State: Equatable, Sendable {
        public var done: Set<String> = []
        public var dangling: String?
        public var applied: Set<String> = []
        public var attempts: [String: Int] = [:]
        /// Whether this run has sent any change (an intent exists).
        public var changed = false
    }

    /// Record kinds this engine writes; a journal with another critical kind comes from a newer
    /// Repave and is not resumed.
    public static let knownKinds: Set<String> = [
        "header", "intent", "outcome", "fact", "resolved", "applied", "confirmed", "pnr", "step_done", "lock",
        "stopped", "finished", "repair", "note", "override", "aborted",
    ]

    public static func state(of records: [JournalRecord]) -> State {
        var state = State()
        var open: String?
        for record in records {
            switch record.kind {
            case "intent":
                open = record.step
                state.changed = true
                if let step = record.step { state.attempts[step, default: 0] += 1 }
            case "outcome":
                // An error outcome may still have reached the server (a lost answer): leave it
                // open, so resume settles it by reading the cluster.
                if (try? record.decode([String: String?].self))?["result"] == "ok" { open = nil }
            case "resolved": open = nil
            case "applied": if let step = record.step { state.applied.insert(step) }
            case "step_done":
                if let step = record.step {
                    state.done.insert(step)
                    state.applied.remove(step)
                }
                open = nil
            default: break
            }
        }
        state.dangling = open
        return state
    }

    /// The facts a run's journal recorded (`fact` records; the last value of a key wins).
    public static func facts(in records: [JournalRecord]) -> [String: String] {
        var facts: [String: String] = [:]
        for record in records where record.kind == "fact" {
            if let fact = try? record.decode([String: String].self), let key = fact["key"] { facts[key] = fact["value"] }
        }
        return facts
    }

    /// Runs from the start (`resuming: false`) or from where the journal says it stopped.
    public func run(resuming: Bool, confirmationRequired: Bool) async -> Outcome {
        var machine = RunMachine(
            steps: steps.map { .init(id: $0.id, mutates: $0.mutates, pointOfNoReturn: $0.isPointOfNoReturn) },
            confirmationRequired: confirmationRequired)
        let state = Self.state(of: journal.records)
        if let unknown = journal.records.first(where: { $0.critical && !Self.knownKinds.contains($0.kind) }) {
            return .refused("the journal has a critical record of kind '\(unknown.kind)' (seq \(unknown.sequence)) that this repave does not know; use the repave that wrote it")
        }
        var changed = state.changed
        var renewal: Task<Void, Never>?
        if let lock {
            do {
                // The Lease is written like any change: intent first, result after.
                try journal.appendLock(lock, intent: "acquire")
                let acquired = try await TransientFailure.retrying("take the cluster lock", logger: logger) { try await lock.acquire() }
                try journal.appendLock(lock, result: "\(acquired)")
                let loss = lockLost
                renewal = lock.keepRenewed(journal: journal) { reason in loss.set(reason) }
            } catch {
                _ = try? journal.append(kind: "stopped", data: ["reason": "\(error)"])
                return changed ? .stopped("\(error)") : .refused("\(error)")
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
        var retries: [String: Int] = [:]
        var action = machine.next(after: resuming ? .resume(done: state.done, dangling: state.dangling, applied: state.applied) : .start)
        while true {
            var event: RunMachine.Event
            if let signal = interruption.signal {
                // Between records: stop here, cleanly; resume continues from this point.
                await stopRenewal()
                _ = try? journal.append(kind: "stopped", data: ["reason": "interrupted by signal \(signal)"])
                return .interrupted(signal)
            }
            do {
                switch action {
                case .finish:
                    await stopRenewal()
                    try await releaseLock()
                    try journal.append(kind: "finished", data: ["result": "done"])
                    return .finished
                case .stop(let reason):
                    await stopRenewal()
                    try journal.append(kind: "stopped", data: ["reason": reason])
                    if changed { return .stopped(reason) }
                    // Nothing changed: nothing to protect, so the lock goes too; if it cannot be
                    // released now it expires by itself (a failure here must not stop again).
                    try? await releaseLock()
                    return .refused(reason)
                case .observe(let id):
                    let step = try find(id)
                    context.currentStep = id
                    context.attempt = (state.attempts[id] ?? 0) + (retries[id] ?? 0) + 1
                    progress(id, step.summary)
                    event = .observed(goalHolds: try await step.observe(context))
                case .confirm(let pointOfNoReturn):
                    event = .confirmed(await confirm(pointOfNoReturn))
                    if case .confirmed(true) = event { try journal.append(kind: "confirmed", data: ["by": "operator"]) }
                case .apply(let id) where lockLost.reason != nil:
                    // Another run may be acting now: change nothing more.
                    event = .failed("not starting \(id): \(lockLost.reason ?? "")")
                case .apply(let id):
                    // No change starts that the window cannot hold. Once something changed (in
                    // this process or before a resume) it only warns: a half-done maintenance is
                    // worse than a late one.
                    let index = steps.firstIndex { $0.id == id } ?? 0
                    let remaining = steps[index...].reduce(0.0) { $0 + Double($1.estimate.components.seconds) }
                    if let problem = WindowCheck.evaluate(window, now: clock(), remaining: remaining).explanation {
                        if changed {
                            logger.warning("\(problem); continuing: the run has already changed the cluster")
                            try journal.append(kind: "note", step: id, critical: false, data: ["window": problem])
                        } else {
                            await stopRenewal()
                            try journal.append(kind: "stopped", step: id, data: ["reason": problem])
                            try? await releaseLock()
                            return .refused("not starting \(id): \(problem)")
                        }
                    }
                    changed = true
                    try await find(id).apply(context)
                    // Durable before the wait: a resume then goes straight back to waiting.
                    try journal.append(kind: "applied", step: id, data: ["step": id])
                    event = .applied
                case .await(let id):
                    context.currentStep = id
                    if context.waitStarted?.step != id { context.waitStarted = (id, .now) }
                    try await find(id).await(context)
                    event = .awaited
                case .settle(let id, let applied):
                    try journal.append(kind: "resolved", step: id, data: ["applied": applied ? "yes" : "no"])
                    event = .recorded
                case .record(let id):
                    try journal.append(kind: "step_done", step: id, data: ["step": id])
                    event = .recorded
                }
            } catch {
                logger.info("step failed", metadata: ["step": "\(context.currentStep)", "error": "\(error)"])
                failure = error
                // A journal that can no longer be written must not be written again.
                if error is JournalError { return .stopped("\(error)") }
                event = .failed("\(context.currentStep): \(error)")
                // A step that failed for a passing reason is done again after a pause, from an
                // observation (never by repeating a request blindly), a bounded number of times.
                let step = context.currentStep
                let retriable = switch action {
                case .observe, .apply, .await: true
                default: false
                }
                if retriable, let delay = TransientFailure.delay(after: error, attempt: (retries[step] ?? 0) + 1) {
                    retries[step, default: 0] += 1
                    logger.warning("\(step): \(error); trying again in \(delay.milliseconds) ms (attempt \(retries[step] ?? 0) of \(TransientFailure.maxAttempts))")
                    do {
                        try journal.append(kind: "note", step: step, critical: false, data: ["retry": "\(error)", "attempt": "\(retries[step] ?? 0)"])
                    } catch {
                        return .stopped("\(error)")
                    }
                    try? await Task.sleep(for: delay)
                    failure = nil
                    event = .retry
                }
            }
            action = machine.next(after: event)
        }
    }

    private func releaseLock() async throws {
        guard let lock else { return }
        try journal.appendLock(lock, intent: "release")
        try await TransientFailure.retrying("release the cluster lock", logger: logger) { try await lock.release() }
        try journal.appendLock(lock, result: "released")
    }

    private func find(_ id: String) throws -> any Step {
        guard let step = steps.first(where: { $0.id == id }) else { throw RepaveError(code: "internal", "no step \(id)", exitStatus: .internalError) }
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
    func appendLock(_ lock: ClusterLock, intent: String? = nil, result: String? = nil, renewal: Bool = false) throws(JournalError) {
        var data = ["lease": "\(lock.namespace)/\(lock.name)", "holder": lock.holder]
        data["intent"] = intent
        data["result"] = result
        try append(kind: "lock", step: renewal ? "lease-renewal" : nil, data: data)
    }
}
