import Foundation
import KubeAPI

/// The journal's first record: what this run is bound to. `resume` refuses when the plan, the
/// cluster or a recorded uid no longer matches (unless an explicit, journaled override).
///
/// Schema 2 adds `strategy`; a schema-1 header (written before strategies existed) has none and
/// means `recreate`.
public struct RunHeader: Codable, Sendable, Equatable {
    public static let schema = 2

    public struct Cluster: Codable, Sendable, Equatable {
        public var server: String
        /// The `kube-system` namespace's uid: the same URL pointing at a rebuilt cluster differs.
        public var kubeSystemUID: String

        public init(server: String, kubeSystemUID: String) {
            self.server = server
            self.kubeSystemUID = kubeSystemUID
        }
    }

    public var schema: Int
    public var tool: String
    /// The plan's strategy (`recreate`); nil in a schema-1 header.
    public var strategy: String?
    public var plan: String
    public var planDigest: String
    public var cluster: Cluster
    /// `kind/namespace/name` → uid of the objects the run acts on, as found at the start.
    public var targets: [String: String]
    public var tlsVerified: Bool

    public init(strategy: String, plan: String, planDigest: String, cluster: Cluster, targets: [String: String], tlsVerified: Bool) {
        schema = Self.schema
        tool = RepaveVersion.current
        self.strategy = strategy
        self.plan = plan
        self.planDigest = planDigest
        self.cluster = cluster
        self.targets = targets
        self.tlsVerified = tlsVerified
    }

    /// The `targets` key of a run's claim.
    public static func claimTarget(namespace: String, claim: String) -> String { "persistentvolumeclaim/\(namespace)/\(claim)" }

    /// The cluster a client talks to, as the header records it.
    public static func identify(_ client: KubeClient) async throws -> Cluster {
        let namespace = Namespace(try await client.get(.namespaces, named: "kube-system"))
        return Cluster(server: client.connection.server, kubeSystemUID: namespace.uid)
    }

    /// Why `current` (what resume sees now) does not match this header; empty when it does.
    public func mismatches(_ current: RunHeader) -> [String] {
        var problems: [String] = []
        if current.planDigest != planDigest { problems.append("the plan changed (digest \(planDigest.prefix(12)) at the start, \(current.planDigest.prefix(12)) now)") }
        if current.cluster.server != cluster.server { problems.append("the server changed (\(cluster.server) at the start, \(current.cluster.server) now)") }
        if current.cluster.kubeSystemUID != cluster.kubeSystemUID { problems.append("this is another cluster (kube-system uid \(cluster.kubeSystemUID) at the start, \(current.cluster.kubeSystemUID) now)") }
        for (target, uid) in targets.sorted(by: { $0.key < $1.key }) where current.targets[target] != nil && current.targets[target] != uid {
            problems.append("\(target) is another object now (uid \(uid) at the start, \(current.targets[target]!) now)")
        }
        return problems
    }
}

/// The maintenance window's verdict for starting (or continuing with) a change.
public enum WindowCheck: Equatable, Sendable {
    case inside
    case notYetOpen(opensIn: TimeInterval)
    case closed(closedFor: TimeInterval)
    /// Open, but shorter than the remaining steps may take.
    case tooShort(left: TimeInterval, needed: TimeInterval)

    public static func evaluate(_ window: PlanWindow?, now: Date = Date(), remaining: TimeInterval) -> WindowCheck {
        guard let window else { return .inside }
        if now < window.start { return .notYetOpen(opensIn: window.start.timeIntervalSince(now)) }
        if now >= window.end { return .closed(closedFor: now.timeIntervalSince(window.end)) }
        let left = window.end.timeIntervalSince(now)
        return left < remaining ? .tooShort(left: left, needed: remaining) : .inside
    }

    public var explanation: String? {
        switch self {
        case .inside: nil
        case .notYetOpen(let seconds): "the maintenance window opens in \(PlanDuration.rounded(seconds: seconds))"
        case .closed(let seconds): "the maintenance window closed \(PlanDuration.rounded(seconds: seconds)) ago"
        case .tooShort(let left, let needed): "the window has \(PlanDuration.rounded(seconds: left)) left and the remaining steps may take up to \(PlanDuration.rounded(seconds: needed)) (their timeouts)"
        }
    }
}
