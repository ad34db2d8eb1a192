import ArgumentParser
import Foundation
import Journal
import RepaveCore

/// `repave run PLAN`: executes the plan's strategy, journaled, asking once (on a terminal)
/// before the first change.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run the plan: preflight, then the steps, journaled and resumable.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The plan file.")
    var plan: String

    @Flag(help: "Do not ask for the typed confirmation (required without a terminal).")
    var yes = false

    @Option(name: .customLong("state-dir"), help: "Where run directories go (default: $XDG_STATE_HOME/repave/runs).")
    var stateDirectory: String?

    @Option(name: .customLong("window-start"), help: "Override the plan's window start: 'now' or an RFC 3339 time (tests, demos).")
    var windowStart: String?

    func run() async throws {
        var start: Date?
        if let windowStart {
            if windowStart == "now" { start = Date() } else {
                guard let date = try? Date(windowStart, strategy: .iso8601) else { throw ValidationError("--window-start: '\(windowStart)' is not 'now' or an RFC 3339 time") }
                start = date
            }
        }
        let strategy = try PlanFile.load(contentsOf: plan, windowStart: start)
        guard yes || Confirmation.isInteractive else {
            throw RepaveError(.noTerminal, "refusing to change the cluster without a terminal to confirm on", hint: "run it on a terminal, or pass --yes")
        }
        let client = try Cluster.connect(global: global, context: strategy.kubeContext)
        let session = try await MaintenanceSession.start(strategy, client: client, directory: (stateDirectory ?? RunDirectory.root()) + "/" + RunDirectory.name(plan: strategy.planName), consentGiven: yes)
        FileHandle.standardError.write(Data("run \(session.directory)\n".utf8))
        try await RunReporting.execute(session, confirm: !yes, global: global)
    }
}

extension RunCommand: GlobalOptionsCarrier {}
