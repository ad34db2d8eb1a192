import ArgumentParser
import Foundation
import Journal
import KubeAPI
import RepaveCore

/// `repave status [RUN]`: where a run stands, from its journal (the latest run when none is
/// named).
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show where a run stands: steps done, the step in progress, how it ended.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "A run directory or name (default: the latest run).")
    var run: String?

    func run() async throws {
        guard let directory = run.map(RunLocator.resolve) ?? RunLocator.latest() else {
            throw RepaveError(code: "status.no-runs", "no runs under \(RunDirectory.root())", hint: "start one with 'repave run PLAN'", exitStatus: .refused)
        }
        let (records, torn) = try RunLocator.read(directory)
        let state = Runner.state(of: records)
        let ending = records.last { ["finished", "stopped", "aborted"].contains($0.kind) && $0.sequence == records.last?.sequence }
        let runningBy = RunLock.holder(of: directory)
        let outcome = runningBy != nil ? "running" : ending?.kind ?? "interrupted"
        let reason = ending.flatMap { try? $0.decode([String: String].self) }?["reason"]
        let crossed = records.contains { $0.kind == "pnr" }
        let live = await Self.liveState(directory: directory, global: global)
        switch global.output {
        case .json:
            var object: [String: Any] = [
                "run": directory, "records": records.count, "stepsDone": state.done.sorted(), "state": outcome,
                "pointOfNoReturnCrossed": crossed, "tornBytes": torn,
            ]
            if let dangling = state.dangling { object["inProgress"] = dangling }
            if let reason { object["reason"] = reason }
            if let runningBy { object["runningBy"] = runningBy }
            object["cluster"] = live
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        case .text:
            print("run:        \(directory)")
            print("state:      \(outcome)\(runningBy.map { " (\($0))" } ?? reason.map { " (\($0))" } ?? "")")
            print("steps done: \(state.done.isEmpty ? "none" : state.done.sorted().joined(separator: ", "))")
            if let dangling = state.dangling { print("in progress: \(dangling) (a request's outcome is unknown; resume settles it by reading the cluster)") }
            print("point of no return: \(crossed ? "crossed" : "not crossed")")
            for (key, value) in live.sorted(by: { $0.key < $1.key }) { print("cluster \(key): \(value)") }
            if !["finished", "running", "aborted"].contains(outcome) {
                print("next:       repave resume \(directory)" + (crossed ? " (past the point of no return: only forward)" : ", or repave abort \(directory)"))
            }
        }
    }
}

extension StatusCommand: GlobalOptionsCarrier {}

extension StatusCommand {
    /// The claim, the workloads and the lease as the cluster has them now; an unreachable
    /// cluster is reported, not fatal (the journal alone still says where the run stands).
    static func liveState(directory: String, global: GlobalOptions) async -> [String: String] {
        guard FileManager.default.fileExists(atPath: directory + "/plan.json") else { return [:] }
        guard let plan = try? RunLocator.plan(in: directory, journal: nil) else { return ["error": "plan.json is unreadable"] }
        do {
            let client = try await RunSession.connect(global: global, plan: plan).client
            var state: [String: String] = [:]
            let ns = plan.target.namespace
            if let claim = try await client.getIfPresent(.persistentVolumeClaims, named: plan.target.claim, in: ns).map(PersistentVolumeClaim.init) {
                state["claim"] = "\(ns)/\(claim.name) uid \(claim.uid), class \(claim.storageClassName ?? "-"), \(claim.phase)" + (claim.metadata.isTerminating ? ", terminating" : "")
            } else {
                state["claim"] = "\(ns)/\(plan.target.claim) does not exist"
            }
            for workload in plan.target.workloads {
                let type: ResourceType = workload.kind == .deployment ? .deployments : .statefulSets
                if let object = try await client.getIfPresent(type, named: workload.name, in: ns) {
                    let replicas = Recreate.replicas(workload.kind, object)
                    state["\(workload.kind.rawValue)/\(workload.name)"] = "\(replicas) replicas"
                }
            }
            let lock = ClusterLock(client: client, namespace: ns, claim: plan.target.claim, holder: "")
            let lease = try await client.getIfPresent(.leases, named: lock.name, in: ns).map(Lease.init)
            state["lease"] = lease.map { "held by \($0.holderIdentity ?? "?"), renewed \($0.renewTime ?? "?")" } ?? "none"
            return state
        } catch {
            return ["error": "not reachable: \(error)"]
        }
    }
}
