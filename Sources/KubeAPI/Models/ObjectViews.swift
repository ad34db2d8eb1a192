import Foundation

/// A typed view over a raw object: the fields Repave reasons about, read from the JSON tree that
/// stays whole underneath (so saving or re-creating the object loses nothing).
public protocol ObjectView: Sendable {
    var raw: JSON { get }
    init(_ raw: JSON)
}

extension ObjectView {
    public var metadata: ObjectMeta { ObjectMeta(raw["metadata"] ?? [:]) }
    public var name: String { metadata.name }
    public var namespace: String? { metadata.namespace }
    public var uid: String { metadata.uid }
    public var resourceVersion: String { metadata.resourceVersion }
}

public struct ObjectMeta: Sendable {
    public let raw: JSON
    public init(_ raw: JSON) { self.raw = raw }

    public var name: String { raw["name"]?.stringValue ?? "" }
    public var namespace: String? { raw["namespace"]?.stringValue }
    public var uid: String { raw["uid"]?.stringValue ?? "" }
    public var resourceVersion: String { raw["resourceVersion"]?.stringValue ?? "" }
    public var generation: Int64 { raw["generation"]?.intValue ?? 0 }
    public var labels: [String: String] { stringMap(raw["labels"]) }
    public var annotations: [String: String] { stringMap(raw["annotations"]) }
    public var finalizers: [String] { raw["finalizers"]?.arrayValue?.compactMap(\.stringValue) ?? [] }
    public var deletionTimestamp: String? { raw["deletionTimestamp"]?.stringValue }
    public var isTerminating: Bool { deletionTimestamp != nil }
    public var ownerReferences: [OwnerReference] {
        (raw["ownerReferences"]?.arrayValue ?? []).map {
            OwnerReference(kind: $0["kind"]?.stringValue ?? "", name: $0["name"]?.stringValue ?? "",
                           uid: $0["uid"]?.stringValue ?? "", controller: $0["controller"]?.boolValue ?? false)
        }
    }
    /// The owner that controls this object (a Pod's ReplicaSet, a ReplicaSet's Deployment).
    public var controller: OwnerReference? { ownerReferences.first { $0.controller } }
}

public struct OwnerReference: Sendable, Equatable {
    public var kind: String
    public var name: String
    public var uid: String
    public var controller: Bool
}

func stringMap(_ json: JSON?) -> [String: String] {
    (json?.objectValue ?? [:]).compactMapValues(\.stringValue)
}

public struct Condition: Sendable, Equatable {
    public var type: String
    public var status: String
    public var reason: String
    public var message: String
}

extension Condition {
    /// The `status.conditions` of any object.
    public static func of(_ object: JSON?) -> [Condition] {
        parseConditions(object?[path: "status", "conditions"])
    }
}

func parseConditions(_ json: JSON?) -> [Condition] {
    (json?.arrayValue ?? []).map {
        Condition(type: $0["type"]?.stringValue ?? "", status: $0["status"]?.stringValue ?? "",
                  reason: $0["reason"]?.stringValue ?? "", message: $0["message"]?.stringValue ?? "")
    }
}

public struct Namespace: ObjectView {
    public let raw: JSON
    public init(_ raw: JSON) { self.raw = raw }
    public var phase: String { raw[path: "status", "phase"]?.stringValue ?? "" }
}

public struct Node: ObjectView {
    public let raw: JSON
    public init(_ raw: JSON) { self.raw = raw }
    public var isReady: Bool { parseConditions(raw[path: "status", "conditions"]).contains { $0.type == "Ready" && $0.status == "True" } }
    public var taintKeys: [String] { (raw[path: "spec", "taints"]?.arrayValue ?? []).compactMap { $0["key"]?.stringValue } }
}

public struct Pod: ObjectView {
    public let raw: JSON
    public init(_ raw: JSON) { self.raw = raw }
    public var nodeName: String? { raw[path: "spec", "nodeName"]?.stringValue }
    public var phase: String { raw[path: "status", "phase"]?.stringValue ?? "" }
    /// The claims this pod mounts (`spec.volumes[].persistentVolumeClaim.claimName`).
    public var claimNames: [String] {
        (raw[path: "spec", "volumes"]?.arrayValue ?? []).compactMap { $0[path: "persistentVolumeClaim", "claimName"]?.stringValue }
    }
    public var isReady: Bool { parseConditions(raw[path: "status", "conditions"]).contains { $0.type == "Ready" && $0.status == "True" } }
    public var conditions: [Condition] { parseConditions(raw[path: "status", "conditions"]) }
}

