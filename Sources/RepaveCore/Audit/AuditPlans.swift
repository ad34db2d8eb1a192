import Blocking
import Foundation
import Glibc
import KubeAPI

extension Audit {
    /// The Deployments and StatefulSets whose pods mount each finding's claim (`Kind/name`), one
    /// list of pods (and of ReplicaSets, when a pod has one) per namespace with findings.
    public func discoverWorkloads(_ client: KubeClient, into report: inout AuditReport) async throws {
        var reads = Reads()
        for namespace in Set(report.findings.map(\.namespace)).sorted() {
            var pods: [AuditRecord.Pod]
            pods = try reads.take(.init("list", .pods, namespace: namespace), await Reads.result {
                try await client.list(.pods, as: AuditRecord.Pod.self, in: namespace, pageSize: pageSize)
            }) ?? []
            pods.removeAll { $0.status?.phase == "Succeeded" || $0.status?.phase == "Failed" }
            var deploymentOf: [String: String] = [:]
            if pods.contains(where: { $0.controller?.kind == "ReplicaSet" }) {
                let replicaSets = try reads.take(.init("list", .replicaSets, namespace: namespace), await Reads.result {
                    try await client.list(.replicaSets, as: AuditRecord.ReplicaSet.self, in: namespace, pageSize: pageSize)
                }) ?? []
                for replicaSet in replicaSets {
                    if let owner = replicaSet.metadata.ownerReferences?.first(where: { $0.controller == true }), owner.kind == "Deployment" {
                        deploymentOf[replicaSet.metadata.name] = owner.name
                    }
                }
            }
            for index in report.findings.indices where report.findings[index].namespace == namespace {
                var workloads: Set<String> = []
                for pod in pods where pod.claimNames.contains(report.findings[index].claim) {
                    switch pod.controller?.kind {
                    case "StatefulSet"?: workloads.insert("StatefulSet/\(pod.controller!.name)")
                    case "ReplicaSet"?: if let deployment = deploymentOf[pod.controller!.name] { workloads.insert("Deployment/\(deployment)") }
                    default: break
                    }
                }
                report.findings[index].workloads = workloads.sorted()
            }
        }
        try await reads.requireAll(client)
    }
}

/// `repave audit --write-plans DIR`: one plan per finding, in the chosen strategy's documented
/// form, with the workloads discovered. Every file is checked before any is written: one that
/// exists refuses the whole set, named, and nothing is written.
public struct AuditPlanWriter: Sendable {
    public var directory: String
    public var strategy: PlanStrategy
    /// `--storage-class` (recreate, migrate): the class the claim moves to.
    public var storageClass: String?
    /// `--copy-image` (migrate).
    public var copyImage: String?
    public var minReplicas: Int
    public var longhornNamespace: String
    /// The target class as the cluster has it (nil: absent, the plan creates it).
    public var existingClass: AuditRecord.StorageClass?

    public init(directory: String, strategy: PlanStrategy, storageClass: String?, copyImage: String?, minReplicas: Int,
                longhornNamespace: String, existingClass: AuditRecord.StorageClass?) {
        self.directory = directory
        self.strategy = strategy
        self.storageClass = storageClass
        self.copyImage = copyImage
        self.minReplicas = minReplicas
        self.longhornNamespace = longhornNamespace
        self.existingClass = existingClass
    }

    /// A plan file: where it goes and what it says.
    public struct File: Sendable, Equatable {
        public var path: String
        public var text: String
    }

    /// Every plan, named `<namespace>-<claim>.yaml` (a short hash is added where two findings'
    /// names would meet, or a name would be too long: past ``longestName`` bytes it is
    /// shortened, so that the file's name stays within NAME_MAX, 255 bytes).
    public func files(for findings: [AuditReport.Finding]) -> [File] {
        let bases = findings.map { Self.base($0.namespace, $0.claim) }
        let counts = Dictionary(bases.map { ($0, 1) }, uniquingKeysWith: +)
        return zip(findings, bases).map { finding, base in
            let name = counts[base]! > 1 || base.utf8.count > Self.longestName ? Self.hashed(base, finding) : base
            return File(path: directory + "/" + name + ".yaml", text: plan(finding, name: Self.planName(name, finding)))
        }
    }

