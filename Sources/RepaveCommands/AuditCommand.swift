import ArgumentParser
import Foundation
import Journal
import KubeAPI
import RepaveCore

/// `repave audit`: every claim in scope below the replica bar or unhealthy, the PVs earlier runs
/// kept, and what could not be assessed. Read-only. Exit 0 when nothing needs a person, 2 when
/// anything does (a finding, a namespace it may not read, Longhorn not found). `--write-plans`
/// writes one plan per finding.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Find every claim whose Longhorn volume is below the replica bar or unhealthy (read-only).",
        discussion: """
            Findings (exit 2): a claim whose Longhorn volume has fewer than --min-replicas replicas, \
            desired or healthy; a volume attached and degraded, faulted or unknown; a claim of a class \
            whose numberOfReplicas is below the bar. Listed, not findings: PVs kept by earlier runs, \
            claims Lost or Pending, Longhorn's default-replica-count below the bar. \
            -o json prints the report documented in docs/audit.md.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: [.customShort("n"), .customLong("namespace")], help: "The namespace to audit (default: the kubeconfig's).")
    var namespace: String?

    @Flag(name: [.customShort("A"), .customLong("all-namespaces")], help: "Audit every namespace.")
    var allNamespaces = false

    @Option(name: .customLong("min-replicas"), help: "The replica bar: fewer desired or healthy replicas is a finding.")
    var minReplicas = 3

    @Option(name: .customLong("longhorn-namespace"), help: "Where Longhorn's objects live.")
    var longhornNamespace = "longhorn-system"

    @Option(name: .customLong("state-dir"), help: "Where run directories are (default: $XDG_STATE_HOME/repave/runs): a kept volume's run is looked up there.")
    var stateDirectory: String?

    @Option(name: .customLong("write-plans"), help: ArgumentHelp("Write one plan per finding into this directory (no file is overwritten).", valueName: "dir"))
    var writePlans: String?

    @Option(name: .customLong("strategy"), help: "The strategy of the plans written: recreate, migrate or replicas.")
    var strategy: PlanStrategy?

    @Option(name: .customLong("storage-class"), help: "The class the claims move to (recreate, migrate).")
    var storageClass: String?

    @Option(name: .customLong("copy-image"), help: "The rsync image of the copy pods (migrate).")
    var copyImage: String?

    func validate() throws {
        if allNamespaces && namespace != nil { throw ValidationError("-n and -A exclude each other: pick one") }
        if !(1...10).contains(minReplicas) { throw ValidationError("--min-replicas must be a whole number from 1 to 10") }
        guard let writePlans else {
            if strategy != nil || storageClass != nil || copyImage != nil {
                throw ValidationError("--strategy, --storage-class and --copy-image go with --write-plans DIR")
            }
            return
        }
        guard let strategy else { throw ValidationError("--write-plans \(writePlans) needs --strategy recreate, migrate or replicas") }
        switch strategy {
        case .recreate, .migrate:
            if storageClass == nil { throw ValidationError("--strategy \(strategy.rawValue) needs --storage-class NAME: the class the claims move to") }
        case .replicas:
            if storageClass != nil { throw ValidationError("--strategy replicas keeps each claim's class: drop --storage-class") }
        }
        if strategy == .migrate && copyImage == nil { throw ValidationError("--strategy migrate needs --copy-image IMAGE (an rsync image)") }
        if strategy != .migrate && copyImage != nil { throw ValidationError("--copy-image goes with --strategy migrate only") }
    }

    func run() async throws {
        let client = try Cluster.connect(global: global, context: nil)
        let scope: Audit.Scope = allNamespaces ? .all : .namespace(namespace ?? client.connection.namespace)
        let audit = Audit(scope: scope, minReplicas: minReplicas, longhornNamespace: longhornNamespace,
                          stateRoot: stateDirectory ?? RunDirectory.root())
        var report = try await audit.run(client)
        if let writePlans, let strategy, !report.findings.isEmpty {
            try await audit.discoverWorkloads(client, into: &report)
            // Listed, not read by name: the audit's role lists classes and gets none.
            let existing = storageClass == nil ? nil
                : try await client.list(.storageClasses, as: AuditRecord.StorageClass.self).first { $0.metadata.name == storageClass }
            let writer = AuditPlanWriter(directory: writePlans, strategy: strategy, storageClass: storageClass, copyImage: copyImage,
                                         minReplicas: minReplicas, longhornNamespace: longhornNamespace, existingClass: existing)
            report.plansWritten = try await writer.write(writer.files(for: report.findings))
        }
        Output.render(report, global.output)
        if report.exitStatus != .success { throw ExitCode(report.exitStatus.rawValue) }
    }
}

extension AuditCommand: GlobalOptionsCarrier {}
extension AuditReport: CommandResult {}
extension PlanStrategy: ExpressibleByArgument {}
