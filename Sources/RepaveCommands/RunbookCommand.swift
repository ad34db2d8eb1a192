import ArgumentParser
import Foundation
import Journal
import RepaveCore

/// `repave runbook PLAN`: the maintenance-window runbook in Markdown, with the live preflight's
/// verdict (and a previous run's measured durations with `--journal RUN`); `--offline` gives it
/// from the plan alone, deterministically.
struct RunbookCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runbook", abstract: "Write the maintenance-window runbook (Markdown) for a plan.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The plan file.")
    var plan: String

    @Flag(help: "From the plan alone, deterministically (no cluster access).")
    var offline = false

    @Option(name: .customLong("journal"), help: "A previous run's directory: its measured downtime and duration go into the runbook.")
    var journal: String?

    func validate() throws {
        if offline && journal != nil { throw ValidationError("--offline and --journal exclude each other: an offline runbook comes from the plan alone") }
    }

    func run() async throws {
        let strategy = try PlanFile.load(contentsOf: plan)
        if offline {
            print(strategy.runbook(planFile: plan, evidence: nil), terminator: "")
            return
        }
        var evidence = RunbookEvidence(command: "repave runbook \(plan)" + (journal.map { " --journal \($0)" } ?? ""))
        if let journal {
            let records = try Journal.read(directory: journal).records
            evidence.previous = .init(directory: journal, records: records.map { ($0.time, $0.kind, $0.step) })
        }
        let client = try Cluster.connect(global: global, context: strategy.kubeContext, offline: "repave runbook \(plan) --offline")
        let connection = client.connection
        var refusal: (message: String, hint: String?)?
        do {
            _ = try await MaintenanceSession.rehearse(strategy, client: client, writes: false)
        } catch let error as RepaveError where error.errorCode.exitStatus == .refused {
            // A refused preflight is the runbook's no-go, not this command's failure.
            refusal = (([error.message] + error.causes).joined(separator: ": "), error.hint)
        }
        evidence.preflight = .init(server: connection.server, context: connection.contextName, at: Date(), refusal: refusal)
        print(strategy.runbook(planFile: plan, evidence: evidence), terminator: "")
    }
}

extension RunbookCommand: GlobalOptionsCarrier {}
