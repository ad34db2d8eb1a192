/// The run's decisions, without I/O: which step to observe, apply or await next, when to ask for
/// confirmation, when to stop. A value type driven by events (`next(after:)`); the runner
/// performs its actions and feeds back what happened, and tests drive it directly.
public struct RunMachine: Sendable, Equatable {
    public struct StepInfo: Sendable, Equatable {
        public var id: String
        public var mutates: Bool
        public var pointOfNoReturn: Bool

        public init(id: String, mutates: Bool, pointOfNoReturn: Bool = false) {
            self.id = id
            self.mutates = mutates
            self.pointOfNoReturn = pointOfNoReturn
        }
    }

    public enum Event: Sendable, Equatable {
        /// A fresh run.
        case start
        /// A resumed run: steps already done, a step whose intent has no outcome, and steps whose
        /// change was made but whose wait did not finish.
        case resume(done: Set<String>, dangling: String?, applied: Set<String> = [])
        /// The step's goal holds (or not) in the live cluster.
        case observed(goalHolds: Bool)
        /// The operator's answer to the one confirmation.
        case confirmed(Bool)
        case applied
        case awaited
        /// `step_done` is durable.
        case recorded
        case failed(String)
        /// The step failed for a passing reason (a lost connection, a 5xx, a conflict): do it
        /// again from where it failed, settling an unanswered change by observing first.
        case retry
    }

    public enum Action: Sendable, Equatable {
        case observe(String)
        /// Ask once before the first change, naming the point of no return.
        case confirm(pointOfNoReturn: String?)
        case apply(String)
        case await(String)
        /// Journal `step_done`.
        case record(String)
        /// A resumed step's dangling intent turned out applied (goal holds) or not.
        case settle(String, applied: Bool)
        case finish
        case stop(String)
    }

    public let steps: [StepInfo]
    public private(set) var cursor = 0
    public private(set) var confirmed: Bool
    public private(set) var dangling: String?
    public private(set) var done: Set<String> = []
    /// Applied, not yet awaited to completion: resume goes straight to the wait.
    public private(set) var applied: Set<String> = []
    private var last: Action?

    /// - Parameter confirmationRequired: false for `--yes` (and for a resume: the operator
    ///   confirmed when the run started).
    public init(steps: [StepInfo], confirmationRequired: Bool) {
        self.steps = steps
        confirmed = !confirmationRequired
    }

    private var current: StepInfo? { steps.indices.contains(cursor) ? steps[cursor] : nil }

    public mutating func next(after event: Event) -> Action {
        let action = decide(event)
        last = action
        return action
    }

    private mutating func decide(_ event: Event) -> Action {
        switch event {
        case .start:
            cursor = 0
            return observeCurrent()
        case .resume(let completed, let pending, let changed):
            done = completed
            dangling = pending
            applied = changed
            confirmed = true
            cursor = steps.firstIndex { !completed.contains($0.id) } ?? steps.count
            if let step = current, applied.contains(step.id) {
                // Its change was made; only the wait (re-run from a fresh list) remains. Applying
                // again could send a second mutation.
                return .await(step.id)
            }
            return observeCurrent()
        case .failed(let reason):
            return .stop(reason)
        case .retry:
            guard let step = current else { return .stop("internal: no step to retry") }
            switch last {
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
            return .apply(step.id)
        case .confirmed(let yes):
            guard let step = current, case .confirm? = last else { return .stop("internal: confirmation out of order") }
            guard yes else { return .stop("not confirmed; nothing was changed") }
            confirmed = true
            return .apply(step.id)
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
                return step.mutates && !confirmed ? .confirm(pointOfNoReturn: nil) : .apply(step.id)
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
}
