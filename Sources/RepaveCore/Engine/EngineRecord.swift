import Blocking
import Foundation
import Journal

/// The kinds of journal record the engine writes, each with its payload. The journal frames
/// records as kind + JSON; this is where the engine says what each kind means and holds, and
/// whether a reader that does not know it must refuse the journal (`critical`).
///
/// Schema 2 (this release) changed one thing on disk: the header names the run's `strategy`.
/// Every payload below has the shape it had in schema 1, so a schema-1 journal decodes as it is.
public enum EngineRecord: Sendable, Equatable {
    /// Before a mutating request: what will be sent.
    case intent(Intent)
    /// After it: `ok`, or the error (which may still have reached the server).
    case outcome(Outcome)
    /// Something a later step or a resumed run needs: an original replica count, a uid.
    case fact(key: String, value: String)
    /// A resumed step's dangling intent, settled by reading the cluster.
    case resolved(applied: Bool)
    /// The step's change was made; only its wait remains.
    case applied
    /// The operator's consent: typed at the prompt (`operator`) or given by `--yes`.
    case confirmed(by: String)
    /// The run passes its point of no return with this step.
    case pointOfNoReturn(step: String)
    case stepDone
    /// The Lease: an intent before it is written, the result after.
    case lock(LockRecord)
    case stopped(reason: String)
    case finished
    /// The journal cut a torn last record away (written by the journal itself on open).
    case repair
    /// For the operator; not needed to resume.
    case note([String: String])
    /// Resume went on although the run's binding changed (`--accept-changed-plan`).
    case override(accepted: String)
    /// `abort` put back what the run changed.
    case aborted(undone: String)
    /// `finalize` deleted the volume the finished run kept (with its Longhorn volume).
    case finalized(deleted: String)
    /// `rollback` gave the claim's name back to the old volume; `restored` names it, `left` the
    /// new volume (with what was written on it since the swap), which finalize then deletes.
    case rolledBack(restored: String, left: String)

    public enum Kind: String, CaseIterable, Sendable {
        case header, intent, outcome, fact, resolved, applied, confirmed, pnr
        case stepDone = "step_done"
        case lock, stopped, finished, repair, note, override, aborted, finalized
        case rolledBack = "rolled_back"

        /// Whether resuming depends on the record: a reader that does not know a critical kind
        /// refuses the journal; a non-critical one (a note) may be skipped.
        public var isCritical: Bool { self != .note }
    }

    public struct Intent: Codable, Sendable, Equatable {
        public var verb: String
        public var path: String
        public var precondition: String?
        public var attempt: Int
        public var dryRun: Bool
    }

    public struct Outcome: Codable, Sendable, Equatable {
        public var result: String
        public var detail: String?
        public var succeeded: Bool { result == "ok" }
    }

    public struct LockRecord: Codable, Sendable, Equatable {
        public var lease: String
        public var holder: String
        public var intent: String?
        public var result: String?
    }

    public var kind: Kind {
        switch self {
        case .intent: .intent
        case .outcome: .outcome
        case .fact: .fact
        case .resolved: .resolved
        case .applied: .applied
        case .confirmed: .confirmed
        case .pointOfNoReturn: .pnr
        case .stepDone: .stepDone
        case .lock: .lock
        case .stopped: .stopped
        case .finished: .finished
        case .repair: .repair
        case .note: .note
        case .override: .override
        case .aborted: .aborted
        case .finalized: .finalized
        case .rolledBack: .rolledBack
        }
    }

    // MARK: payloads on disk (schema 1 and 2 alike)

    private struct Fact: Codable { var key: String; var value: String }
    private struct Resolved: Codable { var applied: String }
    private struct StepPayload: Codable { var step: String }
    private struct Confirmed: Codable { var by: String }
    private struct Crossed: Codable { var crossed: String }
    private struct Reason: Codable { var reason: String }
    private struct Result: Codable { var result: String }
    private struct Accepted: Codable { var accepted: String }
    private struct Undone: Codable { var undone: String }
    private struct Deleted: Codable { var deleted: String }
    private struct RolledBack: Codable { var restored: String; var left: String }

