import Foundation
import KubeAPI

/// How long a lab Deployment may take to become available. In the first minute of `make test`,
/// dozens of tests create namespaces, claims and Deployments at once on two cores, and the
/// controllers, the scheduler and the lab agent queue behind each other: CI saw a rollout that
/// takes a second on a quiet machine still pending after 30 s.
public let labRolloutTimeout: Duration = .seconds(120)

/// A wait for a lab Deployment that timed out, with what the namespace held then: the
/// Deployment's conditions, its pods, the claims and the latest events, which say which part of
/// the chain (binding, scheduling, the agent or kubelet, readiness) had not happened.
public struct RolloutTimedOut: Error, CustomStringConvertible {
    public let description: String
}

extension KubeClient {
    /// Waits until the Deployment has `replicas` available replicas (and, with `complete`, its
    /// rollout is complete), within ``labRolloutTimeout`` unless told otherwise.
    public func waitAvailable(
        _ deployment: String, in namespace: String, replicas: Int = 1, complete: Bool = false,
        timeout: Duration = labRolloutTimeout, describedAs what: String
    ) async throws {
        do {
            try await wait(for: .deployments, named: deployment, in: namespace, timeout: timeout, describedAs: what) {
                $0.map { Deployment($0).availableReplicas == replicas && (!complete || Deployment($0).rolloutState == .complete) } ?? false
            }
        } catch let timedOut as WaitTimedOut {
            throw RolloutTimedOut(description: "\(timedOut); \(await namespaceState(namespace, deployment: timedOut.lastSeen))")
        }
    }

    /// One entry per object: enough to tell which controller or agent had not acted.
    private func namespaceState(_ namespace: String, deployment: JSON?) async -> String {
        var lines: [String] = []
        if let deployment = deployment.map(Deployment.init) {
            lines.append("deployment \(deployment.name): \(deployment.availableReplicas)/\(deployment.replicas) available; "
                         + deployment.conditions.map { "\($0.type)=\($0.status) \($0.reason)" }.joined(separator: ", "))
        } else {
            lines.append("deployment: not seen")
        }
        if let pods = try? await list(.pods, in: namespace).items.map(Pod.init) {
            lines += pods.map { pod in
                let notTrue = pod.conditions.filter { $0.status != "True" }.map { "\($0.type)=\($0.status) \($0.reason) \($0.message)" }
                return "pod \(pod.name): \(pod.phase) on \(pod.nodeName ?? "no node") \(notTrue.joined(separator: "; "))"
            }
        }
        if let claims = try? await list(.persistentVolumeClaims, in: namespace).items.map(PersistentVolumeClaim.init) {
            lines += claims.map { "claim \($0.name): \($0.phase) \($0.volumeName ?? "")" }
        }
        if let events = try? await list(.events, in: namespace).items {
            lines += events.suffix(10).map { event in
                let object = event[path: "involvedObject", "name"]?.stringValue ?? ""
                let reason = event["reason"]?.stringValue ?? ""
                return "event \(object) \(reason): \(event["message"]?.stringValue ?? "")"
            }
        }
        return lines.joined(separator: " | ")
    }
}
