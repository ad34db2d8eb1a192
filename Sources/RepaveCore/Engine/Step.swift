import Foundation
import Journal
import KubeAPI
import Logging
import Synchronization

/// One idempotent *ensure* of a run: observe whether its goal holds, apply the change if not
/// (every mutating request through `context.mutate`, journaled before and after), then await
/// until the goal holds. A step also says what it needs and how the session's other commands
/// treat it: its permissions (the preflight's RBAC check), how `abort` undoes it, and how
/// `plan --server-dry-run` rehearses it — so no list of steps is written twice.
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
    /// ``estimate`` as what earlier steps journaled revises it (migrate's final copy: from the
    /// warm copy's measured rate); by default the timeout.
    func estimate(given facts: Facts) -> Duration
    /// False: the step may change the cluster before the window opens (see
    /// ``RunMachine/StepInfo/needsWindow``).
    var needsWindow: Bool { get }
    /// Every API permission `observe`, `apply`, `await`, `undo` and `rehearse` use.
    var permissions: [KubeClient.AccessQuestion] { get }

    func observe(_ context: StepContext) async throws -> Bool
    func apply(_ context: StepContext) async throws
    func await(_ context: StepContext) async throws
    /// `abort`, before the point of no return: put back what `apply` changed (each change through
    /// `context.mutate`); one line for each thing put back or deliberately kept.
    func undo(_ context: StepContext) async throws -> [String]
    /// `plan --server-dry-run`: the step's changes sent with dryRun=All (the context's `dryRun`),
    /// one result each. Non-mutating steps read what later rehearsals need.
    func rehearse(_ context: StepContext) async throws -> [CheckResult]
}

extension Step {
    public var isPointOfNoReturn: Bool { false }
    public var needsWindow: Bool { true }
    public func estimate(given facts: Facts) -> Duration { estimate }
    public func await(_ context: StepContext) async throws {}
    public func undo(_ context: StepContext) async throws -> [String] { [] }
    /// A mutating step sends its `apply` with dryRun=All; a reading one has nothing to rehearse.
    public func rehearse(_ context: StepContext) async throws -> [CheckResult] {
        guard mutates else { return [] }
        return [await CheckResult.attempt(summary) { try await apply(context) }]
    }
}

/// The step id every strategy's first step has: `plan` runs it alone.
public let preflightStepID = "preflight"

/// What a step may use: the cluster, the journal (through `mutate` and `remember`), facts
/// recorded by earlier steps (also across a resume), dry-run, a logger.
public final class StepContext: Sendable {
    public let client: KubeClient
    public let dryRun: Bool
    public let logger: Logger
    let journal: Journal
    /// Put before the key of every fact ``remember(_:_:)`` journals (the facts the steps read
    /// keep the plain key). `rollback` runs the run's own steps with the roles swapped: what they
    /// learn (the claim it creates) is journaled as `rollback.…`, so it never overwrites what the
    /// run learnt (``RollbackFact``).
    let factPrefix: String
    /// The command that continues what the steps do, for their hints: `repave resume` in a run,
    /// `repave rollback` in a rollback (where `abort` is not offered).
    public let continueCommand: String
    /// Whether `repave abort` can still put things back (never in a rollback).
    public var mayAbort: Bool { continueCommand == Self.resumeCommand }
    public static let resumeCommand = "repave resume"

    /// What the runner sets as it goes and steps read; behind a lock, because a step may watch
    /// progress from a child task while the Lease renewal journals from another.
    struct State: Sendable {
        var facts: Facts
        var currentStep = ""
        var attempt = 1
        /// When the current step's wait began in this process. A wait tried again after a
        /// passing failure keeps that start, so its timeout is not restarted; a resume starts
        /// afresh.
        var waitStarted: (step: String, at: ContinuousClock.Instant)?
        var progress: @Sendable (ProgressEvent) -> Void = { _ in }
        /// What this process has read (or been answered by a write) since its last change: see
        /// ``recent(_:named:in:)``. Never journaled, so a resume starts with nothing.
        var reads: [String: ReadObject] = [:]
    }

    /// One object as last read: nil when the server said it does not exist.
    struct ReadObject: Sendable {
        let object: JSON?
        let type: ResourceType
    }
    private let state: Mutex<State>

