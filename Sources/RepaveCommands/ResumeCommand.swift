import ArgumentParser
import Blocking
import Foundation
import Journal
import RepaveCore

/// `repave resume RUN`: continues a stopped run from its journal.
struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume", abstract: "Continue a stopped run from its journal.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The run directory or name.")
    var run: String

    @Flag(name: .customLong("accept-changed-plan"), help: "Resume although the cluster or targets changed since the run started (journaled).")
    var acceptChanged = false

    @Flag(help: "A run that stopped before its first change starts over, and asks the confirmation 'run' asks; --yes answers it.")
    var yes = false

    func run() async throws {
        let directory = RunLocator.resolve(run)
        let journal = try await offPool("journal open") { () throws(JournalError) in try Journal.open(directory: directory) }
        if let copy = journal.repairedCopy {
            FileHandle.standardError.write(Data("note: the journal's torn last record was cut away (copy: \(copy))\n".utf8))
        }
        let stored = try RunLocator.plan(in: directory, journal: journal)
        let resumable = try MaintenanceSession.resumable(journal, directory: directory)
        // Nothing changed yet (declined, refused, or stopped before its first change): this is a
        // run starting over, with the window a run has, and its confirmation unless the operator
        // gave it already (answered, or --yes at the start).
        let mustConfirm = resumable.mustConfirm(yes: yes)
        guard !mustConfirm || Confirmation.isInteractive else {
            throw RepaveError(.noTerminal, "the run changed nothing yet, so resuming it asks for the confirmation 'run' asks, and there is no terminal to ask on",
                              hint: "resume it on a terminal, or pass --yes")
        }
        let client = try Cluster.connect(global: global, context: stored.strategy.kubeContext)
        let session = try await MaintenanceSession.reopen(stored.strategy, journal: journal, directory: directory, client: client,
                                                          storedPlan: stored.data, acceptChanged: acceptChanged)
        try await RunReporting.execute(session, confirm: mustConfirm, global: global)
    }
}

extension ResumeCommand: GlobalOptionsCarrier {}
