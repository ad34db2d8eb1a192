/// The run's decisions, without I/O: which step to observe, apply or await next, when to ask for
/// confirmation, whether the window and the Lease allow a change, whether a failure is tried
/// again (and after how long), when to stop. A value type driven by events (`next(after:)`); the
/// runner performs its actions and feeds back what happened, and tests drive it directly.
public struct RunMachine: Sendable, Equatable {
    public struct StepInfo: Sendable, Equatable {
        public var id: String
        public var mutates: Bool
        public var pointOfNoReturn: Bool
        /// The step's timeout: what the window must still hold for it.
        public var estimate: Duration
        /// False: the step may change the cluster outside the window (migrate's staging claim
        /// and warm copy, which leave the workload running); its change does not count as the
        /// maintenance having begun, so the window still gates the steps that need it.
        public var needsWindow: Bool

        public init(id: String, mutates: Bool, pointOfNoReturn: Bool = false, estimate: Duration = .zero, needsWindow: Bool = true) {
            self.id = id
            self.mutates = mutates
            self.pointOfNoReturn = pointOfNoReturn
            self.estimate = estimate
            self.needsWindow = needsWindow
        }
    }

    /// How a failed action may be tried again, as the runner classified the error.
    public enum Failure: Sendable, Equatable {
        /// A refusal, a deadline, a read the client already tried again: the operator decides.
        case final(String)
        /// Passes with a fresh observation: a resourceVersion conflict, or a change whose answer
        /// was lost (the observation settles whether it was made). `retryAfter`: the server's.
        case passing(String, retryAfter: Duration?)
    }

    public enum Event: Sendable, Equatable {
        /// A fresh run.
        case start
        /// A resumed run: steps already done, a step whose intent has no outcome, steps whose
        /// change was made but whose wait did not finish, and whether anything was changed.
        case resume(done: Set<String>, dangling: String?, applied: Set<String> = [], changed: Bool = true)
        /// The step's goal holds (or not) in the live cluster.
        case observed(goalHolds: Bool)
        /// The operator's answer to the one confirmation.
        case confirmed(Bool)
        /// The window's verdict for the next change, and the Lease's loss if it was lost.
        case gated(window: WindowCheck, lockLost: String?)
        case applied
        case awaited
        /// `step_done` (or `resolved`) is durable.
        case recorded
        case failed(Failure)
        /// The pause before trying again is over.
        case paused
    }

    public enum Action: Sendable, Equatable {
        case observe(String)
        /// Ask once before the first change, naming the point of no return.
        case confirm(pointOfNoReturn: String?)
        /// Before a change: evaluate the window for `remaining` (the timeouts of this step and
        /// every later one) and whether the Lease is still held.
        case gate(String, remaining: Duration)
        /// Make the change; `windowWarning`: the window no longer holds the run, which goes on
        /// because it has already changed the cluster (journal it as a note).
        case apply(String, windowWarning: String?)
        case await(String)
        /// Journal `step_done`.
        case record(String)
        /// A resumed step's dangling intent turned out applied (goal holds) or not.
        case settle(String, applied: Bool)
        /// A passing failure: journal it, wait, then report `.paused`.
        case pause(String, reason: String, delay: Duration, attempt: Int)
        case finish
        case stop(String)
    }

    /// Tries of one step after its first failure.
    public static let maxRetries = 6

    public private(set) var steps: [StepInfo]
    public private(set) var cursor = 0
    public private(set) var confirmed: Bool
    public private(set) var dangling: String?
    public private(set) var done: Set<String> = []
    /// Applied, not yet awaited to completion: resume goes straight to the wait.
    public private(set) var applied: Set<String> = []
    /// Whether the run has changed the cluster (in this process or before a resume): a stop
    /// then leaves something to resume, and the window only warns.
    public private(set) var changed = false
    /// Whether a step that needs the window has changed the cluster: from then on the window
    /// only warns.
    public private(set) var changedInWindow = false
    /// Retries per step in this process.
    public private(set) var retries: [String: Int] = [:]
    private var last: Action?
    /// The last observe, apply or await: what a passing failure is retried from.
    private var lastStepAction: Action?

    /// - Parameter confirmationRequired: false for `--yes` (and for a resume: the operator
    ///   confirmed when the run started).
    public init(steps: [StepInfo], confirmationRequired: Bool) {
        self.steps = steps
        confirmed = !confirmationRequired
    }

    /// A step's estimate revised by what the run has learnt since it began (migrate's final copy,
    /// from the rate its warm copy measured): later window checks hold it instead.
    public mutating func revise(estimate: Duration, of id: String) {
        if let index = steps.firstIndex(where: { $0.id == id }) { steps[index].estimate = estimate }
    }

    private var current: StepInfo? { steps.indices.contains(cursor) ? steps[cursor] : nil }

    public mutating func next(after event: Event) -> Action {
        let action = decide(event)
        last = action
        switch action {
        case .observe, .apply, .await: lastStepAction = action
        default: break
        }
        return action
    }

