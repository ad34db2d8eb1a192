import ArgumentParser
import Foundation
import Journal
import KubeAPI
import RepaveCore

/// `repave status [RUN]`: where a run stands, from its journal (the latest run when none is
/// named), and the cluster as it is now.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show where a run stands: steps done, the step in progress, how it ended.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "A run directory or name (default: the latest run).")
    var run: String?

    struct Result: CommandResult {
        var run: String
        var records: Int
        var state: String
        var stepsDone: [String]
        var inProgress: String?
        var reason: String?
        var runningBy: String?
        var pointOfNoReturnCrossed: Bool
        var tornBytes: Int
        var cluster: [String: String]
        /// The run commands the journal allows now (resume, abort, rollback, finalize).
        var allows: [String]
        /// The others, each with why not.
        var notNow: [String: String]

        var textLines: [String] {
            var lines = ["run:        \(run)",
                         "state:      \(state)\(runningBy.map { " (\($0))" } ?? reason.map { " (\($0))" } ?? "")",
                         "steps done: \(stepsDone.isEmpty ? "none" : stepsDone.joined(separator: ", "))"]
            if let inProgress { lines.append("in progress: \(inProgress) (a request's outcome is unknown; resume settles it by reading the cluster)") }
            lines.append("point of no return: \(pointOfNoReturnCrossed ? "crossed" : "not crossed")")
            lines += cluster.sorted { $0.key < $1.key }.map { "cluster \($0.key): \($0.value)" }
            lines.append("allows:     " + (allows.isEmpty ? "none" : allows.joined(separator: ", ")))
            lines += notNow.sorted { $0.key < $1.key }.map { "not now:    \($0.key): \($0.value)" }
            if state == "rollback-interrupted" {
                lines.append("next:       repave rollback \(run) (continues the rollback)")
            } else if allows.contains("finalize") {
                lines.append("next:       repave finalize \(run) (deletes the volume the run kept, once you are satisfied)")
            } else if !["finished", "finalized", "running", "aborted", "rolled_back"].contains(state) {
                lines.append("next:       repave resume \(run)" + (pointOfNoReturnCrossed ? " (past the point of no return: only forward)" : ", or repave abort \(run)"))
            }
            return lines
        }
    }

    func run() async throws {
        guard let directory = run.map(RunLocator.resolve) ?? RunLocator.latest() else {
            throw RepaveError(.statusNoRuns, "no runs under \(RunDirectory.root())", hint: "start one with 'repave run PLAN'")
        }
        let (records, torn) = try RunLocator.read(directory)
        let history = try RunHistory(records)
        let state = history.state
        let runningBy = RunLock.holder(of: directory)
        let ending = history.entries.last?.record.sequence == records.last?.sequence ? history.ending : nil
        let strategy = try? RunLocator.plan(in: directory, journal: nil).strategy
        let commands = runningBy != nil ? [] : MaintenanceSession.allowedCommands(history, strategy: strategy, run: records.first?.run ?? "")
        Output.render(Result(
            run: directory, records: records.count,
            state: runningBy != nil ? "running" : ending?.kind.rawValue ?? (history.finalizing ? "finalize-interrupted" : history.rollingBack ? "rollback-interrupted" : "interrupted"),
            stepsDone: state.done.sorted(), inProgress: state.dangling, reason: ending?.reason, runningBy: runningBy,
            pointOfNoReturnCrossed: history.crossedPointOfNoReturn, tornBytes: torn,
            cluster: await Self.liveState(directory: directory, global: global),
            allows: commands.filter(\.allowed).map(\.command),
            notNow: Dictionary(uniqueKeysWithValues: commands.filter { !$0.allowed }.map { ($0.command, $0.why) })), global.output)
    }
}

extension StatusCommand: GlobalOptionsCarrier {}

extension StatusCommand {
    /// The target as the cluster has it now; an unreachable cluster is reported, not fatal (the
    /// journal alone still says where the run stands).
    static func liveState(directory: String, global: GlobalOptions) async -> [String: String] {
        guard FileManager.default.fileExists(atPath: directory + "/plan.json") else { return [:] }
        guard let strategy = try? RunLocator.plan(in: directory, journal: nil).strategy else { return ["error": "plan.json is unreadable"] }
        do {
            return try await strategy.liveState(try Cluster.connect(global: global, context: strategy.kubeContext))
        } catch {
            return ["error": "not reachable: \(error)"]
        }
    }
}
