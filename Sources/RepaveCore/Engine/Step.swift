import Foundation
import Journal
import KubeAPI
import Logging

/// One idempotent *ensure* of a run: observe whether its goal holds, apply the change if not
/// (every mutating request through `context.mutate`, journaled before and after), then await
/// until the goal holds.
public protocol Step: Sendable {
    var id: String { get }
    /// Whether `apply` changes the cluster.
    var mutates: Bool { get }
    /// Past this step the old state cannot be restored by `abort` (the claim's deletion); its
    /// `apply` calls `StepContext.crossPointOfNoReturn()` right before that request.
    var isPointOfNoReturn: Bool { get }
    /// What the step will do, for `plan` and the confirmation.
    var summary: String { get }
    /// The longest the step may take (its timeout), for the window check.
    var estimate: Duration { get }

    func observe(_ context: StepContext) async throws -> Bool
    func apply(_ context: StepContext) async throws
    func await(_ context: StepContext) async throws
}

extension Step {
    public var isPointOfNoReturn: Bool { false }
    public func await(_ context: StepContext) async throws {}
}

/// What a step may use: the cluster, the journal (through `mutate` and `remember`), facts
/// recorded by earlier steps (also across a resume), dry-run, a logger.
public final class StepContext: @unchecked Sendable {
    // Unchecked: the runner drives one step at a time from one task; `facts` and the journal are
    // only touched from that task.
    public let client: KubeClient
    public let dryRun: Bool
    public let logger: Logger
    let journal: Journal
    public private(set) var facts: [String: String]
    var currentStep = ""
    var attempt = 1
    /// When the current step's wait began in this process. A wait tried again after a passing
    /// failure keeps that start, so its timeout is not restarted; a resume starts afresh.
    var waitStarted: (step: String, at: ContinuousClock.Instant)?
    var progress: (String, String) -> Void = { _, _ in }

    init(client: KubeClient, journal: Journal, dryRun: Bool, facts: [String: String], logger: Logger) {
        self.client = client
        self.journal = journal
        self.dryRun = dryRun
        self.facts = facts
        self.logger = logger
    }

    /// The deadline of the current step's wait for `timeout`, counted from the wait's first try.
    public func deadline(_ timeout: Duration) -> ContinuousClock.Instant {
        (waitStarted.map { $0.step == currentStep ? $0.at : .now } ?? .now) + timeout
    }

    /// What is left of `timeout` for the current step's wait; at least 1 ms (`KubeClient.wait`
    /// still looks once before it reports a timeout, with what it saw).
    public func timeLeft(of timeout: Duration) -> Duration {
        max(deadline(timeout) - .now, .milliseconds(1))
    }

    /// Journals `key = value` (durable before returning), readable by every later step and by
    /// a resumed run: original replicas, the uid of an object this run created.
    public func remember(_ key: String, _ value: String) throws {
        try journal.append(kind: "fact", step: currentStep, data: ["key": key, "value": value])
        facts[key] = value
    }

    /// One mutating request: intent journaled and fsynced first, then the request, then its
    /// outcome journaled. (The journal's failpoints surround each record, see `Failpoints`.)
    @discardableResult
    public func mutate<Result: Sendable>(
        _ verb: String, _ path: String, precondition: String? = nil,
        _ request: () async throws -> Result
    ) async throws -> Result {
        let step = currentStep
        try journal.append(kind: "intent", step: step, data: Intent(verb: verb, path: path, precondition: precondition, attempt: attempt, dryRun: dryRun))
        let result: Result
        do {
            result = try await request()
        } catch {
            try journal.append(kind: "outcome", step: step, data: Outcome(result: "error", detail: "\(error)"))
            throw error
        }
        try journal.append(kind: "outcome", step: step, data: Outcome(result: "ok", detail: nil))
        return result
    }

    /// Journals, once, that the run passes its point of no return: the step calls it right
    /// before the request that cannot be undone (a failure before it leaves `abort` possible).
    public func crossPointOfNoReturn() throws {
        guard !journal.records.contains(where: { $0.kind == "pnr" }) else { return }
        try journal.append(kind: "pnr", step: currentStep, data: ["crossed": currentStep])
    }

    /// Journals something the operator should know (not critical to resuming).
    public func note(_ text: String) throws {
        try journal.append(kind: "note", step: currentStep, critical: false, data: ["note": text])
        logger.notice("\(text)")
    }

    /// Says what a step waits for (a progress line), and marks the wait so that crash tests can
    /// stop the process inside it.
    public func waiting(_ what: String? = nil) {
        if let what { progress(currentStep, "waiting for \(what)") }
        let paused = ContinuousClock.now
        Failpoints.hit("in-wait:\(currentStep)")
        // A test holding the run here does not eat the wait's timeout.
        if let started = waitStarted, started.step == currentStep { waitStarted = (started.step, started.at + (.now - paused)) }
    }
}

struct Intent: Codable, Equatable {
    var verb: String
    var path: String
    var precondition: String?
    var attempt: Int
    var dryRun: Bool
}

struct Outcome: Codable, Equatable {
    var result: String
    var detail: String?
}
