import ArgumentParser
import Foundation
import RepaveCore

/// `repave finalize RUN`: after a finished run, delete the volume it kept (and its claim no longer
/// uses) with its Longhorn volume, uid-guarded. Asks for the PV's name unless `--yes`.
struct FinalizeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finalize", abstract: "After a finished run: delete the volume it kept, with its Longhorn volume (asks for the PV's name).")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The run directory or name.")
    var run: String

    @Flag(help: "Do not ask for the PV's name (required without a terminal).")
    var yes = false

    struct Result: CommandResult {
        var result: String
        var run: String
        var volume: String
        var done: [String]
        var textLines: [String] {
            [result == "already-finalized" ? "already finalized: nothing to do" : "finalized: \(volume) deleted"] + done.map { "  \($0)" }
        }
    }

    func run() async throws {
        let (directory, session) = try await RunLocator.reopenAsItWas(run, global: global)
        let ask: @Sendable (KeptVolume, [(id: String, summary: String)], String?) async throws -> Bool = { kept, steps, pointOfNoReturn in
            guard Confirmation.isInteractive else {
                throw RepaveError(.noTerminal, "finalize deletes persistentvolume \(kept.name) and asks for its name first, and there is no terminal to ask on",
                                  hint: "run it on a terminal, or pass --yes")
            }
            return await Confirmation.askTypedName(kept.name, steps: steps, pointOfNoReturn: pointOfNoReturn, gone: "the kept volume's data")
        }
        let finalized = try await session.finalize(confirm: yes ? nil : ask)
        Output.render(Result(result: finalized.alreadyDone ? "already-finalized" : "finalized", run: directory, volume: finalized.volume,
                             done: finalized.lines), global.output)
    }
}

extension FinalizeCommand: GlobalOptionsCarrier {}
