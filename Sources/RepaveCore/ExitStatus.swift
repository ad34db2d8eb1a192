/// The process exit statuses of DESIGN.md, the contract scripts and runbooks rely on.
public enum ExitStatus: Int32, Sendable, CaseIterable {
    /// Done, or nothing to do.
    case success = 0
    /// An internal bug.
    case internalError = 1
    /// Refused before changing anything: invalid plan, failed preflight, git check failed.
    case refused = 2
    /// Stopped mid-run; `repave resume` is safe.
    case stoppedMidRun = 3
    /// The journal is locked or corrupt, or resume was refused (plan, cluster or uid changed).
    case journalRefused = 4
    /// Cannot load the kubeconfig, or reach or authenticate to the cluster.
    case clusterUnavailable = 5
    /// Command-line usage.
    case usage = 64
    /// Interrupted (SIGINT) after the last journal record was flushed.
    case interrupted = 130
    /// Terminated (SIGTERM) after the last journal record was flushed.
    case terminated = 143
}
