import ArgumentParser
import Foundation
import KubeAPI

/// The part of Longhorn's manager the lab plays: the CRDs, `nodes.longhorn.io`,
/// `settings.longhorn.io`, each volume's `replicas.longhorn.io` and its status.
///
/// Replicas follow `spec.numberOfReplicas` as Longhorn's volume controller does: a new volume gets
/// all its replicas at once; an existing one rebuilds missing replicas one at a time, only while
/// attached (or detached with offline rebuilding on, which attaches it for the rebuild). A lower
/// count removes nothing. Under hard anti-affinity (`replica-soft-anti-affinity: "false"`, the
/// default) each replica needs its own schedulable Longhorn node; when there are fewer nodes than
/// replicas the volume's `Scheduled` condition is false with reason `ReplicaSchedulingFailure`.
///
/// Knobs on the claim or its class: `lab.repave/rebuild-delay` (how long one replica's rebuild
/// takes, default 0s) and `lab.repave/schedulable-nodes: N` (Longhorn finds room for this volume
/// on only the first N nodes, as if the others' disks were full: preflight sees the nodes, the
/// rebuild does not). On the Longhorn Volume itself, `lab.repave/replicas: manual` leaves its
/// replicas and engine to the test that made it (a volume made without a claim, with replicas of
/// its own): the agent then only reports the volume's status from them.
extension LabAgent {
    static let longhornSettingDefaults: [(String, String)] = [
        ("default-replica-count", "3"), ("replica-soft-anti-affinity", "false"), ("offline-replica-rebuilding", "false"),
    ]

    // MARK: start-up

    func installLonghornCRDs() async throws {
        try await installCRD(.longhornVolumes, singular: "volume", shortNames: ["lhv"], statusSubresource: true)
        try await installCRD(.longhornReplicas, singular: "replica", shortNames: ["lhr"], statusSubresource: false)
        try await installCRD(.longhornEngines, singular: "engine", shortNames: ["lhe"], statusSubresource: false)
        try await installCRD(.longhornNodes, singular: "node", shortNames: ["lhn"], statusSubresource: false)
        try await installCRD(.longhornSettings, singular: "setting", shortNames: ["lhs"], statusSubresource: false)
    }

