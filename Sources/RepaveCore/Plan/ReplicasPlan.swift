import Foundation
import Logging

/// A replicas plan (`apiVersion: repave/v1`, `kind: Plan`, `strategy: replicas`) parsed and
/// validated, with every default explicit: raise (or lower) a Longhorn volume's
/// `spec.numberOfReplicas` in place, with no scale-down and no copy. Encodes to the canonical
/// JSON whose SHA-256 is the plan digest (``CanonicalPlan``).
public struct ReplicasPlan: Sendable, Codable, Equatable, CanonicalPlan {
    public struct Target: Sendable, Codable, Equatable {
        public var namespace: String
        public var claim: String
    }

    /// What to do when the volume is detached and Longhorn would not rebuild it offline.
    public enum WhenDetached: String, Sendable, Codable, CaseIterable {
        /// Refuse in the preflight, saying what to do.
        case refuse
        /// Patch the count anyway and wait (within `timeouts.rebuild`) for the next attach.
        case wait
    }

    public struct Timeouts: Sendable, Codable, Equatable {
        public var rebuild = PlanDuration(minutes: 120)
    }

    public typealias LonghornCheck = RecreatePlan.LonghornCheck

    public var apiVersion = "repave/v1"
    public var kind = "Plan"
    public var strategy = PlanStrategy.replicas
    public var name: String
    /// kube context; nil means the kubeconfig's current-context.
    public var context: String?
    public var target: Target
    /// The volume's `spec.numberOfReplicas` after the run.
    public var replicas: Int
    public var whenDetached: WhenDetached
    /// Optional: nothing stops, so the run may start at any time when there is none.
    public var window: PlanWindow?
    public var timeouts: Timeouts
    /// `verify.longhorn`: its replicas (healthy, on distinct nodes) default to `replicas`.
    public var verify: LonghornCheck
}

extension ReplicasPlan {
    /// Reads and validates a replicas plan file (see ``PlanFile/load(contentsOf:windowStart:logger:)``).
    public static func load(contentsOf path: String, logger: Logger = Logger(label: "repave")) throws(PlanError) -> ReplicasPlan {
        try PlanSections.load(contentsOf: path, logger: logger, parse: parse)
    }

    public static func parse(_ data: Data, file: String) throws(PlanError) -> ReplicasPlan {
        let root = try PlanReader.parse(data, file: file)
        let (strategy, named) = try PlanStrategy.read(root)
        guard strategy == .replicas else {
            throw (named ?? root).fail("strategy '\(strategy.rawValue)' is not a replicas plan", hint: "load it with PlanFile.load, which reads every strategy")
        }
        let top = try root.mapping(PlanStrategy.keys(of: .replicas), elsewhere: PlanStrategy.owners(outside: .replicas))
        let name = try PlanSections.planName(top, in: root)
        let context = try PlanSections.context(top)

        let targetReader = try PlanSections.required(top, "target", in: root)
        let targetMap = try targetReader.mapping(["namespace", "claim"], elsewhere: ["workloads": "strategies recreate and migrate, not replicas (nothing is scaled)"])
        let target = Target(namespace: try PlanSections.dnsLabel(try PlanSections.required(targetMap, "namespace", in: targetReader)),
                            claim: try PlanSections.dnsSubdomain(try PlanSections.required(targetMap, "claim", in: targetReader)))

        let replicasReader = try PlanSections.required(top, "replicas", in: root)
        let replicas = try replicasReader.int(in: 1...10)
        let whenDetached = WhenDetached(rawValue: try PlanSections.oneOf(top["whenDetached"], WhenDetached.allCases.map(\.rawValue), default: "refuse"))!
        let window = try PlanSections.window(top)

        var timeouts = Timeouts()
        if let reader = top["timeouts"], !reader.isNull {
            let fields = try reader.mapping(["rebuild"])
            if let value = fields["rebuild"] { timeouts.rebuild = try PlanSections.duration(value) }
        }

        let verify = try PlanSections.longhornCheck(top, replicas: replicas)
        if verify.replicas > replicas, let reader = top["verify"] {
            throw reader.fail("verify.longhorn.replicas \(verify.replicas) is more than the \(replicas) replicas the plan asks for: the run could never verify",
                              hint: "leave verify.longhorn.replicas out (it defaults to replicas), or lower it")
        }
        return ReplicasPlan(name: name, context: context, target: target, replicas: replicas, whenDetached: whenDetached,
                            window: window, timeouts: timeouts, verify: verify)
    }
}
