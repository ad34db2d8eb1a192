import Blocking
import Foundation
import Journal
import KubeAPI

/// `repave audit`: every claim in scope whose Longhorn volume is below the replica bar or
/// unhealthy, what earlier runs left behind, and what could not be assessed. Read-only: lists
/// and gets only, each list paginated and decoded into the few fields the rules read.
public struct Audit: Sendable {
    public static let longhornDriver = "driver.longhorn.io"

    /// One namespace, or every namespace (`-A`).
    public enum Scope: Sendable, Equatable {
        case namespace(String)
        case all
    }

    public var scope: Scope
    public var minReplicas: Int
    public var longhornNamespace: String
    /// Where run directories are looked for: a kept volume's run is looked up there.
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
        let served = try await longhornResources(client)
        guard served.contains(ResourceType.longhornVolumes.plural) else {
            report.notAssessed.append("Longhorn not found: the API server serves no \(ResourceType.longhornVolumes) (is Longhorn installed?)")
            return report
        }
        // The reads are independent: sent side by side, the server answers them in parallel and
        // one list's page is decoded while another's is on its way.
        let (pageSize, longhorn) = (pageSize, longhornNamespace)
        async let claimsRead = Reads.result { try await claims(client) }
        async let volumesRead = Reads.result { try await client.list(.persistentVolumes, as: AuditRecord.Volume.self, pageSize: pageSize) }
        async let classesRead = Reads.result { try await client.list(.storageClasses, as: AuditRecord.StorageClass.self, pageSize: pageSize) }
        async let longhornRead = Reads.result {
            try await client.list(.longhornVolumes, as: AuditRecord.LonghornVolume.self, in: longhorn, pageSize: pageSize)
        }
        async let replicasRead = Reads.result { served.contains(ResourceType.longhornReplicas.plural) ? try await tallyReplicas(client) : nil }
        async let settingRead = Reads.result {
            served.contains(ResourceType.longhornSettings.plural)
                ? try await client.getIfPresent(.longhornSettings, named: "default-replica-count", in: longhorn)?["value"]?.stringValue : nil
        }