public struct Deployment: ObjectView {
    public let raw: JSON
    public init(_ raw: JSON) { self.raw = raw }
    /// `spec.replicas`, which the API defaults to 1 when omitted.
    public var replicas: Int { Int(raw[path: "spec", "replicas"]?.intValue ?? 1) }
    public var selector: [String: String] { stringMap(raw[path: "spec", "selector", "matchLabels"]) }
    public var templateClaimNames: [String] {
        (raw[path: "spec", "template", "spec", "volumes"]?.arrayValue ?? []).compactMap { $0[path: "persistentVolumeClaim", "claimName"]?.stringValue }
    }
    public var observedGeneration: Int64 { raw[path: "status", "observedGeneration"]?.intValue ?? 0 }
    public var statusReplicas: Int { Int(raw[path: "status", "replicas"]?.intValue ?? 0) }
    public var updatedReplicas: Int { Int(raw[path: "status", "updatedReplicas"]?.intValue ?? 0) }
    public var readyReplicas: Int { Int(raw[path: "status", "readyReplicas"]?.intValue ?? 0) }
    public var availableReplicas: Int { Int(raw[path: "status", "availableReplicas"]?.intValue ?? 0) }
    public var conditions: [Condition] { parseConditions(raw[path: "status", "conditions"]) }

    /// `kubectl rollout status`'s verdict.
    public enum RolloutState: Sendable, Equatable {
        case complete
        case progressing(String)
        case failed(String)
    }

    public var rolloutState: RolloutState {
        guard metadata.generation <= observedGeneration else { return .progressing("waiting for the deployment spec update to be observed") }
        if let progressing = conditions.first(where: { $0.type == "Progressing" }), progressing.reason == "ProgressDeadlineExceeded" {
            return .failed("deployment \(name) exceeded its progress deadline: \(progressing.message)")
        }
        if updatedReplicas < replicas { return .progressing("\(updatedReplicas) of \(replicas) updated replicas are available") }
        if statusReplicas > updatedReplicas { return .progressing("\(statusReplicas - updatedReplicas) old replicas are pending termination") }
        if availableReplicas < updatedReplicas { return .progressing("\(availableReplicas) of \(updatedReplicas) updated replicas are available") }
        return .complete
    }
}

public struct StatefulSet: ObjectView {
    public let raw: JSON
    public init(_ raw: JSON) { self.raw = raw }
    public var replicas: Int { Int(raw[path: "spec", "replicas"]?.intValue ?? 1) }
    public var selector: [String: String] { stringMap(raw[path: "spec", "selector", "matchLabels"]) }
    public var observedGeneration: Int64 { raw[path: "status", "observedGeneration"]?.intValue ?? 0 }
    public var readyReplicas: Int { Int(raw[path: "status", "readyReplicas"]?.intValue ?? 0) }
    public var currentRevision: String { raw[path: "status", "currentRevision"]?.stringValue ?? "" }
    public var updateRevision: String { raw[path: "status", "updateRevision"]?.stringValue ?? "" }
    /// The claim templates' names: pods mount `<template>-<set>-<ordinal>`.
    public var claimTemplateNames: [String] {
        (raw[path: "spec", "volumeClaimTemplates"]?.arrayValue ?? []).compactMap { $0[path: "metadata", "name"]?.stringValue }
    }
}

/// `autoscaling/v1` Scale: a missing `spec.replicas` means 0 (the server omits zero).
public struct Scale: ObjectView {
    public let raw: JSON
    public init(_ raw: JSON) { self.raw = raw }
    public var specReplicas: Int { Int(raw[path: "spec", "replicas"]?.intValue ?? 0) }
    public var statusReplicas: Int { Int(raw[path: "status", "replicas"]?.intValue ?? 0) }
    public var selector: String { raw[path: "status", "selector"]?.stringValue ?? "" }
}

