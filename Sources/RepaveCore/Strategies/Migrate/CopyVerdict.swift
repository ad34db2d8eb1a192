import Foundation

/// What a pass's exit code means for the run.
public enum CopyVerdict: Sendable, Equatable {
    /// Accepted: 0, or for a warm copy 23/24 (journaled, with the files rsync named).
    case accepted(code: Int32, namedFiles: [String])
    /// The verify pass exited 0 but itemized differences.
    case differs(itemized: [String])
    /// Refused: what rsync's code means, and the files it named.
    case refused(code: Int32, meaning: String, namedFiles: [String])

    public init(pass: CopyPod.Pass, exitCode: Int32, log: RsyncLog) {
        // The verify script's own verdict: it held what rsync itemized, even when the log
        // read now no longer does.
        if pass == .verify, exitCode == CopyPod.differsExitCode {
            self = .differs(itemized: log.itemized)
            return
        }
        guard pass.acceptedExitCodes.contains(exitCode) else {
            self = .refused(code: exitCode, meaning: Self.meaning(of: exitCode, log: log), namedFiles: log.namedFiles)
            return
        }
        if pass == .verify, !log.itemized.isEmpty {
            self = .differs(itemized: log.itemized)
            return
        }
        self = .accepted(code: exitCode, namedFiles: log.namedFiles)
    }

    /// The error that stops the run, or nil when the pass is accepted. `pod` is the copy pod, in
    /// `namespace`, whose log the operator reads next. `versionRecorded`: the run has already
    /// journaled and checked this image's `rsync --version`, so a log that lost its first lines
    /// (the kubelet's log limit, on a re-read of a long copy) does not need them.
    public func error(pass: CopyPod.Pass, log: RsyncLog, pod: String, namespace: String, versionRecorded: Bool = false) -> RepaveError? {
        let step = pass.rawValue + "-copy"
        let logs = "kubectl logs -n \(namespace) \(pod)"
        // Every pass prints `rsync --version` first: a log without it is no proof of anything,
        // unless the run recorded the version from an earlier read.
        if let unsuitable = log.unsuitable(versionRecorded: versionRecorded) {
            return RepaveError(.copyImageUnsuitable, "\(step): \(unsuitable)",
                               hint: "copy.image needs /bin/sh, tr and rsync 3.1 or later with ACLs and xattrs; 'repave abort RUN', then name such an image in the plan")
        }
        switch self {
        case .accepted:
            return nil
        case .differs(let itemized) where itemized.isEmpty:
            return RepaveError(.copyDiffers, "\(step): the copy differs from the source (the pod exited \(CopyPod.differsExitCode); its log no longer lists where)",
                               hint: "'repave resume RUN' copies and verifies again; if the copy differs again, something still writes to the claim (\(logs))")
        case .differs(let itemized):
            return RepaveError(.copyDiffers, "\(step): the copy differs from the source in \(itemized.count) \(itemized.count == 1 ? "entry" : "entries"): \(Self.list(itemized))",
                               hint: "'repave resume RUN' copies and verifies again; if the copy differs again, something still writes to the claim (\(logs))")
        case .refused(let code, let meaning, let files):
            let named = files.isEmpty ? "" : "; rsync named \(Self.list(files))"
            let quiet = pass != .warm && (code == 23 || code == 24)
            return RepaveError(.copyFailed, "\(step): rsync exited \(code) (\(meaning))\(quiet ? " on a volume that must not change" : "")\(named)",
                               hint: quiet
                                ? "\(Self.cause(of: code, files: files, problems: log.problems)): read \(logs), fix that, then 'repave resume RUN' copies again (or 'repave abort RUN')"
                                : "read \(logs), fix the cause, then 'repave resume RUN' copies again (or 'repave abort RUN')")
        }
    }

    /// What a 23 or 24 of a pass that runs with the workload down most likely means, from the
    /// paths rsync named: the new volume refused a write (read-only, full, or a permission), a
    /// file of the claim could not be read, or the claim changed under the copy.
    static func cause(of code: Int32, files: [String], problems: [String]) -> String {
        let destination = CopyPod.destinationPath + "/", source = CopyPod.sourcePath + "/"
        if problems.contains(where: { $0.contains("Read-only file system") }) {
            return "the new volume is read-only in the copy pod (rsync: Read-only file system)"
        }
        if problems.contains(where: { $0.contains("No space left on device") }) {
            return "the new volume is full (rsync: No space left on device)"
        }
        if code == 23, !files.isEmpty, files.allSatisfy({ ($0 + "/").hasPrefix(destination) }) {
            return "rsync could not write the new volume"
        }
        if code == 23, !files.isEmpty, files.allSatisfy({ $0.hasPrefix(source) }) {
            return "rsync could not read files of the claim"
        }
        return code == 24 ? "files of the claim vanished: something still writes to it" : "a file could not be read or written, or something still writes to the claim"
    }

    /// The first ten, and how many more.
    private static func list(_ items: [String]) -> String {
        items.prefix(10).joined(separator: ", ") + (items.count > 10 ? " and \(items.count - 10) more" : "")
    }

    /// rsync(1)'s EXIT VALUES, and the shell's codes for a missing command or a killed one.
    public static func meaning(of code: Int32, log: RsyncLog = RsyncLog()) -> String {
        switch code {
        case 0: "success"
        case 1: "syntax or usage error"
        case 2: "protocol incompatibility"
        case 3: "errors selecting input/output files, dirs"
        case 4: "requested action not supported"
        case 5: "error starting client-server protocol"
        case 10: "error in socket I/O"
        case 11: "error in file I/O"
        case 12: "error in rsync protocol data stream"
        case 13: "errors with program diagnostics"
        case 14: "error in IPC code"
        case 20: "received SIGUSR1 or SIGINT"
        case 21: "some error returned by waitpid()"
        case 22: "error allocating core memory buffers"
        case 23: "partial transfer due to error"
        case 24: "partial transfer due to vanished source files"
        case 25: "the --max-delete limit stopped deletions"
        case 30: "timeout in data send/receive"
        case 35: "timeout waiting for daemon connection"
        case 126, 127: log.missingTool.map { "the copy image has no \($0)" } ?? "a command of the copy script was not found"
        case 137: "killed (SIGKILL: out of memory, or the pod was deleted)"
        case 143: "terminated (SIGTERM)"
        default: "exit code \(code)"
        }
    }
}
