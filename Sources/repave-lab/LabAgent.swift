import ArgumentParser
import Foundation
import KubeAPI
import Logging
import Synchronization

/// Plays what the lab's control plane lacks: the kubelets of `lab-node-1…N` and Longhorn's CSI
/// driver and manager. With a real node (`LAB_NODES=real scripts/lab up`, `--real-node`), it plays
/// only Longhorn's controller side: the provisioner (PVs whose volume is a directory the node's CSI
/// plugin bind-mounts), the attacher (`VolumeAttachment.status.attached`), and the
/// `volumes.longhorn.io` objects, whose state follows the real attachments. Level-triggered: every change seen by an informer (and a short tick, for
/// delays) re-evaluates the whole cached state and issues only the calls that are still needed.
///
/// Per-object knobs (annotations), so tests sharing one lab do not disturb each other:
/// - Pod: `lab.repave/start-delay`, `lab.repave/terminate-delay` (durations such as `2s`)
/// - PersistentVolumeClaim or StorageClass: `lab.repave/provision: fail`,
///   `lab.repave/provision-delay`, `lab.repave/robustness: degraded|faulted`,
///   `lab.repave/healthy-delay` (degraded for that long after the volume first attaches),
///   `lab.repave/rebuild-delay`, `lab.repave/schedulable-nodes` (LabAgent+Longhorn.swift)
final class LabAgent: Sendable {
    struct Settings: Sendable {
        var nodes: Int
        var startDelay: Duration
        var terminateDelay: Duration
        var provisionDelay: Duration
        var heartbeat: Duration
        /// How many `nodes.longhorn.io` (`lab-node-1…N`) replicas may be scheduled on.
        var longhornNodes = 3
        /// Nodes run by a real kubelet: the agent never plays their pods.
        var realNodes: [String] = []
        /// Where the real node's CSI plugin keeps each volume (`<dir>/<volume name>`).
        var volumeDir: String?

        var real: Bool { !realNodes.isEmpty }
    }

    static let driver = "driver.longhorn.io"
    static let longhornNamespace = "longhorn-system"
    static let annotationPrefix = "lab.repave/"

    let client: KubeClient
    let settings: Settings
    let logger: Logger
    let nodeNames: [String]
    let longhornNodeNames: [String]

    private let bell: AsyncStream<Void>.Continuation
    private let wakeups: AsyncStream<Void>
    let pods: Informer
    let claims: Informer
    let volumes: Informer
    let classes: Informer
    let longhorn: Informer
    let replicas: Informer
    let engines: Informer
    let longhornNodes: Informer
    let longhornSettings: Informer
    let attachments: Informer?

    /// When each object first became eligible for a delayed action, and actions recently issued
    /// (so a stale cache does not repeat them).
    private let clock = ContinuousClock()
    private let firstEligible = Mutex<[String: ContinuousClock.Instant]>([:])
    private let recentlyDone = Mutex<[String: ContinuousClock.Instant]>([:])

    init(client: KubeClient, settings: Settings, logger: Logger) {
        self.client = client
        self.settings = settings
        self.logger = logger
        nodeNames = settings.nodes > 0 ? (1...settings.nodes).map { "lab-node-\($0)" } : []
        longhornNodeNames = settings.longhornNodes > 0 ? (1...settings.longhornNodes).map { "lab-node-\($0)" } : []
        let (wakeups, bell) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        self.wakeups = wakeups
        self.bell = bell
        let ring: @Sendable () -> Void = { bell.yield(()) }
        pods = Informer(.pods, client: client, logger: logger, bell: ring)
        claims = Informer(.persistentVolumeClaims, client: client, logger: logger, bell: ring)
        volumes = Informer(.persistentVolumes, client: client, logger: logger, bell: ring)
        classes = Informer(.storageClasses, client: client, logger: logger, bell: ring)
        longhorn = Informer(.longhornVolumes, client: client, logger: logger, bell: ring)
        replicas = Informer(.longhornReplicas, client: client, logger: logger, bell: ring)
        engines = Informer(.longhornEngines, client: client, logger: logger, bell: ring)
        longhornNodes = Informer(.longhornNodes, client: client, logger: logger, bell: ring)
        longhornSettings = Informer(.longhornSettings, client: client, logger: logger, bell: ring)
        attachments = settings.real ? Informer(.volumeAttachments, client: client, logger: logger, bell: ring) : nil
    }

