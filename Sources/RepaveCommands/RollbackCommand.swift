import ArgumentParser
import Foundation
import RepaveCore

/// `repave rollback RUN`: after the point of no return, the claim's name back on the old volume,
/// on the old class, with its data. Asks for the typed `namespace/claim` unless `--yes`.
struct RollbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "After the swap: put the claim back on its old volume and class (asks for namespace/claim).",
        discussion: "Anything written since the swap stays on the new volume, which is left retained; 'repave finalize RUN' deletes it afterwards.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The run directory or name.")
    var run: String

    @Flag(help: "Do not ask for namespace/claim (required without a terminal).")
    var yes = false

    struct Result: CommandResult {
        var result: String
        var run: String
        var claim: String
        var restored: String
        var storageClass: String
        var left: String
        var done: [String]
        var textLines: [String] {
            if result == "already-rolled-back" { return ["already rolled back: nothing to do"] + done.map { "  \($0)" } }
            return ["rolled back: \(claim) is on its old volume \(restored) (storageclass \(storageClass)) again"] + done.map { "  \($0)" }
                + [Self.leftNote(left), "next:       repave finalize \(run) deletes \(left), once you are satisfied"]
        }

        static func leftNote(_ left: String) -> String {
            "note:       anything written since the swap is not on the old volume: it stays on the new volume \(left), retained"
        }
    }

    func run() async throws {
        let (directory, session) = try await RunLocator.reopenAsItWas(run, global: global)
        let ask: @Sendable (MaintenanceSession.RollbackPreview) async throws -> Bool = { preview in
            let warning = "rollback puts \(preview.claim) back on \(preview.restored) (storageclass \(preview.oldClass)): anything written since the swap stays on the new volume \(preview.left), not on the old one"
            guard Confirmation.isInteractive else {
                throw RepaveError(.noTerminal, "\(warning); it asks for the claim's name first, and there is no terminal to ask on",
                                  hint: "run it on a terminal, or pass --yes")
            }
            FileHandle.standardError.write(Data("\n\(warning).\n".utf8))
            return await Confirmation.askTypedName(preview.claim, steps: preview.steps, pointOfNoReturn: nil)
        }
        let done = try await session.rollback(confirm: yes ? nil : ask)
        Output.render(Result(result: done.alreadyDone ? "already-rolled-back" : "rolled-back", run: directory, claim: done.claim, restored: done.restored,
                             storageClass: done.oldClass, left: done.left, done: done.lines), global.output)
    }
}

extension RollbackCommand: GlobalOptionsCarrier {}