    init(client: KubeClient, journal: Journal, dryRun: Bool, facts: Facts, logger: Logger, factPrefix: String = "", continueCommand: String = StepContext.resumeCommand) {
        self.client = client
        self.journal = journal
        self.dryRun = dryRun
        self.logger = logger
        self.factPrefix = factPrefix
        self.continueCommand = continueCommand
        state = Mutex(State(facts: facts))
    }

    func update<T>(_ body: (inout State) -> T) -> T { state.withLock { body(&$0) } }

    public var facts: Facts { state.withLock { $0.facts } }
    public var currentStep: String { state.withLock { $0.currentStep } }

    /// The deadline of the current step's wait for `timeout`, counted from the wait's first try.
    public func deadline(_ timeout: Duration) -> ContinuousClock.Instant {
        state.withLock { state in (state.waitStarted.map { $0.step == state.currentStep ? $0.at : .now } ?? .now) + timeout }
    }

    /// What is left of `timeout` for the current step's wait; at least 1 ms (`KubeClient.wait`
    /// still looks once before it reports a timeout, with what it saw).
    public func timeLeft(of timeout: Duration) -> Duration {
        max(deadline(timeout) - .now, .milliseconds(1))
    }

    /// Journals the fact's value (durable before returning), readable by every later step and
    /// by a resumed run: original replicas, the uid of an object this run created.
    public func remember<Value>(_ fact: Fact<Value>, _ value: Value) async throws {
        try await EngineRecord.fact(key: factPrefix + fact.key, value: value.journaled).append(to: journal, step: currentStep)
        state.withLock { $0.facts.set(fact, value) }
    }

    // MARK: - reads shared between steps

    /// GET one object (nil when absent), always from the server; the answer is kept for
    /// ``recent(_:named:in:)`` until this run changes anything.
    public func read(_ type: ResourceType, named name: String, in namespace: String? = nil) async throws -> JSON? {
        let object = try await client.getIfPresent(type, named: name, in: namespace)
        saw(object, type, named: name, in: namespace)
        return object
    }

    /// The object as this process last read it, when nothing has changed since by this run's
    /// hand; otherwise a fresh ``read(_:named:in:)``. For reads that prepare a change the server
    /// guards anyway (a resourceVersion or uid precondition, a create that fails on an existing
    /// name) or that only report. Never for a safety check, which must see the cluster now:
    /// those call ``read(_:named:in:)``.
    ///
    /// What is kept is forgotten at every change this run makes (``mutate(_:_:precondition:_:)``)
    /// and at every failure (the runner calls ``forgetReads()``: a 409 means what was read is
    /// stale), and it lives only in this process: a resume reads everything again.
    public func recent(_ type: ResourceType, named name: String, in namespace: String? = nil) async throws -> JSON? {
        if let kept = state.withLock({ $0.reads[Self.key(type, name, namespace)] }) { return kept.object }
        return try await read(type, named: name, in: namespace)
    }

    /// ``read(_:named:in:)`` of an object that must exist: absent, it is the client's 404.
    public func readExisting(_ type: ResourceType, named name: String, in namespace: String? = nil) async throws -> JSON {
        if let object = try await read(type, named: name, in: namespace) { return object }
        return try await client.get(type, named: name, in: namespace)
    }

    /// ``recent(_:named:in:)`` of an object that must exist: absent, it is the client's 404.
    public func recentExisting(_ type: ResourceType, named name: String, in namespace: String? = nil) async throws -> JSON {
        if let object = try await recent(type, named: name, in: namespace) { return object }
        return try await client.get(type, named: name, in: namespace)
    }

    /// What this process last read of the object, without asking the server (nil: nothing kept).
    func kept(_ type: ResourceType, named name: String, in namespace: String? = nil) -> ReadObject? {
        state.withLock { $0.reads[Self.key(type, name, namespace)] }
    }

    /// Keeps `object` as the object's state now: read by a wait, or the answer to this run's own
    /// write (taken after the write, so no change of ours lies between).
    public func saw(_ object: JSON?, _ type: ResourceType, named name: String, in namespace: String? = nil) {
        state.withLock { $0.reads[Self.key(type, name, namespace)] = ReadObject(object: object, type: type) }
    }

