/// Every error code Repave reports, with the exit status it carries. Scripts match on these
/// names (`-o json` puts them in `error.code`), and tests check them instead of English text.
///
/// A code's exit status is where the error stops a run by default. ``MaintenanceSession`` says
/// `refused` (2) instead whenever the run had changed nothing yet, whatever the code.
/// A struct over static members rather than an enum, so adding a code breaks no `switch`.
public struct ErrorCode: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    public let exitStatus: ExitStatus

    private init(_ name: String, _ exitStatus: ExitStatus) {
        self.name = name
        self.exitStatus = exitStatus
    }

    public var description: String { name }

    /// A Kubernetes `Status` reason as a code: `kube.conflict`, `kube.forbidden`.
    public static func kube(_ reason: String, unavailable: Bool) -> ErrorCode {
        ErrorCode("kube." + reason.prefix(1).lowercased() + reason.dropFirst(), unavailable ? .clusterUnavailable : .refused)
    }

    // MARK: the command line and the process
    public static let usage = ErrorCode("usage", .usage)
    public static let `internal` = ErrorCode("internal", .internalError)
    public static let noTerminal = ErrorCode("run.no-terminal", .refused)

    // MARK: plans
    public static let planInvalid = ErrorCode("plan.invalid", .refused)
    public static let planDryRunFailed = ErrorCode("plan.dry-run-failed", .refused)

    // MARK: the cluster and its credentials
    public static let kubeconfigInvalid = ErrorCode("kubeconfig.invalid", .clusterUnavailable)
    public static let clusterUnreachable = ErrorCode("cluster.unreachable", .clusterUnavailable)

    // MARK: preflight refusals (nothing changed)
    public static let permissions = ErrorCode("preflight.permissions", .refused)
    public static let noClaim = ErrorCode("preflight.no-claim", .refused)
    public static let claimNotBound = ErrorCode("preflight.claim-not-bound", .refused)
    public static let foreignPod = ErrorCode("preflight.foreign-pod", .refused)
    public static let foreignWorkload = ErrorCode("preflight.foreign-workload", .refused)
    public static let noWorkload = ErrorCode("preflight.no-workload", .refused)
    /// Migrate's preflight: a Block volume, a class of another driver, a finalizer repave does
    /// not know, a StatefulSet that deletes its claims, a server dry run that refused.
    public static let blockVolume = ErrorCode("preflight.block-volume", .refused)
    public static let otherProvisioner = ErrorCode("preflight.other-provisioner", .refused)
    public static let unknownFinalizers = ErrorCode("preflight.unknown-finalizers", .refused)
    public static let claimRetentionDelete = ErrorCode("preflight.claim-retention-delete", .refused)
    public static let waitForFirstConsumer = ErrorCode("preflight.wait-for-first-consumer", .refused)
    public static let dryRunRefused = ErrorCode("preflight.dry-run-refused", .refused)
    public static let classMismatch = ErrorCode("preflight.class-mismatch", .refused)
    public static let noClass = ErrorCode("preflight.no-class", .refused)
    public static let reconcilers = ErrorCode("preflight.reconcilers", .refused)
    public static let insideThePod = ErrorCode("preflight.inside-the-pod", .refused)
    public static let runDirectoryOnClaim = ErrorCode("preflight.run-directory-on-claim", .refused)
    public static let git = ErrorCode("preflight.git", .refused)
    public static let gitDirty = ErrorCode("preflight.git-dirty", .refused)
    public static let gitReportMissing = ErrorCode("preflight.git-report-missing", .refused)
    public static let gitReportInvalid = ErrorCode("preflight.git-report-invalid", .refused)
    public static let gitReportForeign = ErrorCode("preflight.git-report-foreign", .refused)
    public static let gitReportStale = ErrorCode("preflight.git-report-stale", .refused)
    /// The replicas strategy's preflight.
    public static let notLonghorn = ErrorCode("preflight.not-longhorn", .refused)
    public static let volumeFaulted = ErrorCode("preflight.volume-faulted", .refused)
    public static let volumeDetached = ErrorCode("preflight.volume-detached", .refused)
    public static let notEnoughNodes = ErrorCode("preflight.not-enough-nodes", .refused)

    // MARK: a run that stopped (resume is safe)
    public static let runRefused = ErrorCode("run.refused", .refused)
    public static let runStopped = ErrorCode("run.stopped", .stoppedMidRun)
    public static let runInterrupted = ErrorCode("run.interrupted", .interrupted)
    public static let lockHeld = ErrorCode("lock.held", .journalRefused)
    public static let manifestsWrite = ErrorCode("manifests.write", .stoppedMidRun)
    public static let writeUnsettled = ErrorCode("write.unsettled", .stoppedMidRun)
    public static let claimInUse = ErrorCode("window.claim-in-use", .stoppedMidRun)
    public static let scaledUp = ErrorCode("window.scaled-up", .stoppedMidRun)
    public static let retainNoVolume = ErrorCode("retain-old-volume.no-volume", .stoppedMidRun)
    public static let retainReplaced = ErrorCode("retain-old-volume.replaced", .stoppedMidRun)
    public static let deleteNoUID = ErrorCode("delete-claim.no-uid", .stoppedMidRun)
    public static let deleteStuck = ErrorCode("delete-claim.stuck", .stoppedMidRun)
    public static let createForeign = ErrorCode("create-claim.foreign", .stoppedMidRun)
    public static let scaleUpFailed = ErrorCode("scale-up.failed", .stoppedMidRun)
    public static let verifyFailed = ErrorCode("verify.failed", .stoppedMidRun)
    /// Migrate's copy pods: an image without what they need, a refused rsync exit, a verify pass
    /// that found differences.
    public static let copyImageUnsuitable = ErrorCode("copy.image-unsuitable", .stoppedMidRun)
    public static let copyFailed = ErrorCode("copy.failed", .stoppedMidRun)
    public static let copyUnschedulable = ErrorCode("copy.unschedulable", .stoppedMidRun)
    public static let copyDiffers = ErrorCode("copy.differs", .stoppedMidRun)
    /// Migrate's other steps: a staging claim of its name made by someone else, an old volume
    /// still attached after scale-down, the copied volume gone, the new claim bound elsewhere.
    public static let stagingForeign = ErrorCode("create-staging-claim.foreign", .stoppedMidRun)
    public static let detachStuck = ErrorCode("await-detach.stuck", .stoppedMidRun)
    public static let rebindNoVolume = ErrorCode("prebind-volume.no-volume", .stoppedMidRun)
    public static let rebindOtherVolume = ErrorCode("await-bound.other-volume", .stoppedMidRun)
    /// Migrate's last look before deleting the claim: the workloads changed after the final copy
    /// began, or the staging volume holding the copy is gone, replaced or no longer Retain.
    public static let sourceChanged = ErrorCode("delete-claim.source-changed", .stoppedMidRun)
    public static let stagingVolumeLost = ErrorCode("delete-claim.copy-gone", .stoppedMidRun)
    public static let replicasReplaced = ErrorCode("patch-replicas.replaced", .stoppedMidRun)
    public static let longhornGone = ErrorCode("save-manifests.longhorn-gone", .stoppedMidRun)
    public static let replicasNoVolume = ErrorCode("patch-replicas.no-volume", .stoppedMidRun)
    public static let replicasUnschedulable = ErrorCode("await-rebuild.unschedulable", .stoppedMidRun)
    public static let rebuildTimeout = ErrorCode("await-rebuild.timeout", .stoppedMidRun)
    public static let rebuildCountChanged = ErrorCode("await-rebuild.count-changed", .stoppedMidRun)
    /// The engine demo's (`repave-lab engine-demo`, tests only).
    public static let demoForeign = ErrorCode("demo.foreign", .stoppedMidRun)
    public static let demoNoUID = ErrorCode("demo.no-uid", .stoppedMidRun)

    // MARK: journals and run directories
    public static let journalRefused = ErrorCode("journal.refused", .journalRefused)
    public static let journalUnreadable = ErrorCode("journal.unreadable", .journalRefused)
    public static let resumeChanged = ErrorCode("resume.changed", .journalRefused)
    public static let resumeAborted = ErrorCode("resume.aborted", .journalRefused)
    public static let runNotStarted = ErrorCode("run.not-started", .journalRefused)
    public static let runNoPlan = ErrorCode("run.no-plan", .journalRefused)
    public static let runPlanUnreadable = ErrorCode("run.plan-unreadable", .journalRefused)
    public static let abortPastPointOfNoReturn = ErrorCode("abort.past-pnr", .journalRefused)
    public static let abortEnded = ErrorCode("abort.ended", .journalRefused)
    public static let statusNoRuns = ErrorCode("status.no-runs", .refused)
    public static let resumeFinalized = ErrorCode("resume.finalized", .journalRefused)

    // MARK: finalize (nothing changed unless it says so)
    public static let finalizeNotFinished = ErrorCode("finalize.not-finished", .refused)
    public static let finalizeNothingKept = ErrorCode("finalize.nothing-kept", .refused)
    public static let finalizeVolumeGone = ErrorCode("finalize.volume-gone", .refused)
    public static let finalizeVolumeReplaced = ErrorCode("finalize.volume-replaced", .refused)
    public static let finalizeVolumeForeign = ErrorCode("finalize.volume-foreign", .refused)
    public static let finalizeVolumeBound = ErrorCode("finalize.volume-bound", .refused)
    public static let finalizeDeclined = ErrorCode("finalize.declined", .refused)
    /// Stopped after a change: running `finalize` again continues it.
    public static let finalizeStopped = ErrorCode("finalize.stopped", .stoppedMidRun)

    // MARK: audit
    /// `--write-plans`: a plan file is already there; nothing was written.
    public static let auditPlanExists = ErrorCode("audit.plan-exists", .refused)
    public static let auditPlanUnwritable = ErrorCode("audit.plan-unwritable", .refused)

    // MARK: git
    public static let gitFailed = ErrorCode("git.failed", .refused)
    public static let gitNoSuchPath = ErrorCode("git.no-such-path", .refused)
    public static let gitReportUnwritable = ErrorCode("git.report-unwritable", .refused)
    /// libgit2's owner check is process-wide: one process cannot run checks with both settings.
    public static let gitOwnerValidationConflict = ErrorCode("git.owner-validation-conflict", .internalError)

    /// The catalog, for docs/journal-and-engine.md and its test.
    public static let all: [ErrorCode] = [
        usage, .internal, noTerminal, planInvalid, planDryRunFailed, kubeconfigInvalid, clusterUnreachable,
        permissions, noClaim, claimNotBound, foreignPod, foreignWorkload, noWorkload, classMismatch, noClass, reconcilers,
        insideThePod, runDirectoryOnClaim, git, gitDirty, gitReportMissing, gitReportInvalid, gitReportForeign, gitReportStale,
        runRefused, runStopped, runInterrupted, lockHeld, manifestsWrite, writeUnsettled, claimInUse, scaledUp, retainNoVolume, retainReplaced,
        deleteNoUID, deleteStuck, createForeign, scaleUpFailed, verifyFailed, copyImageUnsuitable, copyFailed, copyUnschedulable, copyDiffers,
        stagingForeign, detachStuck, rebindNoVolume, rebindOtherVolume, sourceChanged, stagingVolumeLost, blockVolume, otherProvisioner, unknownFinalizers, claimRetentionDelete, waitForFirstConsumer, dryRunRefused, demoForeign, demoNoUID,
        journalRefused, journalUnreadable, resumeChanged, resumeAborted, runNotStarted, runNoPlan, runPlanUnreadable,
        abortPastPointOfNoReturn, abortEnded, statusNoRuns, auditPlanExists, auditPlanUnwritable, gitFailed, gitNoSuchPath, gitReportUnwritable, gitOwnerValidationConflict,
        notLonghorn, volumeFaulted, volumeDetached, notEnoughNodes, replicasReplaced, longhornGone, replicasNoVolume,
        replicasUnschedulable, rebuildTimeout, rebuildCountChanged,
        resumeFinalized, finalizeNotFinished, finalizeNothingKept, finalizeVolumeGone, finalizeVolumeReplaced, finalizeVolumeForeign,
        finalizeVolumeBound, finalizeDeclined, finalizeStopped,
    ]
}
