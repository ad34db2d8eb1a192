/// What the audit read, reduced to what the rules need: claims in scope, and every PV, class and
/// Longhorn volume by name, with replicas tallied per volume as their pages arrive.
public struct AuditInventory: Sendable {
    public var claims: [AuditRecord.Claim] = []
    public var volumes: [String: AuditRecord.Volume] = [:]
    public var classes: [String: AuditRecord.StorageClass] = [:]
    public var longhornVolumes: [String: AuditRecord.LonghornVolume] = [:]
    /// nil when replicas.longhorn.io is not served: healthy counts are then not assessed.
    public var replicas: [String: ReplicaTally]?
    public var defaultReplicaCount: String?

    public init() {}

    /// Healthy replicas of one volume, by the nodes they run on.
    public struct ReplicaTally: Sendable, Equatable {
        /// Nodes of replicas healthy as a detached volume's are (rebuilt, not failed since).
        public var healthyNodes: Set<String> = []
        /// Nodes of those that are also running (what counts while attached).
        public var runningNodes: Set<String> = []
        /// Whether any replica was ever healthy (`healthyAt` set): a volume never attached has
        /// rebuilt none, and its count says nothing yet.
        public var everHealthy = false

        public init() {}

        public func healthy(attached: Bool) -> Int { (attached ? runningNodes : healthyNodes).count }
    }

    /// Adds one page of replicas to the tallies.
    public mutating func tally(_ page: [AuditRecord.Replica]) {
        var tallies = replicas ?? [:]
        for replica in page {
            guard let volume = replica.volume else { continue }
            var tally = tallies[volume] ?? ReplicaTally()
            if replica.isHealthy(volumeAttached: false), let node = replica.spec?.nodeID { tally.healthyNodes.insert(node) }
            if replica.isHealthy(volumeAttached: true), let node = replica.spec?.nodeID { tally.runningNodes.insert(node) }
            if !(replica.spec?.healthyAt ?? "").isEmpty { tally.everHealthy = true }
            tallies[volume] = tally
        }
        replicas = tallies
    }
}

extension Audit {
    /// The rules, without I/O: findings, unbound claims and the replica-count setting. Retained
    /// volumes are listed by ``retainedVolumes(_:inScope:)``.
    public static func assess(_ inventory: AuditInventory, into report: inout AuditReport) {
        let minimum = report.minReplicas
        report.claims = inventory.claims.count
        for claim in inventory.claims.sorted(by: { ($0.namespace, $0.name) < ($1.namespace, $1.name) }) {
            guard claim.phase == "Bound" else {
                if claim.phase == "Lost" || claim.phase == "Pending" {
                    report.unboundClaims.append(.init(namespace: claim.namespace, claim: claim.name, phase: claim.phase))
                }
                continue
            }
            if let finding = assess(claim, inventory, minimum: minimum, longhornNamespace: report.longhornNamespace) { report.findings.append(finding) }
        }
        // A count that is not a whole number is said, not passed over: the rule it feeds was not applied.
        var unreadableClasses: [String: String] = [:]
        for claim in inventory.claims where claim.phase == "Bound" {
            if let name = claim.spec?.storageClassName, let value = inventory.classes[name]?.unreadableLonghornReplicas { unreadableClasses[name] = value }
        }
        for (name, value) in unreadableClasses.sorted(by: { $0.key < $1.key }) {
            report.notAssessed.append("class \(name): numberOfReplicas \(AuditPlanWriter.quote(value)) is not a whole number, so its claims' class-replicas rule was not applied")
        }
        guard let value = inventory.defaultReplicaCount else { return }
        guard let count = AuditRecord.Setting.replicaCount(value) else {
            report.notAssessed.append("Longhorn setting default-replica-count: \(AuditPlanWriter.quote(value)) is not a whole number (nor one per data engine), so it was not compared with \(minimum)")
            return
        }
        if count < minimum {
            report.settings.append(.init(name: "default-replica-count", value: value,
                                         detail: "Longhorn volumes created without a replica count (and classes without numberOfReplicas) get \(count), below \(minimum)"))
        }
    }

    /// One bound claim's problems, or nil when it has none (or is not on Longhorn).
    static func assess(_ claim: AuditRecord.Claim, _ inventory: AuditInventory, minimum: Int, longhornNamespace: String) -> AuditReport.Finding? {
        let className = claim.spec?.storageClassName
        let storageClass = className.flatMap { inventory.classes[$0] }
        let pv = claim.volumeName.flatMap { inventory.volumes[$0] }
        var finding = AuditReport.Finding(namespace: claim.namespace, claim: claim.name, storageClass: className, volume: claim.volumeName,
                                          classReplicas: storageClass?.longhornReplicas, problems: [])
        if let classReplicas = finding.classReplicas, classReplicas < minimum {
            finding.problems.append(.init(kind: .classReplicas, detail: "class \(className ?? "") has numberOfReplicas \(classReplicas), below \(minimum): every claim made from it gets \(classReplicas)"))
        }
        if let name = pv?.longhornVolume {
            finding.longhornVolume = name
            if let volume = inventory.longhornVolumes[name] {
                let desired = volume.spec?.numberOfReplicas ?? 0
                let attached = volume.state == "attached"
                finding.desiredReplicas = desired
                finding.state = volume.state
                finding.robustness = volume.robustness
                if desired < minimum {
                    finding.problems.append(.init(kind: .desiredReplicas, detail: "longhorn volume \(name) has numberOfReplicas \(desired), below \(minimum)"))
                }
                if let tallies = inventory.replicas {
                    let tally = tallies[name] ?? .init()
                    let healthy = tally.healthy(attached: attached)
                    finding.healthyReplicas = healthy
                    if healthy < minimum && (attached || tally.everHealthy) {
                        // A volume never attached has rebuilt no replica yet: its count is not a
                        // problem until it has been used (its desired count still is).
                        finding.problems.append(.init(kind: .healthyReplicas, detail: "\(healthy) healthy \(healthy == 1 ? "replica" : "replicas") on distinct nodes, below \(minimum)"))
                    }
                }
                if attached, ["degraded", "faulted", "unknown", ""].contains(volume.robustness) {
                    finding.problems.append(.init(kind: .robustness, detail: "attached and \(volume.robustness.isEmpty ? "of no reported robustness" : volume.robustness)"))
                }
            } else {
                finding.problems.append(.init(kind: .longhornVolumeMissing, detail: "pv \(pv?.name ?? "") names longhorn volume \(name), which does not exist in \(longhornNamespace)"))
            }
        }
        return finding.problems.isEmpty ? nil : finding
    }
}
