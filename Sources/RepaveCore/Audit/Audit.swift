import Blocking
import Foundation
import Journal
import KubeAPI

/// `repave audit`: every claim in scope whose Longhorn volume is below the replica bar or
/// unhealthy, what earlier runs left behind, and what could not be assessed. Read-only: lists
/// and gets only, each list paginated and decoded into the few fields the rules read.
public struct Audit: Sendable {
    public static let longhornDriver = "driver.longhorn.io"
    public static let runAnnotation = "repave/run-id"
    public static let claimAnnotation = "repave/claim"

    /// One namespace, or every namespace (`-A`).
    public enum Scope: Sendable, Equatable {
        case namespace(String)
        case all
    }

    public var scope: Scope
    public var minReplicas: Int
    public var longhornNamespace: String
    /// Where run directories are looked for (`repave finalize` is offered for runs found there).
    public var stateRoot: String
    public var pageSize: Int

    public init(scope: Scope, minReplicas: Int = 3, longhornNamespace: String = "longhorn-system",
                stateRoot: String = RunDirectory.root(), pageSize: Int = 500) {
        self.scope = scope
        self.minReplicas = minReplicas
        self.longhornNamespace = longhornNamespace
        self.stateRoot = stateRoot
        self.pageSize = pageSize
    }

    var scopeNamespace: String? {
        if case .namespace(let namespace) = scope { return namespace }
        return nil
    }

    /// Reads the cluster and applies the rules. A list this user may not read stops the audit
    /// with every missing permission named (exit 2), except claims under `-A`: namespaces whose
    /// claims cannot be listed are reported, and the others assessed.
    public func run(_ client: KubeClient) async throws -> AuditReport {
        var report = AuditReport(namespace: scopeNamespace, minReplicas: minReplicas, longhornNamespace: longhornNamespace)
        guard try await client.serves(.longhornVolumes) else {
            report.notAssessed.append("Longhorn not found: the API server serves no \(ResourceType.longhornVolumes) (is Longhorn installed?)")
            return report
        }
        var reads = Reads()
        var inventory = AuditInventory()
        inventory.claims = try await claims(client, &reads, &report)
        var retained: [(volume: AuditRecord.Volume, run: String, claim: String)] = []
        let recreatedClaims = Self.recreatedClaims(inventory.claims)
        try await reads.attempt(.init("list", .persistentVolumes)) {
            try await client.forEachPage(.persistentVolumes, as: AuditRecord.Volume.self, pageSize: pageSize) { page in
                for volume in page {
                    inventory.volumes[volume.name] = volume
                    if let kept = Self.retainedBy(volume, recreatedClaims: recreatedClaims) { retained.append((volume, kept.run, kept.claim)) }
                }
            }
        }
        try await reads.attempt(.init("list", .storageClasses)) {
            for storageClass in try await client.list(.storageClasses, as: AuditRecord.StorageClass.self, pageSize: pageSize) {
                inventory.classes[storageClass.metadata.name] = storageClass
            }
        }
        try await reads.attempt(.init("list", .longhornVolumes, namespace: longhornNamespace)) {
            try await client.forEachPage(.longhornVolumes, as: AuditRecord.LonghornVolume.self, in: longhornNamespace, pageSize: pageSize) { page in
                for volume in page { inventory.longhornVolumes[volume.metadata.name] = volume }
            }
        }
        if try await client.serves(.longhornReplicas) {
            try await reads.attempt(.init("list", .longhornReplicas, namespace: longhornNamespace)) {
                inventory.replicas = [:]
                try await client.forEachPage(.longhornReplicas, as: AuditRecord.Replica.self, in: longhornNamespace, pageSize: pageSize) {
                    inventory.tally($0)
                }
            }
        } else {
            report.notAssessed.append("healthy replica counts: the API server serves no \(ResourceType.longhornReplicas)")
        }
        if try await client.serves(.longhornSettings) {
            try await reads.attempt(.init("get", .longhornSettings, namespace: longhornNamespace, name: "default-replica-count")) {
                let setting = try await client.getIfPresent(.longhornSettings, named: "default-replica-count", in: longhornNamespace)
                inventory.defaultReplicaCount = setting?["value"]?.stringValue
            }
        }
        try await reads.requireAll(client)
        Self.assess(inventory, into: &report)
        report.retainedVolumes = await retainedVolumes(retained, longhorn: inventory.longhornVolumes)
        return report
    }

    /// The claims in scope. Under `-A` a forbidden cluster-wide list falls back to one list per
    /// namespace, and the namespaces still forbidden are reported.
    private func claims(_ client: KubeClient, _ reads: inout Reads, _ report: inout AuditReport) async throws -> [AuditRecord.Claim] {
        var claims: [AuditRecord.Claim] = []
        if let namespace = scopeNamespace {
            try await reads.attempt(.init("list", .persistentVolumeClaims, namespace: namespace)) {
                claims = try await client.list(.persistentVolumeClaims, as: AuditRecord.Claim.self, in: namespace, pageSize: pageSize)
            }
            return claims
        }
        do {
            return try await client.list(.persistentVolumeClaims, as: AuditRecord.Claim.self, pageSize: pageSize)
        } catch let error as KubeAPIError where error.reason == .forbidden {}
        var namespaces: [AuditRecord.Meta] = []
        struct Named: Decodable { var metadata: AuditRecord.Meta }
        try await reads.attempt(.init("list", .namespaces)) {
            namespaces = try await client.list(.namespaces, as: Named.self, pageSize: pageSize).map(\.metadata)
        }
        for namespace in namespaces.map(\.name).sorted() {
            do {
                claims += try await client.list(.persistentVolumeClaims, as: AuditRecord.Claim.self, in: namespace, pageSize: pageSize)
            } catch let error as KubeAPIError where error.reason == .forbidden {
                report.unreadableNamespaces.append(.init(namespace: namespace, reason: "may not list persistentvolumeclaims"))
            }
        }
        return claims
    }

