import Foundation

/// A recreate plan (`apiVersion: repave/v1`, `kind: Plan`, `strategy: recreate`, or the first
/// spelling `kind: RecreatePlan`) parsed and validated, with every default explicit. Encodes to
/// the canonical JSON whose SHA-256 is the plan digest: both spellings give the same one.
public struct RecreatePlan: Sendable, Codable, Equatable, CanonicalPlan {
    public struct Workload: Sendable, Codable, Equatable {
        public enum Kind: String, Sendable, Codable, CaseIterable {
            case deployment = "Deployment"
            case statefulSet = "StatefulSet"
        }
        public var kind: Kind
        public var name: String

        public init(kind: Kind, name: String) {
            self.kind = kind
            self.name = name
        }
    }

    public struct Target: Sendable, Codable, Equatable {
        public var namespace: String
        public var claim: String
        /// Empty: discovered from the pods that mount the claim.
        public var workloads: [Workload]
    }

    public enum Reconciler: String, Sendable, Codable, CaseIterable {
        case coder, argocd, flux, hpa
    }

    public struct StorageClassSpec: Sendable, Codable, Equatable {
        public var name: String
        /// Create the class when absent; when present it must match (parameters are immutable).
        public var ensure: Bool
        public var provisioner: String
        public var parameters: [String: String]
        public var reclaimPolicy: String
        public var volumeBindingMode: String
        public var allowVolumeExpansion: Bool
    }

    public enum OldVolumePolicy: String, Sendable, Codable, CaseIterable {
        case retainUntilVerified = "retain-until-verified"
        case delete
    }

    public struct GitPreflight: Sendable, Codable, Equatable {
        /// Local paths scanned for repositories.
        public var paths: [String]
        /// A `repave git-check --report` file made where the data lives.
        public var report: String?
        public var maxReportAge: PlanDuration
        public var require: [GitRule]
        public var ignore: [String]
    }

    public typealias Window = PlanWindow

    public struct Timeouts: Sendable, Codable, Equatable {
        public var scaleDown = PlanDuration(minutes: 5)
        public var claimDeletion = PlanDuration(minutes: 5)
        public var bind = PlanDuration(minutes: 5)
        public var rollout = PlanDuration(minutes: 10)
        public var verify = PlanDuration(minutes: 10)
    }

    public struct LonghornCheck: Sendable, Codable, Equatable {
        public var namespace = "longhorn-system"
        public var replicas: Int
        public var robustness = "healthy"
    }

    public var apiVersion = "repave/v1"
    public var kind = "Plan"
    public var strategy = PlanStrategy.recreate
    public var name: String
    /// kube context; nil means the kubeconfig's current-context.
    public var context: String?
    public var target: Target
    public var acknowledge: [Reconciler]
    public var storageClass: StorageClassSpec
    public var oldVolume: OldVolumePolicy
    public var gitPreflight: GitPreflight?
    public var window: Window?
    public var timeouts: Timeouts
    public var verify: LonghornCheck
}

/// A parsed plan of any strategy: its canonical JSON and digest.
public protocol CanonicalPlan: Encodable {}

extension CanonicalPlan {
    /// Canonical JSON: sorted keys, no insignificant whitespace, dates in RFC 3339 UTC.
    public func canonicalJSON() -> Data { PlanSections.canonicalJSON(self) }

    /// SHA-256 of the canonical JSON, lowercase hex: comments and formatting do not change it.
    public var digest: String { SHA256.hex(of: canonicalJSON()) }
}

/// A maintenance window: changes start only inside it (see ``WindowCheck``).
public struct PlanWindow: Sendable, Codable, Equatable {
    public var start: Date
    public var duration: PlanDuration

    public init(start: Date, duration: PlanDuration) {
        self.start = start
        self.duration = duration
    }

    public var end: Date { start.addingTimeInterval(duration.seconds) }
}

/// A plan duration (`90s`, `5m`, `1h30m`, `250ms`), held in whole milliseconds and written back
/// exactly (so the plan digest changes whenever the duration does).
public struct PlanDuration: Sendable, Codable, Equatable, CustomStringConvertible {
    public let milliseconds: Int64
    /// No plan waits longer than a week.
    public static let maximum: Int64 = 7 * 24 * 3600 * 1000

    public var seconds: Double { Double(milliseconds) / 1000 }

    public init(seconds: Double) { milliseconds = Int64((seconds * 1000).rounded()) }
    public init(minutes: Double) { self.init(seconds: minutes * 60) }
    /// A measured interval for people to read ("opens in 2h3m5s"): rounded to whole seconds.
    public static func rounded(seconds: Double) -> PlanDuration { PlanDuration(seconds: max(0, seconds).rounded()) }

    /// Go-style: one or more number+unit pairs, units h, m, s, ms; whole milliseconds, at most a week.
    public init?(parsing text: String) {
        var rest = Substring(text)
        var total = 0.0
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, number.count <= 12, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { $0.isLetter }
            rest = rest.dropFirst(unit.count)
            switch unit {
            case "h": total += value * 3_600_000
            case "m": total += value * 60_000
            case "s": total += value * 1000
            case "ms": total += value
            default: return nil
            }
        }
        guard total <= Double(Self.maximum), total == total.rounded() else { return nil }
        milliseconds = Int64(total)
    }

    public var duration: Duration { .milliseconds(milliseconds) }

    public var description: String {
        guard milliseconds % 1000 == 0 else { return "\(milliseconds)ms" }
        var remaining = milliseconds / 1000
        guard remaining > 0 else { return "0s" }
        var text = ""
        if remaining >= 3600 { text += "\(remaining / 3600)h"; remaining %= 3600 }
        if remaining >= 60 { text += "\(remaining / 60)m"; remaining %= 60 }
        if remaining > 0 { text += "\(remaining)s" }
        return text
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let parsed = PlanDuration(parsing: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a duration: \(text)"))
        }
        self = parsed
    }
}
