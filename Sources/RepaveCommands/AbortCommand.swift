import ArgumentParser
import Foundation
import RepaveCore

/// `repave abort RUN`: before the point of no return, undo what the run changed.
struct AbortCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abort", abstract: "Before the point of no return: put the workloads and the old volume back as they were.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The run directory or name.")
    var run: String

    struct Result: CommandResult {
        var result = "aborted"
        var run: String
        var undone: [String]
        var textLines: [String] { undone.isEmpty ? ["aborted: nothing had been changed"] : ["aborted:"] + undone.map { "  \($0)" } }
    }

    func run() async throws {
        let (directory, session) = try await RunLocator.reopenAsItWas(run, global: global)
        Output.render(Result(run: directory, undone: try await session.abort()), global.output)
    }
}

extension AbortCommand: GlobalOptionsCarrier {}
