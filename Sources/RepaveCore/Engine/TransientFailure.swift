import Curl
import KubeAPI
import Logging

/// Which failures pass with a fresh look at the cluster. Retries of a *request* belong to the
/// client alone (`KubeClient.send`: reads after a lost connection or a 5xx, anything after a 429,
/// with backoff and Retry-After; writes never blindly). The engine adds only what the client
/// cannot know: a resourceVersion conflict passes with a new read, and a change whose answer was
/// lost is settled by observing whether it was made. It never sends the failed request again
/// itself, so one read is sent at most as often as the client's policy allows
/// (docs/journal-and-engine.md, "Retries").
enum TransientFailure {
    /// How the run machine may go on after `error`.
    static func classify(_ error: any Error) -> RunMachine.Failure {
        let reason = "\(error)"
        // A lost answer is settled by observing; a server that said when to come back is
        // asked again no sooner.
        if let unsettled = error as? UnsettledWrite { return .passing(reason, retryAfter: (unsettled.cause as? KubeAPIError)?.retryAfter) }
        if let api = error as? KubeAPIError, isConflict(api) { return .passing(reason, retryAfter: api.retryAfter) }
        return .final(reason)
    }

    /// A resourceVersion conflict passes with a fresh read, also a DELETE's failed resourceVersion
    /// precondition ("Precondition failed: ResourceVersion in precondition: …": finalize's delete of
    /// a PV the cluster's reclaim updated meanwhile, seen after a rollback on the real node); a
    /// failed uid precondition means another object now has the name, which is no passing matter.
    static func isConflict(_ api: KubeAPIError) -> Bool {
        api.httpStatus == 409 && api.reason == .conflict && !api.message.contains("Precondition failed: UID")
    }

    /// Whether a write's failure leaves its outcome unknown: the connection was lost, the
    /// request timed out, or the server failed (5xx) after it may have acted.
    static func leavesOutcomeUnknown(_ error: any Error) -> Bool {
        if let curl = error as? CurlError { return curl.isConnectionError }
        guard let api = error as? KubeAPIError else { return false }
        return api.httpStatus >= 500 || api.reason == .serverTimeout || api.reason == .timeout
    }

    /// `body`, again after each passing failure (at most `RunMachine.maxRetries` times, with its
    /// pauses). For work outside the steps that reads before it writes (the Lease, abort), so no
    /// try repeats a change blindly.
    static func retrying<Result>(_ what: String, logger: Logger, _ body: () async throws -> Result) async throws -> Result {
        var attempt = 0
        while true {
            do {
                return try await body()
            } catch {
                attempt += 1
                guard case .passing(_, let retryAfter) = classify(error), attempt <= RunMachine.maxRetries else { throw error }
                let delay = RunMachine.delay(attempt: attempt, retryAfter: retryAfter)
                logger.warning("\(what): \(error); trying again in \(delay.milliseconds) ms")
                try await Task.sleep(for: delay)
            }
        }
    }
}

/// A change whose answer was lost: it may or may not have been made. `StepContext.mutate` throws
/// it, and the engine settles it by observing the cluster before anything is sent again.
public struct UnsettledWrite: Error, Sendable, UserFacingError, CustomStringConvertible {
    public let verb: String
    public let path: String
    public let cause: any Error

    public var code: String { ErrorCode.writeUnsettled.name }
    public var message: String { verb.isEmpty ? "the outcome of \(path) is unknown" : "the outcome of \(verb) \(path) is unknown" }
    public var causes: [String] { ["\(cause)"] }
    public var hint: String? { "'repave resume' reads the cluster to settle whether it was made; nothing is sent twice blindly" }
    public var exitStatus: ExitStatus { ErrorCode.writeUnsettled.exitStatus }
    public var description: String { "\(message): \(cause)" }
}