    private var informers: [Informer] { [pods, claims, volumes, classes, longhorn, replicas, engines, longhornNodes, longhornSettings] + (attachments.map { [$0] } ?? []) }

    // MARK: - start-up

    func prepare() async throws {
        try await installLonghornCRDs()
        try await ensureNamespace(Self.longhornNamespace)
        for name in nodeNames { try await registerNode(name) }
        try await registerLonghornNodesAndSettings()
        if settings.real { try await installCSIDriver() }
    }

    /// Longhorn's CSIDriver: attach required, so the attach/detach controller makes a
    /// VolumeAttachment before the kubelet publishes, as with the real driver.
    private func installCSIDriver() async throws {
        do {
            try await client.create(.csiDrivers, [
                "apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
                "metadata": ["name": .string(Self.driver)],
                "spec": ["attachRequired": true, "podInfoOnMount": true, "volumeLifecycleModes": ["Persistent"]],
            ])
        } catch let error as KubeAPIError where error.reason == .alreadyExists {}
    }

    func run(readyFile: String?) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for informer in informers {
                group.addTask { await informer.run() }
            }
            group.addTask { try await self.heartbeats() }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: .milliseconds(250))
                    self.bell.yield(())
                }
            }
            group.addTask {
                var announced = false
                for await _ in self.wakeups {
                    guard await self.allSynced() else { continue }
                    if !announced, let readyFile {
                        announced = true
                        _ = FileManager.default.createFile(atPath: readyFile, contents: Data("ready\n".utf8))
                        self.logger.notice("lab agent ready", metadata: ["nodes": "\((self.nodeNames + self.settings.realNodes).joined(separator: ","))"])
                    }
                    await self.reconcile()
                }
            }
            try await group.next()
        }
    }

    private func allSynced() async -> Bool {
        for informer in informers where !(await informer.synced) { return false }
        return true
    }

    private func ensureNamespace(_ name: String) async throws {
        do {
            try await client.create(.namespaces, ["metadata": ["name": .string(name)]])
        } catch let error as KubeAPIError where error.reason == .alreadyExists {}
    }

    private func registerNode(_ name: String) async throws {
        do {
            try await client.create(.nodes, [
                "apiVersion": "v1", "kind": "Node",
                "metadata": ["name": .string(name), "labels": ["kubernetes.io/hostname": .string(name), "kubernetes.io/os": "linux"]],
            ])
        } catch let error as KubeAPIError where error.reason == .alreadyExists {}
        try await client.patch(.nodes, named: name, .merge(nodeStatus()), subresource: "status")
        // The TaintNodesByCondition admission gives a new node the not-ready taint, and no
        // node-lifecycle controller runs here to lift it.
        try await client.patch(.nodes, named: name, .merge(["spec": ["taints": .null]]))
    }

    private func nodeStatus() -> JSON {
        let now = timestamp()
        let resources: JSON = ["cpu": "16", "memory": "64Gi", "pods": "1100", "ephemeral-storage": "500Gi"]
        return ["status": [
            "capacity": resources, "allocatable": resources,
            "conditions": [[
                "type": "Ready", "status": "True", "reason": "KubeletReady", "message": "repave-lab agent is posting ready status",
                "lastHeartbeatTime": .string(now), "lastTransitionTime": .string(now),
            ]],
            "addresses": [["type": "InternalIP", "address": "127.0.0.1"]],
            "nodeInfo": ["kubeletVersion": "v1.20.2", "operatingSystem": "linux", "architecture": "amd64",
                         "containerRuntimeVersion": "repave-lab://1", "kernelVersion": "", "osImage": "repave-lab",
                         "kubeProxyVersion": "", "machineID": "", "systemUUID": "", "bootID": ""],
        ]]
    }

    private func heartbeats() async throws {
        while !Task.isCancelled {
            try await Task.sleep(for: settings.heartbeat)
            for name in nodeNames {
                do {
                    try await client.patch(.nodes, named: name, .merge(nodeStatus()), subresource: "status")
                } catch {
                    logger.warning("node heartbeat failed", metadata: ["node": "\(name)", "error": "\(error)"])
                }
            }
        }
    }

    // MARK: - reconcile

    /// One pass: every object's next call, at most `concurrency` at a time (one slow call must
    /// not hold up every other test's pods and volumes; CI once saw passes of over 10 s when
    /// they ran one after another). A pass that takes over 2 s is logged with its size.
    private func reconcile() async {
        let started = clock.now
        let pods = await self.pods.objects.map(Pod.init)
        let claims = await self.claims.objects.map(PersistentVolumeClaim.init)
        let volumes = await self.volumes.objects.map(PersistentVolume.init)
        let classes = Dictionary(await self.classes.objects.map { (StorageClass($0).name, StorageClass($0)) }, uniquingKeysWith: { a, _ in a })
        let longhornVolumes = Dictionary(await self.longhorn.objects.map { (LonghornVolume($0).name, LonghornVolume($0)) }, uniquingKeysWith: { a, _ in a })
        let claimsByKey = Dictionary(claims.map { ("\($0.namespace ?? "")/\($0.name)", $0) }, uniquingKeysWith: { a, _ in a })
        let attachments = await self.attachments?.objects ?? []
        let ours = Set(nodeNames)

        var work: [Action] = []
        for pod in pods where pod.nodeName.map(ours.contains) == true {
            work.append(Action("pod \(pod.name)") { try await self.reconcilePod(pod, claims: claimsByKey) })
        }
        for claim in claims {
            work.append(Action("claim \(claim.name)") { try await self.provisionIfNeeded(claim, classes: classes, volumes: volumes) })
        }
        for volume in volumes {
            work.append(Action("volume \(volume.name)") { try await self.reclaimIfReleased(volume, longhorn: longhornVolumes) })
        }
        for attachment in attachments {
            work.append(Action("volumeattachment") { try await self.attachIfNeeded(attachment) })
        }
        work += await longhornStatusActions(pods: pods, claims: claimsByKey, volumes: volumes, longhorn: longhornVolumes, classes: classes,
                                            attachments: settings.real ? attachments : nil)
        await perform(work)
        let took = clock.now - started
        if took > .seconds(2) {
            logger.notice("slow reconcile pass", metadata: ["seconds": "\(took)", "objects": "\(work.count)"])
        }
    }

    struct Action: Sendable {
        let what: String
        let body: @Sendable () async throws -> Void
        init(_ what: String, _ body: @escaping @Sendable () async throws -> Void) {
            self.what = what
            self.body = body
        }
    }

    static let concurrency = 8

    private func perform(_ actions: [Action]) async {
        await withTaskGroup(of: Void.self) { group in
            var next = actions.makeIterator()
            for _ in 0..<Self.concurrency {
                guard let action = next.next() else { break }
                group.addTask { await self.act(action.what, action.body) }
            }
            while await group.next() != nil {
                guard let action = next.next() else { continue }
                group.addTask { await self.act(action.what, action.body) }
            }
        }
    }

    func act(_ what: String, _ body: () async throws -> Void) async {
        do {
            try await body()
        } catch let error as KubeAPIError where [.notFound, .conflict, .alreadyExists].contains(error.reason) {
            // Raced with the cluster; the next pass sees the new state.
        } catch {
            logger.warning("lab agent action failed", metadata: ["object": "\(what)", "error": "\(error)"])
        }
    }

    /// True once `delay` has passed since `key` first became eligible.
    func due(_ key: String, after delay: Duration) -> Bool { eligible(key) >= delay }

    /// How long `key` has been eligible (zero the first time it is asked about).
    func eligible(_ key: String) -> Duration {
        let now = clock.now
        let since = firstEligible.withLock { seen in
            if let first = seen[key] { return first }
            seen[key] = now
            return now
        }
        return now - since
    }

    /// True unless `key` was done within the last two seconds (the informer may not show it yet).
    func claimAction(_ key: String) -> Bool {
        let now = clock.now
        return recentlyDone.withLock { done in
            if let last = done[key], now - last < .seconds(2) { return false }
            done[key] = now
            if done.count > 10_000 { done = done.filter { now - $0.value < .seconds(2) } }
            return true
        }
    }

    func annotation(_ name: String, _ objects: [[String: String]]) -> String? {
        for annotations in objects { if let value = annotations[Self.annotationPrefix + name] { return value } }
        return nil
    }

    // MARK: kubelet

    private func reconcilePod(_ pod: Pod, claims: [String: PersistentVolumeClaim]) async throws {
        let namespace = pod.namespace ?? "default"
        let annotations = pod.metadata.annotations
        if pod.metadata.isTerminating {
            let delay = annotation("terminate-delay", [annotations]).flatMap(parseDuration) ?? settings.terminateDelay
            guard due("terminate/\(pod.uid)", after: delay), claimAction("delete/\(pod.uid)") else { return }
            // The kubelet's last word: delete with grace 0 once the containers are gone.
            try await client.delete(.pods, named: pod.name, in: namespace, uid: pod.uid, gracePeriodSeconds: 0)
            logger.info("pod terminated", metadata: ["pod": "\(namespace)/\(pod.name)"])
            return
        }
        if pod.phase == "Running" || pod.phase == "Succeeded" || pod.phase == "Failed" { return }
        let waitingFor = pod.claimNames.filter { claims["\(namespace)/\($0)"]?.isBound != true }
        if !waitingFor.isEmpty {
            if pod.raw[path: "status", "containerStatuses"] == nil, claimAction("pending/\(pod.uid)") {
                try await client.patch(.pods, named: pod.name, in: namespace, .merge(pendingStatus(pod, waitingFor: waitingFor)), subresource: "status")
            }
            return
        }
        let delay = annotation("start-delay", [annotations]).flatMap(parseDuration) ?? settings.startDelay
        guard due("start/\(pod.uid)", after: delay), claimAction("start/\(pod.uid)") else { return }
        try await client.patch(.pods, named: pod.name, in: namespace, .merge(runningStatus(pod)), subresource: "status")
        logger.info("pod running", metadata: ["pod": "\(namespace)/\(pod.name)", "node": "\(pod.nodeName ?? "")"])
    }

    private func containers(_ pod: Pod) -> [(name: String, image: String)] {
        (pod.raw[path: "spec", "containers"]?.arrayValue ?? []).map {
            ($0["name"]?.stringValue ?? "c", $0["image"]?.stringValue ?? "")
        }
    }

    private func pendingStatus(_ pod: Pod, waitingFor claims: [String]) -> JSON {
        let message = "waiting for persistentvolumeclaim \(claims.joined(separator: ", ")) to be bound"
        return ["status": [
            "phase": "Pending",
            "containerStatuses": .array(containers(pod).map { container in
                ["name": .string(container.name), "image": .string(container.image), "imageID": "", "ready": false, "restartCount": 0,
                 "started": false, "state": ["waiting": ["reason": "ContainerCreating", "message": .string(message)]]]
            }),
        ]]
    }

    private func runningStatus(_ pod: Pod) -> JSON {
        let now = timestamp()
        let condition: (String) -> JSON = { ["type": .string($0), "status": "True", "lastProbeTime": .null, "lastTransitionTime": .string(now)] }
        let octets = pod.uid.utf8.reduce(0) { ($0 &* 31 &+ Int($1)) & 0xFFFF }
        return ["status": [
            "phase": "Running",
            "conditions": [condition("Initialized"), condition("Ready"), condition("ContainersReady"), condition("PodScheduled")],
            "containerStatuses": .array(containers(pod).map { container in
                ["name": .string(container.name), "image": .string(container.image), "imageID": .string("repave-lab://\(container.image)"),
                 "containerID": .string("repave-lab://\(pod.uid)/\(container.name)"),
                 "ready": true, "started": true, "restartCount": 0, "state": ["running": ["startedAt": .string(now)]]]
            }),
            "hostIP": "127.0.0.1", "podIP": .string("10.244.\(octets >> 8).\(octets & 0xFF)"),
            "podIPs": [["ip": .string("10.244.\(octets >> 8).\(octets & 0xFF)")]],
            "startTime": .string(now),
        ]]
    }

    // MARK: Longhorn CSI provisioner

    private func provisionIfNeeded(_ claim: PersistentVolumeClaim, classes: [String: StorageClass], volumes: [PersistentVolume]) async throws {
        guard claim.phase == "Pending", !claim.metadata.isTerminating, claim.volumeName == nil,
              let className = claim.storageClassName, let storageClass = classes[className],
              storageClass.provisioner == Self.driver
        else { return }
        let name = "pvc-\(claim.uid)"
        if volumes.contains(where: { $0.name == name }) { return }
        let knobs = [claim.metadata.annotations, storageClass.metadata.annotations]
        if annotation("provision", knobs) == "fail" { return }
        var selectedNode: String?
        if storageClass.volumeBindingMode == "WaitForFirstConsumer" {
            // The scheduler picks the node and marks the claim; provisioning waits for that mark
            // (waiting for the pod to run would deadlock: the pod waits for the volume).
            guard let node = claim.metadata.annotations["volume.kubernetes.io/selected-node"] else { return }
            selectedNode = node
        }
        let delay = annotation("provision-delay", knobs).flatMap(parseDuration) ?? settings.provisionDelay
        guard due("provision/\(claim.uid)", after: delay), claimAction("provision/\(claim.uid)") else { return }

        let namespace = claim.namespace ?? "default"
        let size = claim.requestedStorage ?? "1Gi"
        let replicas = Int64(storageClass.parameters["numberOfReplicas"] ?? "3") ?? 3
        do {
            try await client.create(.longhornVolumes, in: Self.longhornNamespace, [
                "apiVersion": "longhorn.io/v1beta2", "kind": "Volume",
                "metadata": ["name": .string(name), "labels": ["longhornvolume": .string(name)]],
                "spec": ["numberOfReplicas": .integer(replicas), "size": .string(String(bytes(size))),
                         "frontend": "blockdev", "staleReplicaTimeout": .integer(Int64(storageClass.parameters["staleReplicaTimeout"] ?? "30") ?? 30)],
            ])
        } catch let error as KubeAPIError where error.reason == .alreadyExists {}
        _ = try? await client.patch(.longhornVolumes, named: name, in: Self.longhornNamespace,
                                    .merge(["status": ["state": "detached", "robustness": "unknown"]]), subresource: "status")
        var spec: JSON = [
            "capacity": ["storage": .string(size)],
            "accessModes": .array(claim.accessModes.map { .string($0) }),
            "persistentVolumeReclaimPolicy": .string(storageClass.reclaimPolicy),
            "storageClassName": .string(className),
            "volumeMode": .string(claim.volumeMode ?? "Filesystem"),
            "claimRef": ["apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": .string(namespace),
                         "name": .string(claim.name), "uid": .string(claim.uid)],
            "csi": ["driver": .string(Self.driver), "volumeHandle": .string(name), "fsType": .string(storageClass.parameters["fsType"] ?? "ext4"),
                    "volumeAttributes": .object(volumeAttributes(storageClass, volume: name))],
        ]
        // `lab.repave/publish: read-only`: the node plugin publishes the volume read-only, so
        // every write to it fails with EROFS. `csi.readOnly` alone is not enough: it is what the
        // attacher passes to ControllerPublishVolume, and the kubelet (1.20 here) sends
        // NodePublishVolume `readonly` only for a pod volume marked readOnly (the csi plugin
        // logged `ro=false` for such a PV); the volume attribute reaches NodePublishVolume as
        // its volume context, which scripts/lab-node/csi.go honours.
        if annotation("publish", knobs) == "read-only" {
            spec["csi"]?["readOnly"] = true
            spec["csi"]?["volumeAttributes"]?["lab.repave/publish"] = "read-only"
        }
        if let selectedNode {
            spec["nodeAffinity"] = ["required": ["nodeSelectorTerms": [["matchExpressions": [
                ["key": "kubernetes.io/hostname", "operator": "In", "values": [.string(selectedNode)]],
            ]]]]]
        }
        try await client.create(.persistentVolumes, [
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": ["name": .string(name), "annotations": ["pv.kubernetes.io/provisioned-by": .string(Self.driver)]],
            "spec": spec,
        ])
        logger.info("provisioned", metadata: ["claim": "\(namespace)/\(claim.name)", "pv": "\(name)", "replicas": "\(replicas)"])
    }

    /// The class's parameters, as Longhorn's provisioner passes them, and on a real node the
    /// directory that holds the volume's bytes (the CSI plugin serves `<volume dir>/<name>`).
    private func volumeAttributes(_ storageClass: StorageClass, volume name: String) -> [String: JSON] {
        var attributes = storageClass.parameters.mapValues { JSON.string($0) }
        if let dir = settings.volumeDir { attributes["lab.repave/directory"] = .string(dir + "/" + name) }
        return attributes
    }

    // MARK: Longhorn CSI attacher (real node)

    /// The external-attacher's job for Longhorn: a VolumeAttachment for our driver is attached
    /// (the CSI node plugin bind-mounts a directory, so there is nothing to do but say so).
    private func attachIfNeeded(_ attachment: JSON) async throws {
        let meta = ObjectMeta(attachment["metadata"] ?? [:])
        guard attachment[path: "spec", "attacher"]?.stringValue == Self.driver, !meta.isTerminating,
              attachment[path: "status", "attached"]?.boolValue != true, claimAction("attach/\(meta.uid)")
        else { return }
        try await client.patch(.volumeAttachments, named: meta.name, .merge(["status": ["attached": true]]), subresource: "status")
        logger.info("attached", metadata: ["volumeattachment": "\(meta.name)",
                                           "pv": "\(attachment[path: "spec", "source", "persistentVolumeName"]?.stringValue ?? "")"])
    }

    /// A Released PV of ours with reclaim policy Delete: the provisioner deletes the backing
    /// volume and then the PV. Retain PVs are left alone.
    private func reclaimIfReleased(_ volume: PersistentVolume, longhorn: [String: LonghornVolume]) async throws {
        guard volume.phase == "Released", volume.reclaimPolicy == "Delete", volume.csiDriver == Self.driver,
              volume.metadata.annotations["pv.kubernetes.io/provisioned-by"] == Self.driver,
              !volume.metadata.isTerminating, claimAction("reclaim/\(volume.uid)")
        else { return }
        if let backing = longhorn[volume.volumeHandle ?? volume.name] {
            do {
                try await client.delete(.longhornVolumes, named: backing.name, in: Self.longhornNamespace, uid: backing.uid)
            } catch let error as KubeAPIError where error.reason == .notFound {}
        }
        try await client.delete(.persistentVolumes, named: volume.name, uid: volume.uid)
        // On a real node the bytes go too, as Longhorn deletes the volume's replicas. Only a direct
        // child of the volume directory named after the volume; a Retain PV never gets here.
        if let dir = settings.volumeDir, let handle = volume.volumeHandle, !handle.isEmpty, !handle.contains("/"), !handle.hasPrefix(".") {
            try? FileManager.default.removeItem(atPath: dir + "/" + handle)
        }
        logger.info("reclaimed", metadata: ["pv": "\(volume.name)"])
    }
}