public struct PersistentVolumeClaim: ObjectView {
    public let raw: JSON
    public init(_ raw: JSON) { self.raw = raw }
    public var phase: String { raw[path: "status", "phase"]?.stringValue ?? "" }
    public var volumeName: String? { raw[path: "spec", "volumeName"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } }
    public var storageClassName: String? { raw[path: "spec", "storageClassName"]?.stringValue }
    public var requestedStorage: String? { raw[path: "spec", "resources", "requests", "storage"]?.stringValue }
    public var accessModes: [String] { raw[path: "spec", "accessModes"]?.arrayValue?.compactMap(\.stringValue) ?? [] }
    public var volumeMode: String? { raw[path: "spec", "volumeMode"]?.stringValue }
    public var capacity: String? { raw[path: "status", "capacity", "storage"]?.stringValue }
    public var isBound: Bool { phase == "Bound" }
}

public struct PersistentVolume: ObjectView {
    public let raw: JSON
    public init(_ raw: JSON) { self.raw = raw }
    public var phase: String { raw[path: "status", "phase"]?.stringValue ?? "" }
    public var reclaimPolicy: String { raw[path: "spec", "persistentVolumeReclaimPolicy"]?.stringValue ?? "" }
    public var storageClassName: String? { raw[path: "spec", "storageClassName"]?.stringValue }
    public var capacity: String? { raw[path: "spec", "capacity", "storage"]?.stringValue }
    public var claimRef: (namespace: String, name: String, uid: String)? {
        guard let ref = raw[path: "spec", "claimRef"], let name = ref["name"]?.stringValue else { return nil }
        return (ref["namespace"]?.stringValue ?? "", name, ref["uid"]?.stringValue ?? "")
    }
    public var csiDriver: String? { raw[path: "spec", "csi", "driver"]?.stringValue }
    public var volumeHandle: String? { raw[path: "spec", "csi", "volumeHandle"]?.stringValue }
}

public struct StorageClass: ObjectView {
    public let raw: JSON
    public init(_ raw: JSON) { self.raw = raw }
    public var provisioner: String { raw["provisioner"]?.stringValue ?? "" }
    public var parameters: [String: String] { stringMap(raw["parameters"]) }
    /// Defaults to Delete, as the API does.
    public var reclaimPolicy: String { raw["reclaimPolicy"]?.stringValue ?? "Delete" }
    /// Defaults to Immediate, as the API does.
    public var volumeBindingMode: String { raw["volumeBindingMode"]?.stringValue ?? "Immediate" }
    public var allowVolumeExpansion: Bool { raw["allowVolumeExpansion"]?.boolValue ?? false }
}

public struct Lease: ObjectView {
    public let raw: JSON
    public init(_ raw: JSON) { self.raw = raw }
    public var holderIdentity: String? { raw[path: "spec", "holderIdentity"]?.stringValue }
    public var leaseDurationSeconds: Int { Int(raw[path: "spec", "leaseDurationSeconds"]?.intValue ?? 0) }
    public var renewTime: String? { raw[path: "spec", "renewTime"]?.stringValue }
    public var acquireTime: String? { raw[path: "spec", "acquireTime"]?.stringValue }
}

/// Longhorn's `volumes.longhorn.io/v1beta2` Volume.
public struct LonghornVolume: ObjectView {
    public let raw: JSON
    public init(_ raw: JSON) { self.raw = raw }
    public var numberOfReplicas: Int { Int(raw[path: "spec", "numberOfReplicas"]?.intValue ?? 0) }
    public var size: String? { raw[path: "spec", "size"]?.stringValue }
    /// `attached` or `detached` (and transitional states).
    public var state: String { raw[path: "status", "state"]?.stringValue ?? "" }
    /// `healthy`, `degraded`, `faulted` or `unknown` (while detached).
    public var robustness: String { raw[path: "status", "robustness"]?.stringValue ?? "" }
    /// The node the volume is attached to, empty while detached.
    public var currentNodeID: String { raw[path: "status", "currentNodeID"]?.stringValue ?? "" }
    /// `enabled`, `disabled`, or `ignored`/empty (Longhorn's `offline-replica-rebuilding` setting decides).
    public var offlineRebuilding: String { raw[path: "spec", "offlineRebuilding"]?.stringValue ?? "" }
    public var conditions: [Condition] { Condition.of(raw) }
    /// The `Scheduled` condition: false with reason `ReplicaSchedulingFailure` when Longhorn cannot place a replica.
    public var scheduled: Condition? { conditions.first { $0.type == "Scheduled" } }
}

