import ArgumentParser
import Foundation
import RepaveCore

/// `repave runbook PLAN --offline`: the maintenance-window runbook in Markdown.
struct RunbookCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runbook", abstract: "Write the maintenance-window runbook (Markdown) for a plan.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The plan file.")
    var plan: String

    @Flag(help: "From the plan alone, deterministically (no cluster access).")
    var offline = false

    func run() async throws {
        guard offline else {
            throw RepaveError(code: "runbook.live", "only --offline runbooks exist so far", hint: "pass --offline", exitStatus: .usage)
        }
        print(Recreate.runbook(for: try RecreatePlan.load(contentsOf: plan), planFile: plan), terminator: "")
    }
}

extension RunbookCommand: GlobalOptionsCarrier {}
