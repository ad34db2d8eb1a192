import Foundation
import KubeAPI

/// One of migrate's copy pods: a bare pod (`restartPolicy: Never`) running rsync as root with
/// the old claim read-only at `/source` and the staging claim at `/dest`. The kubelet and the
/// cluster move the bytes; Repave only reads the pod's log and its exit code.
public struct CopyPod: Sendable, Equatable {
    public enum Pass: String, Sendable, CaseIterable, Codable {
        /// While the workload runs: the volume is live, so vanished (24) and partial (23)
        /// transfers are expected and accepted.
        case warm
        /// After scale-down: the delta; the volume is quiet, so only 0 is accepted.
        case final
        /// `rsync -n -c -i`: compares every file's content and metadata; must itemize nothing.
        case verify

        /// Exit codes this pass accepts.
        public var acceptedExitCodes: Set<Int32> { self == .warm ? [0, 23, 24] : [0] }
    }

    public static let sourcePath = "/source"
    public static let destinationPath = "/dest"
    public static let container = "rsync"
    /// The label every copy pod of a run carries (as recreate annotates what it creates).
    public static let runLabel = "repave/run-id"
    public static let passLabel = "repave/copy"

    public var pass: Pass
    public var namespace: String
    /// The claim being migrated (mounted read-only).
    public var sourceClaim: String
    /// The staging claim on the new class; the pod is named after it.
    public var stagingClaim: String
    public var runID: String
    /// The node the source volume is attached to, for a warm copy of an RWO volume; nil lets the
    /// scheduler choose.
    public var node: String?
    public var copy: MigratePlan.Copy

    public init(pass: Pass, namespace: String, sourceClaim: String, stagingClaim: String, runID: String, node: String? = nil, copy: MigratePlan.Copy) {
        self.pass = pass
        self.namespace = namespace
        self.sourceClaim = sourceClaim
        self.stagingClaim = stagingClaim
        self.runID = runID
        self.node = node
        self.copy = copy
    }

    /// `<staging>-warm`, `-final`, `-verify`; the staging name is shortened so that the pod's
    /// name stays within 253 characters.
    public var name: String { Self.name(stagingClaim, suffix: "-" + pass.rawValue) }

    /// `base` shortened so that `base + suffix` is a valid name of at most 253 characters.
    static func name(_ base: String, suffix: String) -> String {
        var base = String(base.prefix(253 - suffix.count))
        while base.hasSuffix("-") || base.hasSuffix(".") { base.removeLast() }
        return base + suffix
    }

    /// rsync's options for a copy pass. `-a` is `-rlptgoD` and leaves out hard links (`-H`),
    /// ACLs (`-A`), xattrs (`-X`) and holes (`-S`); `--numeric-ids` keeps ids as numbers, not as
    /// the image's names. `--delete` makes every pass converge, `--partial` keeps a large file's
    /// progress across an interruption, progress2 without incremental recursion gives a percentage
    /// of the whole copy.
    public static let copyOptions = ["-aHAXS", "--numeric-ids", "--delete", "--partial", "--info=progress2", "--no-inc-recursive", "--stats"]
    /// The verify pass: a dry run (`-n`) comparing checksums (`-c`) that itemizes (`-i`) every
    /// difference, extra files on the destination included; the script adds extraArgs' filters.
    public static let verifyOptions = ["-aHAXS", "--numeric-ids", "-n", "-c", "-i", "--delete"]
    /// The verify pod's exit code when rsync itemized anything (rsync's own codes end at 35).
    public static let differsExitCode: Int32 = 99

    /// The shell script the container runs: a check of the image's shell and tools, `rsync --version` (the
    /// log's first lines, journaled), then the pass. progress2 redraws its line with `\r`, and a
    /// container log is flushed in whole lines, so `tr` turns each redraw into a line.
    public var script: String {
        let paths = [Self.sourcePath + "/", Self.destinationPath + "/"]
        let rsync: String
        switch pass {
        case .warm, .final:
            let arguments = (Self.copyOptions + copy.extraArgs + paths).map(Self.shellQuoted).joined(separator: " ")
            rsync = "set -o pipefail; rsync \(arguments) 2>&1 | tr '\\r' '\\n'"
        case .verify:
            // Only extraArgs' filters: what the copy left out must not count as a difference.
            // The verdict is the exit code too (``differsExitCode``), not only the log, which a
            // resumed run may find cut by the kubelet's log rotation.
            let command = "rsync " + (Self.verifyOptions + copy.filterArgs + paths).map(Self.shellQuoted).joined(separator: " ")
            rsync = """
                out=$(\(command) 2>&1); code=$?
                [ -z "$out" ] || printf '%s\\n' "$out"
                [ "$code" -eq 0 ] || exit "$code"
                [ -z "$out" ] || exit \(Self.differsExitCode)
                """
        }
        return Self.preamble + rsync
    }