    /// Appends the record, durable before returning, off the cooperative pool (fdatasync blocks).
    @discardableResult
    func append(to journal: Journal, step: String?) async throws(JournalError) -> JournalRecord {
        let kind = kind.rawValue, critical = kind != Kind.note.rawValue
        func write(_ payload: some Encodable & Sendable) async throws(JournalError) -> JournalRecord {
            try await offPool("journal append") { () throws(JournalError) in try journal.append(kind: kind, step: step, critical: critical, data: payload) }
        }
        switch self {
        case .intent(let intent): return try await write(intent)
        case .outcome(let outcome): return try await write(outcome)
        case .fact(let key, let value): return try await write(Fact(key: key, value: value))
        case .resolved(let applied): return try await write(Resolved(applied: applied ? "yes" : "no"))
        case .applied, .stepDone: return try await write(StepPayload(step: step ?? ""))
        case .confirmed(let by): return try await write(Confirmed(by: by))
        case .pointOfNoReturn(let step): return try await write(Crossed(crossed: step))
        case .lock(let lock): return try await write(lock)
        case .stopped(let reason): return try await write(Reason(reason: reason))
        case .finished: return try await write(Result(result: "done"))
        case .repair: return try await write([String: String]())
        case .note(let fields): return try await write(fields)
        case .override(let accepted): return try await write(Accepted(accepted: accepted))
        case .aborted(let undone): return try await write(Undone(undone: undone))
        case .finalized(let deleted): return try await write(Deleted(deleted: deleted))
        case .rolledBack(let restored, let left): return try await write(RolledBack(restored: restored, left: left))
        }
    }

    /// The record as the engine wrote it. `nil` for the header and for a non-critical kind this
    /// engine does not know; a critical unknown kind, or a payload that does not decode, is an
    /// error naming the record: a journal is never read with a record silently left out.
    public init?(decoding record: JournalRecord) throws(RunHistoryError) {
        guard let kind = Kind(rawValue: record.kind) else {
            if record.critical { throw .unknownKind(record.kind, sequence: record.sequence) }
            return nil
        }
        func decode<T: Decodable>(_ type: T.Type) throws(RunHistoryError) -> T {
            do {
                return try JSONDecoder().decode(type, from: record.data)
            } catch {
                throw .undecodable(kind: record.kind, sequence: record.sequence, reason: "\(error)")
            }
        }
        switch kind {
        case .header: return nil
        case .intent: self = .intent(try decode(Intent.self))
        case .outcome: self = .outcome(try decode(Outcome.self))
        case .fact:
            let fact = try decode(Fact.self)
            self = .fact(key: fact.key, value: fact.value)
        case .resolved:
            let resolved = try decode(Resolved.self)
            guard ["yes", "no"].contains(resolved.applied) else {
                throw .undecodable(kind: record.kind, sequence: record.sequence, reason: "applied is '\(resolved.applied)', not yes or no")
            }
            self = .resolved(applied: resolved.applied == "yes")
        case .applied: _ = try decode(StepPayload.self); self = .applied
        case .stepDone: _ = try decode(StepPayload.self); self = .stepDone
        case .confirmed: self = .confirmed(by: try decode(Confirmed.self).by)
        case .pnr: self = .pointOfNoReturn(step: try decode(Crossed.self).crossed)
        case .lock: self = .lock(try decode(LockRecord.self))
        case .stopped: self = .stopped(reason: try decode(Reason.self).reason)
        case .finished: _ = try decode(Result.self); self = .finished
        case .repair: self = .repair
        case .note: self = .note(try decode([String: String].self))
        case .override: self = .override(accepted: try decode(Accepted.self).accepted)
        case .aborted: self = .aborted(undone: try decode(Undone.self).undone)
        case .finalized: self = .finalized(deleted: try decode(Deleted.self).deleted)
        case .rolledBack:
            let payload = try decode(RolledBack.self)
            self = .rolledBack(restored: payload.restored, left: payload.left)
        }
    }
}

/// A journal whose records the engine cannot read: which record, and why.
public enum RunHistoryError: Error, Sendable, Equatable, UserFacingError, CustomStringConvertible {
    case unknownKind(String, sequence: Int)
    case undecodable(kind: String, sequence: Int, reason: String)
    case badHeader(reason: String)

    public var code: String { ErrorCode.journalUnreadable.name }
    public var exitStatus: ExitStatus { ErrorCode.journalUnreadable.exitStatus }
    public var message: String {
        switch self {
        case .unknownKind(let kind, let sequence):
            "the journal has a critical record of kind '\(kind)' (seq \(sequence)) that this repave does not know"
        case .undecodable(let kind, let sequence, let reason):
            "the journal's \(kind) record (seq \(sequence)) does not decode: \(reason)"
        case .badHeader(let reason):
            "the journal's header (seq 1) does not decode: \(reason)"
        }
    }
    public var causes: [String] { [] }
    public var hint: String? {
        switch self {
        case .unknownKind: "use the repave that wrote it"
        case .undecodable, .badHeader: "the journal was written by another program or edited; inspect it with 'repave journal show RUN'"
        }
    }
    public var description: String { message }
}