    /// The pause before the `attempt`th retry: the server's Retry-After (at most 30 s), else
    /// 250 ms doubling up to 4 s.
    public static func delay(attempt: Int, retryAfter: Duration?) -> Duration {
        if let retryAfter { return min(retryAfter, .seconds(30)) }
        return .milliseconds(250 * (1 << min(attempt - 1, 4)))
    }

    private mutating func decide(_ event: Event) -> Action {
        switch event {
        case .start:
            cursor = 0
            return observeCurrent()
        case .resume(let completed, let pending, let changedSteps, let changedAnything):
            done = completed
            dangling = pending
            applied = changedSteps
            changed = changedAnything
            // Steps that need no window ran first: the window's steps changed something once
            // one of them is done, applied or dangling.
            changedInWindow = changedAnything && (steps.allSatisfy(\.needsWindow) || steps.contains { step in
                step.needsWindow && step.mutates && (completed.contains(step.id) || changedSteps.contains(step.id) || pending == step.id)
            })
            confirmed = true
            cursor = steps.firstIndex { !completed.contains($0.id) } ?? steps.count
            if let step = current, applied.contains(step.id) {
                // Its change was made; only the wait (re-run from a fresh list) remains. Applying
                // again could send a second mutation.
                return .await(step.id)
            }
            return observeCurrent()
        case .failed(.final(let reason)):
            return .stop(reason)
        case .failed(.passing(let reason, let retryAfter)):
            guard let step = current, lastStepAction != nil else { return .stop(reason) }
            let attempt = retries[step.id, default: 0] + 1
            guard attempt <= Self.maxRetries else { return .stop(reason) }
            retries[step.id] = attempt
            return .pause(step.id, reason: reason, delay: Self.delay(attempt: attempt, retryAfter: retryAfter), attempt: attempt)
        case .paused:
            guard let step = current, case .pause? = last else { return .stop("internal: pause out of order") }
            switch lastStepAction {
            case .await?:
                return .await(step.id)
            case .apply?:
                // The change may have reached the server: observe, then settle it as a resume would.
                dangling = step.id
                return .observe(step.id)
            default:
                return .observe(step.id)
            }
        case .observed(let holds):
            guard let step = current, case .observe(step.id)? = last else { return .stop("internal: observation out of order") }
            if dangling == step.id {
                dangling = nil
                return .settle(step.id, applied: holds)
            }
            if holds { return .record(step.id) }
            if step.mutates && !confirmed {
                return .confirm(pointOfNoReturn: steps[cursor...].first { $0.pointOfNoReturn }?.id)
            }
            return gateCurrent()
        case .confirmed(let yes):
            guard current != nil, case .confirm? = last else { return .stop("internal: confirmation out of order") }
            guard yes else { return .stop("not confirmed; nothing was changed") }
            confirmed = true
            // The answer may have taken minutes: the step looks at the cluster again (its last
            // safety look) before its change.
            return observeCurrent()
        case .gated(let window, let lockLost):
            guard let step = current, case .gate(step.id, _)? = last else { return .stop("internal: gate out of order") }
            // Another run may be acting now: change nothing more.
            if let lockLost { return .stop("not starting \(step.id): \(lockLost)") }
            // No change starts that the window cannot hold. Once something changed it only
            // warns: a half-done maintenance is worse than a late one.
            // A step that needs no window only needs the Lease.
            if !step.needsWindow {
                changed = true
                return .apply(step.id, windowWarning: nil)
            }
            if let problem = window.explanation {
                guard changedInWindow else { return .stop("not starting \(step.id): \(problem)") }
                changed = true
                return .apply(step.id, windowWarning: problem)
            }
            changed = true
            changedInWindow = true
            return .apply(step.id, windowWarning: nil)
        case .applied:
            guard let step = current else { return .stop("internal: no step to await") }
            return .await(step.id)
        case .awaited:
            guard let step = current else { return .stop("internal: no step to record") }
            return .record(step.id)
        case .recorded:
            guard let step = current else { return .finish }
            if case .settle(_, applied: true)? = last {
                // The dangling request did happen: wait for its goal, then record the step.
                return .await(step.id)
            }
            if case .settle(_, applied: false)? = last {
                return step.mutates && !confirmed ? .confirm(pointOfNoReturn: nil) : gateCurrent()
            }
            done.insert(step.id)
            cursor += 1
            if let next = current, applied.contains(next.id) { return .await(next.id) }
            return observeCurrent()
        }
    }

    private func observeCurrent() -> Action {
        guard let step = current else { return .finish }
        return .observe(step.id)
    }

    private func gateCurrent() -> Action {
        guard let step = current else { return .finish }
        // What the window must hold: this step and every later one that needs it.
        let remaining = steps[cursor...].filter(\.needsWindow).reduce(Duration.zero) { $0 + $1.estimate }
        return .gate(step.id, remaining: remaining)
    }
}