    /// Forgets every kept read (a change is about to be made, or something failed); with
    /// `types`, only the reads of those kinds of objects.
    public func forgetReads(of types: [ResourceType]? = nil) {
        state.withLock { state in
            guard let types else { return state.reads = [:] }
            state.reads = state.reads.filter { !types.contains($0.value.type) }
        }
    }

    /// Every object kept now, by path, for the summary of a finished run.
    var keptReads: [String: ReadObject] { state.withLock { $0.reads } }

    static func key(_ type: ResourceType, _ name: String, _ namespace: String?) -> String {
        type.path(namespace: namespace, name: name)
    }

    // MARK: - changes

    /// One mutating request: intent journaled and fsynced first, then the request, then its
    /// outcome journaled. (The journal's failpoints surround each record, see `Failpoints`.)
    /// What this process had read is forgotten first: after a change, every read is fresh.
    /// - Parameter changing: the kinds of objects the request can change, when the step knows
    ///   them all (a StorageClass created changes no claim, pod or workload): the reads of other
    ///   kinds stay kept. Left out: every read is forgotten.
    @discardableResult
    public func mutate<Result: Sendable>(
        _ verb: String, _ path: String, precondition: String? = nil, changing: [ResourceType]? = nil,
        _ request: () async throws -> Result
    ) async throws -> Result {
        forgetReads(of: changing)
        let (step, attempt) = state.withLock { ($0.currentStep, $0.attempt) }
        try await EngineRecord.intent(.init(verb: verb, path: path, precondition: precondition, attempt: attempt, dryRun: dryRun))
            .append(to: journal, step: step)
        let result: Result
        do {
            result = try await request()
        } catch {
            try await EngineRecord.outcome(.init(result: "error", detail: "\(error)")).append(to: journal, step: step)
            // Lost, not refused: the engine observes before anything is sent again.
            if TransientFailure.leavesOutcomeUnknown(error) { throw UnsettledWrite(verb: verb, path: path, cause: error) }
            throw error
        }
        try await EngineRecord.outcome(.init(result: "ok", detail: nil)).append(to: journal, step: step)
        return result
    }

    /// Journals, once, that the run passes its point of no return: the step calls it right
    /// before the request that cannot be undone (a failure before it leaves `abort` possible).
    public func crossPointOfNoReturn() async throws {
        guard !journal.records.contains(where: { $0.kind == EngineRecord.Kind.pnr.rawValue }) else { return }
        try await EngineRecord.pointOfNoReturn(step: currentStep).append(to: journal, step: currentStep)
    }

    /// Journals something the operator should know (not critical to resuming); the summary
    /// shows it, the log only at info.
    public func note(_ text: String) async throws {
        try await EngineRecord.note(["note": text]).append(to: journal, step: currentStep)
        logger.info("\(text)")
    }

    /// Reports how a long wait goes (a copy's bytes, percent, rate), as a progress line that
    /// replaces the last one; unlike ``waiting(_:)`` it is no failpoint.
    public func progressing(_ what: String, since: ContinuousClock.Instant) {
        let (step, progress) = state.withLock { ($0.currentStep, $0.progress) }
        progress(.waiting(step: step, for: what, since: since))
    }

    /// Says what a step waits for (a progress line), and marks the wait so that crash tests can
    /// stop the process inside it.
    public func waiting(_ what: String? = nil) {
        let (step, progress) = state.withLock { ($0.currentStep, $0.progress) }
        if let what { progress(.waiting(step: step, for: what, since: .now)) }
        let paused = ContinuousClock.now
        Failpoints.hit("in-wait:\(step)")
        // A test holding the run here does not eat the wait's timeout.
        state.withLock { state in
            if let started = state.waitStarted, started.step == step { state.waitStarted = (started.step, started.at + (.now - paused)) }
        }
    }
}

/// What the runner reports as a run goes, for `--progress`: a step starting, a wait beginning
/// (redrawn live on a terminal with its elapsed time), a passing failure retried.
public enum ProgressEvent: Sendable, Equatable {
    case step(id: String, summary: String)
    case waiting(step: String, for: String, since: ContinuousClock.Instant)
    case retrying(step: String, reason: String, in: Duration, attempt: Int, of: Int)
}