    /// Claims a run created (`repave/run-id` on the claim), by `namespace/name`: their uid and run.
    static func recreatedClaims(_ claims: [AuditRecord.Claim]) -> [String: (uid: String, run: String)] {
        var found: [String: (uid: String, run: String)] = [:]
        for claim in claims {
            if let run = claim.metadata.annotations?[runAnnotation] { found["\(claim.namespace)/\(claim.name)"] = (claim.metadata.uid ?? "", run) }
        }
        return found
    }

    /// The run that kept a PV, and the claim it was, when an earlier run kept it: annotated by
    /// it (`repave/run-id`, `repave/claim`), and bound to no claim now (a staging volume that
    /// became the claim's is not left behind). A PV kept before runs annotated what they retain
    /// is recognised by its claim: Released, its `claimRef` naming a claim that a run re-created
    /// (annotated `repave/run-id`, another uid).
    static func retainedBy(_ volume: AuditRecord.Volume, recreatedClaims: [String: (uid: String, run: String)]) -> (run: String, claim: String)? {
        guard volume.phase != "Bound" else { return nil }
        let annotations = volume.metadata.annotations ?? [:]
        if let run = annotations[runAnnotation], let claim = annotations[claimAnnotation] { return (run, claim) }
        guard volume.phase == "Released", let ref = volume.spec?.claimRef, let namespace = ref.namespace, let name = ref.name,
              let recreated = recreatedClaims["\(namespace)/\(name)"], recreated.uid != ref.uid
        else { return nil }
        return (recreated.run, "\(namespace)/\(name)")
    }

    /// Retained volumes in scope, each with how to remove it: `repave finalize` when its run's
    /// directory is on this machine, else uid-guarded deletes.
    func retainedVolumes(_ volumes: [(volume: AuditRecord.Volume, run: String, claim: String)],
                         longhorn: [String: AuditRecord.LonghornVolume]) async -> [AuditReport.RetainedVolume] {
        let inScope = volumes.filter { kept in
            guard let namespace = scopeNamespace else { return true }
            return kept.claim.split(separator: "/").first.map(String.init) == namespace
        }
        guard !inScope.isEmpty else { return [] }
        let root = stateRoot
        let directories = await offPool("audit run lookup") { Self.runDirectories(under: root) }
        return inScope.sorted { $0.volume.name < $1.volume.name }.map { volume, run, claim in
            let backing = volume.longhornVolume.flatMap { longhorn[$0] }
            let directory = directories[run]
            var cleanup: [String]
            if let directory {
                cleanup = ["repave finalize \(directory)"]
            } else {
                cleanup = [Self.guardedDelete(ResourceType.persistentVolumes.path(name: volume.name), uid: volume.metadata.uid ?? "")]
                if let backing {
                    cleanup.append(Self.guardedDelete(ResourceType.longhornVolumes.path(namespace: longhornNamespace, name: backing.metadata.name),
                                                      uid: backing.metadata.uid ?? ""))
                }
            }
            return .init(volume: volume.name, uid: volume.metadata.uid ?? "", phase: volume.phase, reclaimPolicy: volume.spec?.persistentVolumeReclaimPolicy,
                         run: run, claim: claim, longhornVolume: backing?.metadata.name,
                         longhornVolumeUID: backing?.metadata.uid, runDirectory: directory, cleanup: cleanup)
        }
    }

    /// A kubectl DELETE that carries a uid precondition: the object is deleted only if it is
    /// still the one the audit saw (kubectl's own `delete` has no such guard).
    static func guardedDelete(_ path: String, uid: String) -> String {
        "echo '{\"apiVersion\":\"v1\",\"kind\":\"DeleteOptions\",\"preconditions\":{\"uid\":\"\(uid)\"}}' | kubectl delete --raw \(path) -f -"
    }

    /// Run id → run directory, for every run under `root`: the run of each journal's records,
    /// read as `repave status` reads them (a directory whose journal does not read is skipped).
    static func runDirectories(under root: String) -> [String: String] {
        var found: [String: String] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] {
            let directory = root + "/" + name
            guard let run = (try? Journal.read(directory: directory))?.records.first?.run, !run.isEmpty else { continue }
            found[run] = directory
        }
        return found
    }

    /// The reads an audit makes, and those the user was forbidden: all of them are named at
    /// once, as `repave run`'s permission check names what a run lacks.
    struct Reads {
        var forbidden: [KubeClient.AccessQuestion] = []

        mutating func attempt(_ question: KubeClient.AccessQuestion, _ read: () async throws -> Void) async rethrows {
            do {
                try await read()
            } catch let error as KubeAPIError where error.reason == .forbidden {
                forbidden.append(question)
            }
        }

        func requireAll(_ client: KubeClient) async throws {
            guard !forbidden.isEmpty else { return }
            do {
                try await MaintenanceSession.checkPermissions(forbidden, client: client,
                                                              answered: Dictionary(forbidden.map { ($0, false) }, uniquingKeysWith: { a, _ in a }))
            } catch let error as RepaveError {
                throw RepaveError(.permissions, "the user may not read everything the audit needs: missing \(forbidden.count) permissions",
                                  causes: error.causes, hint: error.hint.map { $0 + " (the audit's own: the ClusterRole repave-audit)" })
            }
        }
    }
}
