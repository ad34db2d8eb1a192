/// What `repave audit` found: the document `-o json` prints (schema in docs/audit.md). Keys are
/// stable; later versions may add keys, never change their meaning.
public struct AuditReport: Sendable, Encodable, Equatable {
    public var apiVersion = "repave/v1"
    public var kind = "AuditReport"
    /// The namespace audited, or nil for every namespace (`-A`).
    public var namespace: String?
    public var allNamespaces: Bool
    public var minReplicas: Int
    public var longhornNamespace: String
    /// Claims assessed (every claim in scope that could be read).
    public var claims = 0
    /// Why the audit is incomplete (Longhorn not found, replicas not served, a replica count
    /// that is not a whole number): each makes exit 2.
    public var notAssessed: [String] = []
    /// Under `-A`, namespaces whose claims this user may not list: each makes exit 2.
    public var unreadableNamespaces: [UnreadableNamespace] = []
    /// Claims that need maintenance: each makes exit 2.
    public var findings: [Finding] = []
    /// PVs that earlier Repave runs kept (annotated `repave/run-id`, `repave/claim`), not bound.
    public var retainedVolumes: [RetainedVolume] = []
    /// Claims that are Lost or Pending.
    public var unboundClaims: [UnboundClaim] = []
    /// Longhorn settings worth knowing (`default-replica-count` below the bar).
    public var settings: [SettingNote] = []
    /// The plan files `--write-plans` wrote, in the order of the findings.
    public var plansWritten: [String] = []

    public init(namespace: String?, minReplicas: Int, longhornNamespace: String) {
        self.namespace = namespace
        allNamespaces = namespace == nil
        self.minReplicas = minReplicas
        self.longhornNamespace = longhornNamespace
    }

    /// 0 when there is nothing to do; 2 when anything needs a person (a finding, something not assessed).
    public var exitStatus: ExitStatus {
        findings.isEmpty && notAssessed.isEmpty && unreadableNamespaces.isEmpty ? .success : .refused
    }

    public struct UnreadableNamespace: Sendable, Encodable, Equatable {
        public var namespace: String
        public var reason: String
    }

    /// One claim that needs maintenance, with every problem it has.
    public struct Finding: Sendable, Encodable, Equatable {
        public var namespace: String
        public var claim: String
        public var storageClass: String?
        /// The claim's PersistentVolume.
        public var volume: String?
        public var longhornVolume: String?
        /// `spec.numberOfReplicas` of the Longhorn volume.
        public var desiredReplicas: Int?
        /// Healthy replicas on distinct nodes (nil when replicas.longhorn.io is not served).
        public var healthyReplicas: Int?
        /// The class's `numberOfReplicas` parameter.
        public var classReplicas: Int?
        public var state: String?
        public var robustness: String?
        public var problems: [Problem]
        /// Deployments and StatefulSets whose pods mount the claim (read only for `--write-plans`).
        public var workloads: [String]?
    }

    public struct Problem: Sendable, Encodable, Equatable {
        public enum Kind: String, Sendable, Encodable, CaseIterable {
            /// `spec.numberOfReplicas` is below the bar.
            case desiredReplicas = "desired-replicas"
            /// Fewer healthy replicas (on distinct nodes) than the bar.
            case healthyReplicas = "healthy-replicas"
            /// Attached and degraded, faulted or unknown.
            case robustness
            /// The claim's class asks for fewer replicas than the bar.
            case classReplicas = "class-replicas"
            /// The PV names a Longhorn volume that does not exist.
            case longhornVolumeMissing = "longhorn-volume-missing"
        }
        public var kind: Kind
        public var detail: String
    }

    public struct RetainedVolume: Sendable, Encodable, Equatable {
        public var volume: String
        public var uid: String
        public var phase: String
        public var reclaimPolicy: String?
        /// `repave/run-id`.
        public var run: String
        /// `repave/claim`: `namespace/claim`.
        public var claim: String
        public var longhornVolume: String?
        public var longhornVolumeUID: String?
        /// The run's directory when it is on this machine.
        public var runDirectory: String?
        /// How that run ended, as its journal on this machine says (`not-found` without one).
        public var runState: RunState
        /// Why there are no commands, when there are none.
        public var note: String?
        /// The commands that remove it: `repave finalize RUN` when its run finished on this
        /// machine and kept it; else uid-guarded kubectl deletes of the PV and its Longhorn volume
        /// (a finished run that does not name it, or a run not found here); empty otherwise.
        public var cleanup: [String]
    }

    /// How the run that kept a volume ended, as far as this machine knows.
    public enum RunState: String, Sendable, Encodable, Equatable {
        /// Its journal here says it finished: the kept volume is no longer needed by it.
        case finished
        /// Its journal here says it has not finished: the volume may be the only copy of the data.
        case notFinished = "not-finished"
        /// Its journal here says it was aborted.
        case aborted
        /// No run directory of it on this machine: the commands are given, with a note to check
        /// first that the run finished where it ran.
        case notFound = "not-found"

        /// What to do instead of deleting, for a run not known to have finished.
        func note(_ directory: String?) -> String? {
            let here = directory.map { " (\($0))" } ?? ""
            switch self {
            case .finished: return nil
            case .notFinished:
                return "run not finished here\(here): resume or abort it first; until then this volume may hold the only copy of the data"
            case .aborted:
                return "run aborted here\(here): abort put back what the run changed; check by hand what this volume holds before deleting it"
            case .notFound:
                return "run directory not found: make sure its run finished (repave status RUN where it ran) before you delete this volume"
            }
        }
    }

    public struct UnboundClaim: Sendable, Encodable, Equatable {
        public var namespace: String
        public var claim: String
        public var phase: String
    }

    public struct SettingNote: Sendable, Encodable, Equatable {
        public var name: String
        public var value: String
        public var detail: String
    }
}

extension AuditReport {
    /// The text form, lines without a trailing newline.
    public var textLines: [String] {
        var lines: [String] = []
        let scope = namespace.map { "namespace \($0)" } ?? "all namespaces"
        for reason in notAssessed { lines.append("not assessed: \(reason)") }
        lines.append("audit of \(scope): \(claims) claims, replicas at least \(minReplicas): \(findings.count) \(findings.count == 1 ? "finding" : "findings")")
        for namespace in unreadableNamespaces {
            lines.append("not assessed: namespace \(namespace.namespace): \(namespace.reason)")
        }
        for finding in findings {
            let volume = finding.longhornVolume.map { " (longhorn volume \($0))" } ?? ""
            lines.append("FINDING \(finding.namespace)/\(finding.claim)\(volume), class \(finding.storageClass ?? "-")")
            for problem in finding.problems { lines.append("  \(problem.kind.rawValue): \(problem.detail)") }
            if let workloads = finding.workloads, !workloads.isEmpty { lines.append("  workloads: \(workloads.joined(separator: ", "))") }
        }
        for volume in retainedVolumes {
            let finished = volume.runState == .finished ? " (finished in \(volume.runDirectory ?? ""))" : ""
            lines.append("retained: pv \(volume.volume) (\(volume.phase)) of \(volume.claim), kept by run \(volume.run)\(finished)")
            if let note = volume.note { lines.append("  keep: \(note)") }
            for command in volume.cleanup { lines.append("  remove: \(command)") }
        }
        for claim in unboundClaims { lines.append("unbound: \(claim.namespace)/\(claim.claim) is \(claim.phase)") }
        for setting in settings { lines.append("setting: \(setting.name) = \(setting.value): \(setting.detail)") }
        for plan in plansWritten { lines.append("wrote \(plan)") }
        return lines
    }
}
