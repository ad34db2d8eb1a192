import Foundation
import KubeAPI

/// The few fields `repave audit` reads of each object, decoded straight from the API server's
/// list pages (``KubeClient/forEachPage(_:as:in:labelSelector:pageSize:_:)``): an audit of
/// thousands of claims never builds whole objects. Every field is optional, as the API omits
/// empty ones.
public enum AuditRecord {
    public struct Meta: Decodable, Sendable, Equatable {
        public var name: String
        public var namespace: String?
        public var uid: String?
        public var labels: [String: String]?
        public var annotations: [String: String]?
        public var ownerReferences: [Owner]?

        public init(name: String, namespace: String? = nil, uid: String? = nil, labels: [String: String]? = nil,
                    annotations: [String: String]? = nil, ownerReferences: [Owner]? = nil) {
            self.name = name
            self.namespace = namespace
            self.uid = uid
            self.labels = labels
            self.annotations = annotations
            self.ownerReferences = ownerReferences
        }
    }

    public struct Owner: Decodable, Sendable, Equatable {
        public var kind: String
        public var name: String
        public var controller: Bool?
    }

    /// A PersistentVolumeClaim: class, volume, phase.
    public struct Claim: Decodable, Sendable, Equatable {
        public struct Spec: Decodable, Sendable, Equatable {
            public var storageClassName: String?
            public var volumeName: String?
        }
        public struct Status: Decodable, Sendable, Equatable {
            public var phase: String?
        }
        public var metadata: Meta
        public var spec: Spec?
        public var status: Status?

        public var namespace: String { metadata.namespace ?? "" }
        public var name: String { metadata.name }
        public var phase: String { status?.phase ?? "" }
        public var volumeName: String? { spec?.volumeName.flatMap { $0.isEmpty ? nil : $0 } }
    }

    /// A PersistentVolume: its claim, its CSI volume, its reclaim policy and phase.
    public struct Volume: Decodable, Sendable, Equatable {
        public struct ClaimRef: Decodable, Sendable, Equatable {
            public var namespace: String?
            public var name: String?
            public var uid: String?
        }
        public struct CSI: Decodable, Sendable, Equatable {
            public var driver: String?
            public var volumeHandle: String?
        }
        public struct Spec: Decodable, Sendable, Equatable {
            public var claimRef: ClaimRef?
            public var csi: CSI?
            public var storageClassName: String?
            public var persistentVolumeReclaimPolicy: String?
        }
        public struct Status: Decodable, Sendable, Equatable {
            public var phase: String?
        }
        public var metadata: Meta
        public var spec: Spec?
        public var status: Status?

        public var name: String { metadata.name }
        public var phase: String { status?.phase ?? "" }
        /// The Longhorn volume behind it (`spec.csi.volumeHandle`), when Longhorn's driver serves it.
        public var longhornVolume: String? {
            guard spec?.csi?.driver == Audit.longhornDriver else { return nil }
            return spec?.csi?.volumeHandle ?? name
        }
    }

    /// A StorageClass: its provisioner and parameters (`numberOfReplicas`).
    public struct StorageClass: Decodable, Sendable, Equatable {
        public var metadata: Meta
        public var provisioner: String?
        public var parameters: [String: String]?
        public var reclaimPolicy: String?
        public var volumeBindingMode: String?
        public var allowVolumeExpansion: Bool?

        /// `numberOfReplicas` of a Longhorn class (nil for another provisioner, none given, or
        /// not a whole number: see ``unreadableLonghornReplicas``).
        public var longhornReplicas: Int? {
            guard provisioner == Audit.longhornDriver else { return nil }
            return parameters?["numberOfReplicas"].flatMap { Int($0) }
        }

        /// `numberOfReplicas` of a Longhorn class as written, when it is not a whole number.
        public var unreadableLonghornReplicas: String? {
            guard provisioner == Audit.longhornDriver, let text = parameters?["numberOfReplicas"], Int(text) == nil else { return nil }
            return text
        }
    }

    /// `volumes.longhorn.io`: desired replicas, state, robustness.
    public struct LonghornVolume: Decodable, Sendable, Equatable {
        public struct Spec: Decodable, Sendable, Equatable {
            public var numberOfReplicas: Int?
        }
        public struct Status: Decodable, Sendable, Equatable {
            public var state: String?
            public var robustness: String?
        }
        public var metadata: Meta
        public var spec: Spec?
        public var status: Status?

        public var state: String { status?.state ?? "" }
        public var robustness: String { status?.robustness ?? "" }
    }

    /// `replicas.longhorn.io`: which volume, where, and whether it is healthy.
    public struct Replica: Decodable, Sendable, Equatable {
        public struct Spec: Decodable, Sendable, Equatable {
            public var volumeName: String?
            public var nodeID: String?
            public var healthyAt: String?
            public var failedAt: String?
        }
        public struct Status: Decodable, Sendable, Equatable {
            public var currentState: String?
        }
        public var metadata: Meta
        public var spec: Spec?
        public var status: Status?

        /// `spec.volumeName`, else the `longhornvolume` label Longhorn puts on every replica.
        public var volume: String? { spec?.volumeName.flatMap { $0.isEmpty ? nil : $0 } ?? metadata.labels?["longhornvolume"] }

        /// Healthy as Longhorn counts it: rebuilt once (`healthyAt`), not failed since
        /// (`failedAt` empty), on a node, and running while its volume is attached (a detached
        /// volume's replicas are stopped).
        public func isHealthy(volumeAttached: Bool) -> Bool {
            guard let spec, !(spec.healthyAt ?? "").isEmpty, (spec.failedAt ?? "").isEmpty, !(spec.nodeID ?? "").isEmpty else { return false }
            return !volumeAttached || status?.currentState == "running"
        }
    }

    /// `settings.longhorn.io`: a name and its value.
    public struct Setting: Decodable, Sendable, Equatable {
        public var metadata: Meta
        public var value: String?

        /// A replica count setting's value (`default-replica-count`): a whole number, or, since
        /// Longhorn 1.8, one per data engine (`{"v1":"3","v2":"3"}`), of which the lowest
        /// counts. nil when it is neither.
        public static func replicaCount(_ value: String) -> Int? {
            if let count = Int(value) { return count }
            guard let engines = (try? JSON.decode(Data(value.utf8)))?.objectValue, !engines.isEmpty else { return nil }
            let counts = engines.values.map { $0.stringValue.flatMap { Int($0) } ?? $0.intValue.map { Int($0) } }
            guard counts.allSatisfy({ $0 != nil }) else { return nil }
            return counts.compactMap { $0 }.min()
        }
    }

    /// A pod: which claims it mounts and who controls it.
    public struct Pod: Decodable, Sendable, Equatable {
        public struct ClaimSource: Decodable, Sendable, Equatable {
            public var claimName: String?
        }
        public struct Volume: Decodable, Sendable, Equatable {
            public var persistentVolumeClaim: ClaimSource?
        }
        public struct Spec: Decodable, Sendable, Equatable {
            public var volumes: [Volume]?
        }
        public struct Status: Decodable, Sendable, Equatable {
            public var phase: String?
        }
        public var metadata: Meta
        public var spec: Spec?
        public var status: Status?

        public var claimNames: [String] { (spec?.volumes ?? []).compactMap { $0.persistentVolumeClaim?.claimName } }
        public var controller: Owner? { metadata.ownerReferences?.first { $0.controller == true } }
    }

    /// A ReplicaSet: only who controls it (its Deployment).
    public struct ReplicaSet: Decodable, Sendable, Equatable {
        public var metadata: Meta
    }
}