    /// Writes every file, or none: a plan that `repave plan --offline` would refuse, or a file
    /// that exists (or a dangling link where one would go), refuses the whole set, naming each.
    public func write(_ files: [File]) async throws -> [String] {
        try Self.check(files)
        let directory = directory
        return try await offPool("audit plan writes") { () throws -> [String] in
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            var status = stat()
            let existing = files.map(\.path).filter { lstat($0, &status) == 0 }
            if !existing.isEmpty {
                throw RepaveError(.auditPlanExists, "\(existing.count) of the \(files.count) plan files already exist in \(directory); nothing was written",
                                  causes: existing.map { "\($0) exists" }, hint: "move them away, or write the plans to another directory with --write-plans DIR")
            }
            var written: [String] = []
            for file in files {
                // O_EXCL: a file that appeared since the check is refused, never overwritten.
                let fd = open(file.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
                guard fd >= 0 else {
                    let reason = String(cString: strerror(errno))
                    throw RepaveError(errno == EEXIST ? .auditPlanExists : .auditPlanUnwritable, "cannot write \(file.path): \(reason)",
                                      causes: written.isEmpty ? [] : ["written before it: \(written.joined(separator: ", "))"],
                                      hint: "check the directory, then run the audit again with another --write-plans directory")
                }
                let bytes = Array(file.text.utf8)
                let count = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                close(fd)
                guard count == bytes.count else {
                    throw RepaveError(.auditPlanUnwritable, "cannot write \(file.path): short write", hint: "check the free space of \(directory)")
                }
                written.append(file.path)
            }
            return written
        }
    }

    /// Each file parsed as `repave plan --offline` parses it (``PlanFile/parse(_:file:windowStart:)``,
    /// whatever the strategy): a plan it would refuse is never written.
    static func check(_ files: [File]) throws {
        for file in files {
            do {
                _ = try PlanFile.parse(Data(file.text.utf8), file: file.path)
            } catch {
                throw RepaveError(.internal, "the plan written for \(file.path) does not parse: nothing was written", cause: error)
            }
        }
    }

    // MARK: - the plan text

    func plan(_ finding: AuditReport.Finding, name: String) -> String {
        var lines = [
            "# Written by repave audit for \(finding.namespace)/\(finding.claim):",
        ] + finding.problems.map { "#   \($0.kind.rawValue): \($0.detail)" } + [
            "# Review it, add a maintenance window (window: {start: ..., duration: ...}), then: repave plan FILE",
            "apiVersion: repave/v1",
            "kind: Plan",
            "strategy: \(strategy.rawValue)",
            "metadata: {name: \(name)}",
            "target:",
            "  namespace: \(Self.quote(finding.namespace))",
            "  claim: \(Self.quote(finding.claim))",
        ]
        let workloads = (finding.workloads ?? []).compactMap { reference -> String? in
            let parts = reference.split(separator: "/", maxSplits: 1).map(String.init)
            return parts.count == 2 ? "    - {kind: \(parts[0]), name: \(Self.quote(parts[1]))}" : nil
        }
        if strategy != .replicas {
            lines += workloads.isEmpty ? ["  workloads: []  # none found running: discovered from the pods at run time"] : ["  workloads:"] + workloads
        }
        switch strategy {
        case .recreate:
            lines += classLines()
            lines += ["oldVolume: retain-until-verified",
                      "gitPreflight:",
                      "  report: \(Self.quote("\(finding.namespace)-\(finding.claim)-git-report.json"))  # made by: repave git-check --report FILE --for \(finding.namespace)/\(finding.claim) PATH..."]
        case .migrate:
            lines += classLines()
            lines += ["copy: {image: \(Self.quote(copyImage ?? ""))}"]
        case .replicas:
            lines += ["replicas: \(minReplicas)", "whenDetached: refuse"]
        }
        lines += ["verify: {longhorn: {namespace: \(Self.quote(longhornNamespace))}}"]
        return lines.joined(separator: "\n") + "\n"
    }

    /// The target class: as the cluster has it (so `ensure` finds it matching), or a Longhorn
    /// class at the bar, created by the run.
    func classLines() -> [String] {
        let name = storageClass ?? ""
        guard let existing = existingClass else {
            return ["storageClass:  # not in the cluster: the run creates it",
                    "  name: \(Self.quote(name))",
                    "  ensure: true",
                    "  provisioner: \(Audit.longhornDriver)",
                    "  parameters: {numberOfReplicas: \"\(minReplicas)\"}"]
        }
        let parameters = (existing.parameters ?? [:]).sorted { $0.key < $1.key }.map { "\(Self.quote($0.key)): \(Self.quote($0.value))" }
        return ["storageClass:",
                "  name: \(Self.quote(name))",
                "  ensure: true",
                "  provisioner: \(Self.quote(existing.provisioner ?? ""))",
                "  parameters: {\(parameters.joined(separator: ", "))}",
                "  reclaimPolicy: \(existing.reclaimPolicy ?? "Delete")",
                "  volumeBindingMode: \(existing.volumeBindingMode ?? "Immediate")",
                "  allowVolumeExpansion: \(existing.allowVolumeExpansion ?? false)"]
    }

    /// A YAML double-quoted scalar (JSON's string syntax is YAML's).
    static func quote(_ text: String) -> String {
        let data = (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// `<namespace>-<claim>`, with what a file name cannot hold replaced.
    static func base(_ namespace: String, _ claim: String) -> String {
        "\(namespace)-\(claim)".map { $0 == "/" ? "-" : $0 }.reduce(into: "") { $0.append($1) }
    }

    /// The longest name a plan file gets before `.yaml`, in bytes: a namespace (63) and a claim
    /// (253) can make a name past NAME_MAX (255), which `open` refuses.
    static let longestName = 240

    /// The name with a hash of the finding's claim, its start shortened to keep it within
    /// ``longestName`` bytes.
    static func hashed(_ base: String, _ finding: AuditReport.Finding) -> String {
        let hash = "-" + SHA256.hex(of: Data("\(finding.namespace)/\(finding.claim)".utf8)).prefix(8)
        var start = base
        while start.utf8.count + hash.utf8.count > longestName { start.removeLast() }
        return start + hash
    }

    /// A plan name is a DNS label (at most 63): dots become dashes; a longer name keeps its
    /// start and gains a hash of the claim.
    static func planName(_ base: String, _ finding: AuditReport.Finding) -> String {
        let label = String(base.map { $0 == "." ? "-" : $0 })
        guard label.count > 63 else { return label }
        var start = String(label.prefix(54))
        while start.hasSuffix("-") { start.removeLast() }
        return start + "-" + SHA256.hex(of: Data("\(finding.namespace)/\(finding.claim)".utf8)).prefix(8)
    }
}
