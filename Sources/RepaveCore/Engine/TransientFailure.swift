import Curl
import KubeAPI
import Logging

/// Failures that pass on their own — a lost connection, a timeout, an overloaded or restarting
/// API server, an optimistic-lock conflict — after which a step is worth doing again, from an
/// observation of the cluster. Everything else (refusals, a changed object, a deadline) stops
/// the run for the operator.
enum TransientFailure {
    /// Tries of one step after its first failure.
    static let maxAttempts = 6

    /// The pause before trying again, or nil when the step must not be tried again.
    static func delay(after error: any Error, attempt: Int) -> Duration? {
        guard attempt <= maxAttempts, isTransient(error) else { return nil }
        if let api = error as? KubeAPIError, let wait = api.retryAfter { return min(wait, .seconds(30)) }
        return .milliseconds(250 * (1 << min(attempt - 1, 4)))
    }

    static func isTransient(_ error: any Error) -> Bool {
        if let curl = error as? CurlError { return curl.isConnectionError }
        guard let api = error as? KubeAPIError else { return false }
        switch api.httpStatus {
        case 429, 500, 502, 503, 504: return true
        // A resourceVersion conflict passes with a fresh read; a failed uid precondition means
        // another object now has the name, which is no passing matter.
        case 409: return api.reason == .conflict && !api.message.contains("Precondition failed")
        default: return api.reason == .serverTimeout || api.reason == .timeout
        }
    }

    /// `body`, again after each passing failure (up to `maxAttempts` times, with the pauses of
    /// `delay`). For work that reads before it writes, so that no try repeats a change blindly.
    static func retrying<Result>(_ what: String, logger: Logger, _ body: () async throws -> Result) async throws -> Result {
        var attempt = 0
        while true {
            do {
                return try await body()
            } catch {
                attempt += 1
                guard let delay = delay(after: error, attempt: attempt) else { throw error }
                logger.warning("\(what): \(error); trying again in \(delay.milliseconds) ms")
                try await Task.sleep(for: delay)
            }
        }
    }
}