        var reads = Reads()
        var inventory = AuditInventory()
        let claimsQuestion = KubeClient.AccessQuestion("list", .persistentVolumeClaims, namespace: scopeNamespace)
        if let read = try reads.take(claimsQuestion, await claimsRead) {
            inventory.claims = read.0
            report.unreadableNamespaces = read.1
        }
        let volumes = try reads.take(.init("list", .persistentVolumes), await volumesRead) ?? []
        for volume in volumes { inventory.volumes[volume.name] = volume }
        for storageClass in try reads.take(.init("list", .storageClasses), await classesRead) ?? [] {
            inventory.classes[storageClass.metadata.name] = storageClass
        }
        for volume in try reads.take(.init("list", .longhornVolumes, namespace: longhorn), await longhornRead) ?? [] {
            inventory.longhornVolumes[volume.metadata.name] = volume
        }
        inventory.replicas = try reads.take(.init("list", .longhornReplicas, namespace: longhorn), await replicasRead) ?? nil
        inventory.defaultReplicaCount = try reads.take(.init("get", .longhornSettings, namespace: longhorn, name: "default-replica-count"),
                                                       await settingRead) ?? nil
        try await reads.requireAll(client)
        if !served.contains(ResourceType.longhornReplicas.plural) {
            report.notAssessed.append("healthy replica counts: the API server serves no \(ResourceType.longhornReplicas)")
        }
        Self.assess(inventory, into: &report)
        let recreatedClaims = Self.recreatedClaims(inventory.claims)
        let retained = volumes.compactMap { volume in
            Self.retainedBy(volume, recreatedClaims: recreatedClaims).map { (volume: volume, run: $0.run, claim: $0.claim) }
        }
        report.retainedVolumes = await retainedVolumes(retained, longhorn: inventory.longhornVolumes)
        return report
    }

    /// The resources Longhorn's API group serves (empty when it serves none): one discovery read.
    func longhornResources(_ client: KubeClient) async throws -> Set<String> {
        let path = ResourceType.longhornVolumes.groupVersionPath
        do {
            let document = try JSON.decode(try await client.send(.init(.get, path)).body)
            return Set((document["resources"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue })
        } catch let error as KubeAPIError where error.reason == .notFound {
            return []
        }
    }

    /// Healthy replicas per volume, tallied page by page: no replica is kept.
    func tallyReplicas(_ client: KubeClient) async throws -> [String: AuditInventory.ReplicaTally] {
        var inventory = AuditInventory()
        inventory.replicas = [:]
        try await client.forEachPage(.longhornReplicas, as: AuditRecord.Replica.self, in: longhornNamespace, pageSize: pageSize) { inventory.tally($0) }
        return inventory.replicas ?? [:]
    }

    /// The claims in scope, and under `-A` the namespaces that could not be read: a forbidden
    /// cluster-wide list falls back to one list per namespace.
    private func claims(_ client: KubeClient) async throws -> ([AuditRecord.Claim], [AuditReport.UnreadableNamespace]) {
        if let namespace = scopeNamespace {
            return (try await client.list(.persistentVolumeClaims, as: AuditRecord.Claim.self, in: namespace, pageSize: pageSize), [])
        }
        let clusterWide: KubeAPIError
        do {
            return (try await client.list(.persistentVolumeClaims, as: AuditRecord.Claim.self, pageSize: pageSize), [])
        } catch let error as KubeAPIError where error.reason == .forbidden {
            clusterWide = error
        }
        struct Named: Decodable { var metadata: AuditRecord.Meta }
        let namespaces: [String]
        do {
            namespaces = try await client.list(.namespaces, as: Named.self, pageSize: pageSize).map(\.metadata.name).sorted()
        } catch let error as KubeAPIError where error.reason == .forbidden {
            throw clusterWide
        }
        var claims: [AuditRecord.Claim] = [], unreadable: [AuditReport.UnreadableNamespace] = []
        for namespace in namespaces {
            do {
                claims += try await client.list(.persistentVolumeClaims, as: AuditRecord.Claim.self, in: namespace, pageSize: pageSize)
            } catch let error as KubeAPIError where error.reason == .forbidden {
                unreadable.append(.init(namespace: namespace, reason: "may not list persistentvolumeclaims"))
            }
        }
        return (claims, unreadable)
    }

    /// Claims a run created (`repave/run-id` on the claim), by `namespace/name`: their uid and run.
    static func recreatedClaims(_ claims: [AuditRecord.Claim]) -> [String: (uid: String, run: String)] {
        var found: [String: (uid: String, run: String)] = [:]
        for claim in claims {
            if let run = claim.metadata.annotations?[RecreateRun.runAnnotation] { found["\(claim.namespace)/\(claim.name)"] = (claim.metadata.uid ?? "", run) }
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
        if let run = annotations[RetainedVolume.runAnnotation], let claim = annotations[RetainedVolume.claimAnnotation] { return (run, claim) }
        guard volume.phase == "Released", let ref = volume.spec?.claimRef, let namespace = ref.namespace, let name = ref.name,
              let recreated = recreatedClaims["\(namespace)/\(name)"], recreated.uid != ref.uid
        else { return nil }
        return (recreated.run, "\(namespace)/\(name)")
    }

    /// Retained volumes in scope, each with how to remove it: `repave finalize RUN` when its run
    /// finished on this machine and its journal names this volume as the one it kept; otherwise
    /// uid-guarded deletes of the PV and of its Longhorn volume, for a finished run or one whose
    /// directory is not here. A run not finished may still need the volume: one stopped after
    /// `delete-claim` leaves it Released, the only copy of the data.
    func retainedVolumes(_ volumes: [(volume: AuditRecord.Volume, run: String, claim: String)],
                         longhorn: [String: AuditRecord.LonghornVolume]) async -> [AuditReport.RetainedVolume] {
        let inScope = volumes.filter { kept in
            guard let namespace = scopeNamespace else { return true }
            return kept.claim.split(separator: "/").first.map(String.init) == namespace
        }
        guard !inScope.isEmpty else { return [] }
        let root = stateRoot
        let runs = await offPool("audit run lookup") { Self.runDirectories(under: root) }
        return inScope.sorted { $0.volume.name < $1.volume.name }.map { volume, run, claim in
            let backing = volume.longhornVolume.flatMap { longhorn[$0] }
            let found = runs[run]
            let state = found?.state ?? .notFound
            var cleanup: [String] = []
            // Issue 15: the uid-guarded commands go with a PV whose run finished here, or whose
            // run directory is elsewhere (its note says to make sure that run finished first).
            if state == .finished, let found, found.kept == volume.name {
                cleanup = ["repave finalize \(found.directory)"]
            } else if state == .finished || state == .notFound {
                cleanup = [Self.guardedDelete(ResourceType.persistentVolumes.path(name: volume.name), uid: volume.metadata.uid ?? "")]
                if let backing {
                    cleanup.append(Self.guardedDelete(ResourceType.longhornVolumes.path(namespace: longhornNamespace, name: backing.metadata.name),
                                                      uid: backing.metadata.uid ?? ""))
                }
            }
            return .init(volume: volume.name, uid: volume.metadata.uid ?? "", phase: volume.phase, reclaimPolicy: volume.spec?.persistentVolumeReclaimPolicy,
                         run: run, claim: claim, longhornVolume: backing?.metadata.name,
                         longhornVolumeUID: backing?.metadata.uid, runDirectory: found?.directory, runState: state,
                         note: state.note(found?.directory), cleanup: cleanup)
        }
    }

    /// A kubectl DELETE that carries a uid precondition: the object is deleted only if it is
    /// still the one the audit saw (kubectl's own `delete` has no such guard).
    static func guardedDelete(_ path: String, uid: String) -> String {
        "echo '{\"apiVersion\":\"v1\",\"kind\":\"DeleteOptions\",\"preconditions\":{\"uid\":\"\(uid)\"}}' | kubectl delete --raw \(path) -f -"
    }

    /// Run id → its directory and how its journal ends, for every run under `root`: the run of
    /// each journal's records, read as `repave status` reads them (a directory whose journal does
    /// not read is skipped; a journal whose records this repave cannot decode is not finished).
    /// `kept`: the volume the run's journal says it kept (`ClaimFact.volume`), what `finalize` deletes.
    static func runDirectories(under root: String) -> [String: (directory: String, state: AuditReport.RunState, kept: String?)] {
        var found: [String: (directory: String, state: AuditReport.RunState, kept: String?)] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] {
            let directory = root + "/" + name
            guard let records = (try? Journal.read(directory: directory))?.records, let run = records.first?.run, !run.isEmpty else { continue }
            let history = try? RunHistory(records)
            let state: AuditReport.RunState = history?.finished == true ? .finished : history?.aborted != nil ? .aborted : .notFinished
            found[run] = (directory, state, history?.facts[ClaimFact.volume])
        }
        return found
    }

    /// The reads an audit makes, and those the user was forbidden: all of them are named at
    /// once, as `repave run`'s permission check names what a run lacks.
    struct Reads {
        var forbidden: [KubeClient.AccessQuestion] = []

        /// A read's outcome as a value, so that reads can run side by side and be settled after.
        static func result<Value: Sendable>(_ read: () async throws -> Value) async -> Result<Value, any Error> {
            do {
                return .success(try await read())
            } catch {
                return .failure(error)
            }
        }

        /// What a read returned, or nil when the user may not read it (then `question` is
        /// remembered, to name with the others); any other failure is thrown.
        mutating func take<Value>(_ question: KubeClient.AccessQuestion, _ outcome: Result<Value, any Error>) throws -> Value? {
            switch outcome {
            case .success(let value): return value
            case .failure(let error as KubeAPIError) where error.reason == .forbidden:
                forbidden.append(question)
                return nil
            case .failure(let error): throw error
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