extension ResourceType {
    static let volumeAttachments = ResourceType(group: "storage.k8s.io", version: "v1", plural: "volumeattachments", kind: "VolumeAttachment", namespaced: false)
    static let csiDrivers = ResourceType(group: "storage.k8s.io", version: "v1", plural: "csidrivers", kind: "CSIDriver", namespaced: false)
}

func timestamp() -> String {
    Date().formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: false).timeSeparator(.colon).timeZone(separator: .omitted))
        .replacingOccurrences(of: "+0000", with: "Z")
}

/// `5s`, `500ms`, `2m`, `1h` (the lab's knobs), nil when malformed.
func parseDuration(_ text: String) -> Duration? {
    let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
    for (suffix, seconds) in units where text.hasSuffix(suffix) {
        guard let value = Double(text.dropLast(suffix.count)), value >= 0 else { return nil }
        return .milliseconds(Int64(value * seconds * 1000))
    }
    return nil
}

/// A quantity in bytes for Longhorn's `spec.size` (binary suffixes; plain numbers are bytes).
func bytes(_ quantity: String) -> Int64 {
    let units: [(String, Int64)] = [("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("Ti", 1 << 40), ("k", 1000), ("M", 1_000_000), ("G", 1_000_000_000)]
    for (suffix, factor) in units where quantity.hasSuffix(suffix) {
        return (Int64(quantity.dropLast(suffix.count)) ?? 0) * factor
    }
    return Int64(quantity) ?? 0
}