    /// Longhorn's CRDs keep unknown fields; only volumes have a status subresource here, so the
    /// agent writes a replica's or node's status with its spec (the tool only reads them).
    private func installCRD(_ type: ResourceType, singular: String, shortNames: [String], statusSubresource: Bool) async throws {
        var version: JSON = [
            "name": .string(type.version), "served": true, "storage": true,
            "schema": ["openAPIV3Schema": ["type": "object", "x-kubernetes-preserve-unknown-fields": true]],
        ]
        if statusSubresource { version["subresources"] = ["status": [:]] }
        let name = "\(type.plural).\(type.group)"
        let crd: JSON = [
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": ["name": .string(name)],
            "spec": [
                "group": .string(type.group), "scope": "Namespaced",
                "names": ["kind": .string(type.kind), "plural": .string(type.plural), "singular": .string(singular),
                          "listKind": .string(type.kind + "List"), "shortNames": .array(shortNames.map { .string($0) })],
                "versions": [version],
            ],
        ]
        do {
            try await client.create(.customResourceDefinitions, crd)
        } catch let error as KubeAPIError where error.reason == .alreadyExists {}
        try await client.wait(for: .customResourceDefinitions, named: name, timeout: .seconds(30),
                              describedAs: "the \(name) CRD to be established") { crd in
            Condition.of(crd).contains { $0.type == "Established" && $0.status == "True" }
        }
        // Discovery can lag the Established condition by a moment.
        var attempts = 0
        while !(try await client.serves(type)) {
            attempts += 1
            guard attempts < 100 else { throw ValidationError("\(name) is established but not served after 10 s") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Longhorn nodes `lab-node-1…N` with one default disk, Ready and Schedulable; settings at
    /// Longhorn's defaults. Both are created only when absent, so a test's change survives.
    func registerLonghornNodesAndSettings() async throws {
        for name in longhornNodeNames {
            let now = timestamp()
            let condition: (String) -> JSON = { ["type": .string($0), "status": "True", "reason": "", "message": "", "lastTransitionTime": .string(now)] }
            do {
                try await client.create(.longhornNodes, in: Self.longhornNamespace, [
                    "apiVersion": "longhorn.io/v1beta2", "kind": "Node",
                    "metadata": ["name": .string(name)],
                    "spec": ["name": .string(name), "allowScheduling": true, "evictionRequested": false, "tags": [],
                             "disks": ["default-disk": ["path": "/var/lib/longhorn/", "allowScheduling": true, "storageReserved": 0, "tags": []]]],
                    "status": ["conditions": [condition("Ready"), condition("Schedulable")], "region": "", "zone": ""],
                ])
            } catch let error as KubeAPIError where error.reason == .alreadyExists {}
        }
        for (name, value) in Self.longhornSettingDefaults {
            do {
                try await client.create(.longhornSettings, in: Self.longhornNamespace, [
                    "apiVersion": "longhorn.io/v1beta2", "kind": "Setting", "metadata": ["name": .string(name)], "value": .string(value),
                ])
            } catch let error as KubeAPIError where error.reason == .alreadyExists {}
        }
    }

    // MARK: reconcile

    /// What the agent reads to play Longhorn's manager in one pass.
    struct LonghornWorld: Sendable {
        var replicas: [String: [LonghornReplica]]   // volume name → its replicas
        var engines: [String: LonghornEngine]       // volume name → its engine
        var nodes: [LonghornNode]                   // schedulable, by name
        var settings: [String: String]

        var softAntiAffinity: Bool { settings["replica-soft-anti-affinity"] == "true" }
        var offlineRebuildingByDefault: Bool { settings["offline-replica-rebuilding"] == "true" }
    }

    func longhornWorld() async -> LonghornWorld {
        let replicas = await self.replicas.objects.map(LonghornReplica.init)
        let nodes = await longhornNodes.objects.map(LonghornNode.init).filter(\.isSchedulable).sorted { $0.name < $1.name }
        let settings = Dictionary(await longhornSettings.objects.map { (LonghornSetting($0).name, LonghornSetting($0).value) }, uniquingKeysWith: { a, _ in a })
        let engines = await self.engines.objects.map(LonghornEngine.init)
        return LonghornWorld(replicas: Dictionary(grouping: replicas, by: \.volumeName),
                             engines: Dictionary(engines.map { ($0.metadata.labels["longhornvolume"] ?? "", $0) }, uniquingKeysWith: { a, _ in a }),
                             nodes: nodes, settings: settings)
    }

    /// Attached and healthy (or the claim's or class's `lab.repave/robustness`) while a running
    /// pod uses the volume and it has all its replicas; degraded while a replica is missing or
    /// rebuilt; detached with robustness unknown otherwise, as Longhorn reports. With a real node,
    /// `attachments` (the VolumeAttachments) say which volumes are attached, and where.
    func longhornStatusActions(
        pods: [Pod], claims: [String: PersistentVolumeClaim], volumes: [PersistentVolume],
        longhorn: [String: LonghornVolume], classes: [String: StorageClass], attachments: [JSON]?
    ) async -> [Action] {
        var attachedTo: [String: String] = [:]   // pv name → node
        if let attachments {
            for attachment in attachments where attachment[path: "status", "attached"]?.boolValue == true
                && attachment[path: "spec", "attacher"]?.stringValue == Self.driver {
                if let pv = attachment[path: "spec", "source", "persistentVolumeName"]?.stringValue {
                    attachedTo[pv] = attachment[path: "spec", "nodeName"]?.stringValue ?? ""
                }
            }
        } else {
            for pod in pods where pod.phase == "Running" && !pod.metadata.isTerminating {
                for claimName in pod.claimNames {
                    if let pv = claims["\(pod.namespace ?? "")/\(claimName)"]?.volumeName { attachedTo[pv] = pod.nodeName ?? "" }
                }
            }
        }
        let world = await longhornWorld()
        let byName = Dictionary(volumes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var actions: [Action] = []
        for (name, volume) in longhorn where !volume.metadata.isTerminating {
            var knobs: [[String: String]] = []
            if let ref = byName[name]?.claimRef, let claim = claims["\(ref.namespace)/\(ref.name)"] {
                knobs.append(claim.metadata.annotations)
                if let className = claim.storageClassName, let storageClass = classes[className] { knobs.append(storageClass.metadata.annotations) }
            }
            let (node, volumeKnobs) = (attachedTo[name], knobs)
            actions.append(Action("longhorn volume \(name)") {
                try await self.reconcileVolume(volume, attachedTo: node, knobs: volumeKnobs, world: world)
            })
        }
        return actions
    }

    private func reconcileVolume(_ volume: LonghornVolume, attachedTo: String?, knobs: [[String: String]], world: LonghornWorld) async throws {
        let name = volume.name
        let desired = volume.numberOfReplicas
        var nodes = world.nodes
        if let limit = annotation("schedulable-nodes", knobs).flatMap(Int.init) { nodes = Array(nodes.prefix(max(0, limit))) }
        var replicas = (world.replicas[name] ?? []).filter { !$0.metadata.isTerminating }
        var live = replicas.filter { $0.failedAt.isEmpty }
        let offline = volume.offlineRebuilding == "enabled" || (volume.offlineRebuilding != "disabled" && world.offlineRebuildingByDefault)

        // Where the next replica could go: under hard anti-affinity a node without one of ours.
        let used = Set(live.map(\.nodeID))
        let candidates = world.softAntiAffinity
            ? nodes.sorted { a, b in live.count(where: { $0.nodeID == a.name }) < live.count(where: { $0.nodeID == b.name }) }
            : nodes.filter { !used.contains($0.name) }
        let missing = desired - live.count
        let schedulingFailure = missing > 0 && candidates.count < (replicas.isEmpty ? missing : 1)
            ? "precheck new replica failed: no node for replica \(live.count + 1) of \(desired) of volume \(name): "
                + "\(nodes.count) schedulable node(s) under \(world.softAntiAffinity ? "soft" : "hard") node anti-affinity (replica-soft-anti-affinity=\(world.softAntiAffinity))"
            : nil

        let managed = volume.metadata.annotations[Self.annotationPrefix + "replicas"] != "manual"
        if managed, replicas.isEmpty, desired > 0 {
            // A new volume: all its replicas at once, healthy (there is nothing to copy yet).
            for node in candidates.prefix(desired) {
                replicas.append(try await createReplica(of: volume, on: node.name, healthy: true))
            }
            live = replicas
        }
        let healthy = live.filter(\.isHealthy)
        let rebuilding = live.filter(\.isRebuilding)
        let offlineRebuild = attachedTo == nil && offline && !healthy.isEmpty && healthy.count < desired && schedulingFailure == nil
        let engineUp = attachedTo != nil || offlineRebuild

        let delay = annotation("rebuild-delay", knobs).flatMap(parseDuration) ?? .zero
        // A rebuild under way finishes even if the count was lowered meanwhile (as Longhorn's
        // does); a new one starts only while replicas are missing.
        if managed, engineUp, !rebuilding.isEmpty || healthy.count < desired {
            if let replica = rebuilding.first {
                if due("rebuild/\(replica.uid)", after: delay), claimAction("rebuilt/\(replica.uid)") {
                    try await client.patch(.longhornReplicas, named: replica.name, in: Self.longhornNamespace,
                                           .merge(["spec": ["healthyAt": .string(timestamp())], "status": ["currentState": "running", "mode": "RW"]]))
                    logger.info("replica rebuilt", metadata: ["volume": "\(name)", "replica": "\(replica.name)", "node": "\(replica.nodeID)"])
                }
            } else if live.count < desired, let node = candidates.first, claimAction("rebuild/\(name)/\(live.count)") {
                // One rebuild at a time, as Longhorn does for an existing volume.
                let replica = try await createReplica(of: volume, on: node.name, healthy: false)
                logger.info("replica rebuilding", metadata: ["volume": "\(name)", "replica": "\(replica.name)", "node": "\(node.name)"])
            }
        }

        if managed {
            try await reconcileEngine(of: volume, engine: world.engines[name], up: engineUp, live: live,
                                      rebuilding: rebuilding.first.map { ($0, delay) })
        }

        // Replicas run while the engine does.
        let replicaState = engineUp ? "running" : "stopped"
        for replica in live where managed && replica.currentState != replicaState && claimAction("replica/\(replica.uid)/\(replicaState)") {
            try await client.patch(.longhornReplicas, named: replica.name, in: Self.longhornNamespace, .merge(["status": ["currentState": .string(replicaState)]]))
        }

        var state = "detached", robustness = "unknown", node = ""
        if let attachedTo {
            state = "attached"
            node = attachedTo
            robustness = annotation("robustness", knobs) ?? (healthy.isEmpty ? "faulted" : healthy.count < desired ? "degraded" : "healthy")
            // `healthy-delay`: degraded for that long after it first attaches (a rebuild), so
            // a verify right after scale-up sees it heal (the crash matrix needs that wait).
            if robustness == "healthy", let delay = annotation("healthy-delay", knobs).flatMap(parseDuration), !due("healthy/\(name)", after: delay) {
                robustness = "degraded"
            }
        } else if offlineRebuild {
            // Longhorn attaches it itself, frontend disabled, for the rebuild, then detaches.
            state = "attached"
            node = healthy.first?.nodeID ?? ""
            robustness = "degraded"
        }
        let scheduled = schedulingFailure.map { (status: "False", reason: "ReplicaSchedulingFailure", message: $0) } ?? (status: "True", reason: "", message: "")
        let now = timestamp()
        var conditions: [JSON] = [["type": "Scheduled", "status": .string(scheduled.status), "reason": .string(scheduled.reason),
                                   "message": .string(scheduled.message), "lastTransitionTime": .string(now)]]
        if offlineRebuild {
            conditions.append(["type": "OfflineRebuilding", "status": "True", "reason": "OfflineRebuildingInProgress", "message": "", "lastTransitionTime": .string(now)])
        }
        let current = volume.scheduled
        let offlineShown = volume.conditions.contains { $0.type == "OfflineRebuilding" && $0.status == "True" }
        guard volume.state != state || volume.robustness != robustness || volume.currentNodeID != node
                || current?.status != scheduled.status || (current?.message ?? "") != scheduled.message || offlineShown != offlineRebuild,
              claimAction("longhorn/\(name)/\(state)/\(robustness)/\(scheduled.status)/\(offlineRebuild)")
        else { return }
        try await client.patch(.longhornVolumes, named: name, in: Self.longhornNamespace,
                               .merge(["status": ["state": .string(state), "robustness": .string(robustness), "currentNodeID": .string(node),
                                                  "conditions": .array(conditions)]]),
                               subresource: "status")
    }

    /// The volume's engine `<volume>-e-0`: the replicas it writes to (`RW`, `WO` while rebuilt)
    /// and, for the replica being rebuilt, its progress in `rebuildStatus` (by the replica's
    /// address), in steps of 10 %, as the rebuild's delay passes.
    private func reconcileEngine(of volume: LonghornVolume, engine: LonghornEngine?, up: Bool, live: [LonghornReplica],
                                 rebuilding: (replica: LonghornReplica, delay: Duration)?) async throws {
        var modes: [String: JSON] = [:], rebuildStatus: [String: JSON] = [:]
        if up {
            for replica in live { modes[replica.name] = .string(replica.isHealthy ? "RW" : "WO") }
            if let (replica, delay) = rebuilding, let address = replica.address {
                let elapsed = eligible("rebuild/\(replica.uid)")
                let fraction = delay > .zero ? min(0.99, elapsed / delay) : 0
                rebuildStatus[address] = ["isRebuilding": true, "progress": .integer(Int64(fraction * 10) * 10), "state": "in_progress",
                                          "error": "", "fromReplicaAddress": ""]
            }
        }
        let status: JSON = ["currentState": .string(up ? "running" : "stopped"), "replicaModeMap": .object(modes), "rebuildStatus": .object(rebuildStatus)]
        guard let engine else {
            guard claimAction("engine/\(volume.uid)") else { return }
            try await client.create(.longhornEngines, in: Self.longhornNamespace, [
                "apiVersion": "longhorn.io/v1beta2", "kind": "Engine",
                "metadata": [
                    "name": .string("\(volume.name)-e-0"), "labels": ["longhornvolume": .string(volume.name)],
                    "ownerReferences": [["apiVersion": "longhorn.io/v1beta2", "kind": "Volume", "name": .string(volume.name), "uid": .string(volume.uid)]],
                ],
                "spec": ["volumeName": .string(volume.name)],
                "status": status,
            ])
            return
        }
        guard engine.raw["status"] != status, claimAction("engine/\(engine.uid)/\(String(decoding: status.encoded(), as: UTF8.self))") else { return }
        // Replaced whole: a merge patch would keep the keys of a finished rebuild.
        try await client.patch(.longhornEngines, named: engine.name, in: Self.longhornNamespace, .json([["op": "replace", "path": "/status", "value": status]]))
    }

    /// A replica owned by its volume, so deleting the volume deletes it (as Longhorn's do).
    private func createReplica(of volume: LonghornVolume, on node: String, healthy: Bool) async throws -> LonghornReplica {
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let created = try await client.create(.longhornReplicas, in: Self.longhornNamespace, [
            "apiVersion": "longhorn.io/v1beta2", "kind": "Replica",
            "metadata": [
                "name": .string("\(volume.name)-r-\(suffix)"), "labels": ["longhornvolume": .string(volume.name), "longhornnode": .string(node)],
                "ownerReferences": [["apiVersion": "longhorn.io/v1beta2", "kind": "Volume", "name": .string(volume.name), "uid": .string(volume.uid)]],
            ],
            "spec": ["volumeName": .string(volume.name), "nodeID": .string(node), "healthyAt": .string(healthy ? timestamp() : ""), "failedAt": "",
                     "volumeSize": .string(volume.size ?? "0"), "desireState": "running"],
            "status": ["currentState": "stopped", "mode": .string(healthy ? "RW" : "WO"), "port": 10000,
                       "ip": .string("10.42.\(UInt8.random(in: 0...255)).\(UInt8.random(in: 1...254))")],
        ])
        return LonghornReplica(created)
    }
}