/// A run's journal as the engine reads it: every record decoded (strictly), and what follows from
/// them — steps done, a dangling intent, facts, the point of no return, how the run ended.
public struct RunHistory: Sendable {
    public let header: RunHeader
    public let entries: [(record: JournalRecord, event: EngineRecord)]

    public init(_ records: [JournalRecord]) throws(RunHistoryError) {
        guard let first = records.first else { throw .badHeader(reason: "the journal is empty") }
        do {
            header = try first.decode(RunHeader.self)
        } catch {
            throw .badHeader(reason: "\(error)")
        }
        var entries: [(JournalRecord, EngineRecord)] = []
        for record in records.dropFirst() {
            if let event = try EngineRecord(decoding: record) { entries.append((record, event)) }
        }
        self.entries = entries
    }

    /// Steps done, the step whose last intent has no outcome, steps applied but not awaited,
    /// intents per step, and whether the run changed anything.
    public var state: RunState {
        var state = RunState()
        var open: String?
        for (record, event) in entries {
            switch event {
            case .intent:
                open = record.step
                state.changed = true
                if let step = record.step { state.attempts[step, default: 0] += 1 }
            case .outcome(let outcome):
                // An error outcome may still have reached the server (a lost answer): leave it
                // open, so resume settles it by reading the cluster.
                if outcome.succeeded { open = nil }
            case .resolved: open = nil
            case .applied: if let step = record.step { state.applied.insert(step) }
            case .stepDone:
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

    /// The facts the run journaled; the last value of a key wins.
    public var facts: Facts {
        var facts: [String: String] = [:]
        for case (_, .fact(let key, let value)) in entries { facts[key] = value }
        return Facts(facts)
    }

    public var crossedPointOfNoReturn: Bool { entries.contains { if case .pointOfNoReturn = $0.event { true } else { false } } }
    public var finished: Bool { entries.contains { $0.event == .finished } }
    public var confirmed: Bool { entries.contains { if case .confirmed = $0.event { true } else { false } } }
    /// What `abort` put back, when the run was aborted.
    public var aborted: String? {
        entries.lazy.compactMap { if case .aborted(let undone) = $0.event { undone } else { nil } }.first
    }

    /// What `finalize` deleted, when it finished.
    public var finalized: String? {
        entries.lazy.compactMap { if case .finalized(let deleted) = $0.event { deleted } else { nil } }.first
    }
    /// Whether `finalize` has begun on this run (any record of its steps): it is then only
    /// carried on by `finalize`, never resumed forward nor aborted.
    public var finalizing: Bool { entries.contains { $0.record.step?.hasPrefix(MaintenanceSession.finalizeStep) == true } }

    /// What `rollback` restored and left, when it finished.
    public var rolledBack: (restored: String, left: String)? {
        entries.lazy.compactMap { if case .rolledBack(let restored, let left) = $0.event { (restored, left) } else { nil } }.first
    }
    /// Whether `rollback` has begun on this run (any record of its steps, its consent included):
    /// from then on only `rollback` carries it on, and after it only `finalize`.
    public var rollingBack: Bool { entries.contains { $0.record.step?.hasPrefix(MaintenanceSession.rollbackStep) == true } }
    /// The swap is done: the claim is Bound to the volume the run moved it onto (`await-bound`
    /// done), whether or not the steps after it finished. What `rollback` starts from.
    public var swapped: Bool { finished || state.done.contains("await-bound") }

    /// How the run's last record ended it, when it did: finished, stopped (with why), aborted or
    /// finalized.
    public var ending: (kind: EngineRecord.Kind, reason: String?)? {
        guard let last = entries.last else { return nil }
        switch last.event {
        case .finished: return (.finished, nil)
        case .stopped(let reason): return (.stopped, reason)
        case .aborted: return (.aborted, nil)
        case .finalized(let deleted): return (.finalized, deleted)
        case .rolledBack(let restored, _): return (.rolledBack, restored)
        default: return nil
        }
    }
}

/// What a journal says about a run's steps (``RunHistory/state``).
public struct RunState: Equatable, Sendable {
    public var done: Set<String> = []
    public var dangling: String?
    public var applied: Set<String> = []
    public var attempts: [String: Int] = [:]
    /// Whether this run has sent any change (an intent exists).
    public var changed = false

    public init() {}
}