    /// Missing tools are named in the log with exit 127, before anything is copied. A shell
    /// without `pipefail` (some dash builds) would stop the copy with exit 2, which reads as
    /// rsync's "protocol incompatibility": it is named as a missing tool instead.
    static let preamble = """
        (set -o pipefail) 2>/dev/null || { echo "\(RsyncLog.missingToolPrefix)sh with pipefail"; exit 127; }
        for tool in rsync tr; do command -v "$tool" >/dev/null 2>&1 || { echo "\(RsyncLog.missingToolPrefix)$tool"; exit 127; }; done
        rsync --version 2>&1

        """

    /// `'…'` unless every character is safe unquoted.
    static func shellQuoted(_ word: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=/.,:+@%")
        if !word.isEmpty, word.allSatisfy(safe.contains) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// The pod, as POSTed.
    public var manifest: JSON {
        var container: [String: JSON] = [
            "name": .string(Self.container),
            "image": .string(copy.image),
            "imagePullPolicy": .string(copy.imagePullPolicy),
            "command": ["/bin/sh", "-c", .string(script)],
            // Root, so that a 0700 directory of another uid is read, and ownership is kept.
            "securityContext": ["runAsUser": 0, "runAsGroup": 0, "runAsNonRoot": false],
            "volumeMounts": [
                ["name": "source", "mountPath": .string(Self.sourcePath), "readOnly": true],
                ["name": "dest", "mountPath": .string(Self.destinationPath)],
            ],
        ]
        if !copy.resources.isEmpty {
            var resources: [String: JSON] = [:]
            if !copy.resources.requests.isEmpty { resources["requests"] = .object(copy.resources.requests.mapValues(JSON.string)) }
            if !copy.resources.limits.isEmpty { resources["limits"] = .object(copy.resources.limits.mapValues(JSON.string)) }
            container["resources"] = .object(resources)
        }
        var spec: [String: JSON] = [
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 10,
            "automountServiceAccountToken": false,
            "containers": [.object(container)],
            "volumes": [
                ["name": "source", "persistentVolumeClaim": ["claimName": .string(sourceClaim), "readOnly": true]],
                ["name": "dest", "persistentVolumeClaim": ["claimName": .string(stagingClaim)]],
            ],
        ]
        if let node { spec["nodeName"] = .string(node) }
        if !copy.nodeSelector.isEmpty { spec["nodeSelector"] = .object(copy.nodeSelector.mapValues(JSON.string)) }
        if !copy.tolerations.isEmpty {
            spec["tolerations"] = .array(copy.tolerations.map { toleration in
                var fields: [String: JSON] = ["operator": .string(toleration.operator)]
                if let key = toleration.key { fields["key"] = .string(key) }
                if let value = toleration.value { fields["value"] = .string(value) }
                if let effect = toleration.effect { fields["effect"] = .string(effect) }
                if let seconds = toleration.tolerationSeconds { fields["tolerationSeconds"] = .integer(Int64(seconds)) }
                return .object(fields)
            })
        }
        return [
            "apiVersion": "v1", "kind": "Pod",
            "metadata": [
                "name": .string(name), "namespace": .string(namespace),
                "labels": [.init(Self.runLabel): .string(runID), .init(Self.passLabel): .string(pass.rawValue)],
            ],
            "spec": .object(spec),
        ]
    }

    /// The exit code of the rsync container in a finished pod, nil while it runs.
    public static func exitCode(of pod: JSON) -> Int32? {
        let statuses = pod[path: "status", "containerStatuses"]?.arrayValue ?? []
        let status = statuses.first { $0["name"]?.stringValue == container }
        return (status?[path: "state", "terminated", "exitCode"]?.intValue).map { Int32(truncatingIfNeeded: $0) }
    }
}