/// Longhorn's `replicas.longhorn.io/v1beta2` Replica: one copy of a volume's data on one node.
public struct LonghornReplica: ObjectView {
    public let raw: JSON
    public init(_ raw: JSON) { self.raw = raw }
    public var volumeName: String { raw[path: "spec", "volumeName"]?.stringValue ?? metadata.labels["longhornvolume"] ?? "" }
    public var nodeID: String { raw[path: "spec", "nodeID"]?.stringValue ?? "" }
    /// Set when the replica first becomes RW (after its rebuild); empty while it is rebuilt.
    public var healthyAt: String { raw[path: "spec", "healthyAt"]?.stringValue ?? "" }
    /// Set when the replica failed; empty for a live one.
    public var failedAt: String { raw[path: "spec", "failedAt"]?.stringValue ?? "" }
    /// `running` while the volume is attached, `stopped` otherwise.
    public var currentState: String { raw[path: "status", "currentState"]?.stringValue ?? "" }
    /// Rebuilt, not failed since, and on a node: it holds a full copy.
    public var isHealthy: Bool { failedAt.isEmpty && !healthyAt.isEmpty && !nodeID.isEmpty }
    /// Healthy as Longhorn counts it for a volume: ``isHealthy``, and running while the volume
    /// is attached (a detached volume's replicas are stopped). The one rule for replicas' waits
    /// and reports.
    public func isHealthy(attached: Bool) -> Bool { isHealthy && (!attached || currentState == "running") }
    /// Being rebuilt: not yet healthy, not failed.
    public var isRebuilding: Bool { failedAt.isEmpty && healthyAt.isEmpty && !metadata.isTerminating }
    /// `tcp://ip:port`, as its engine's `rebuildStatus` names it (nil until it has an address).
    public var address: String? {
        guard let ip = raw[path: "status", "ip"]?.stringValue, !ip.isEmpty, let port = raw[path: "status", "port"]?.intValue else { return nil }
        return "tcp://\(ip):\(port)"
    }
}

/// Longhorn's `engines.longhorn.io/v1beta2` Engine: the replicas a volume writes to and their rebuilds.
public struct LonghornEngine: ObjectView {
    public let raw: JSON
    public init(_ raw: JSON) { self.raw = raw }
    /// Replica name → `RW`, or `WO` while it is rebuilt.
    public var replicaModes: [String: String] { stringMap(raw[path: "status", "replicaModeMap"]) }
    /// A rebuild's progress (0–100) by the replica's address, while it is rebuilt.
    public func rebuildProgress(of address: String) -> Int? {
        guard let status = raw[path: "status", "rebuildStatus"]?[address], status["isRebuilding"]?.boolValue == true else { return nil }
        return status["progress"]?.intValue.map { Int($0) }
    }
}

/// Longhorn's `nodes.longhorn.io/v1beta2` Node.
public struct LonghornNode: ObjectView {
    public let raw: JSON
    public init(_ raw: JSON) { self.raw = raw }
    public var allowScheduling: Bool { raw[path: "spec", "allowScheduling"]?.boolValue ?? true }
    /// Replicas may be placed here: scheduling allowed, and neither `Ready` nor `Schedulable` is false.
    public var isSchedulable: Bool {
        allowScheduling && !Condition.of(raw).contains { ["Ready", "Schedulable"].contains($0.type) && $0.status != "True" }
    }
}

/// Longhorn's `settings.longhorn.io/v1beta2` Setting: a name and a string `value`.
public struct LonghornSetting: ObjectView {
    public let raw: JSON
    public init(_ raw: JSON) { self.raw = raw }
    public var value: String { raw["value"]?.stringValue ?? "" }
}

public struct SelfSubjectAccessReview: ObjectView {
    public let raw: JSON
    public init(_ raw: JSON) { self.raw = raw }
    public var allowed: Bool { raw[path: "status", "allowed"]?.boolValue ?? false }
    public var denied: Bool { raw[path: "status", "denied"]?.boolValue ?? false }
    public var reason: String { raw[path: "status", "reason"]?.stringValue ?? "" }
}
