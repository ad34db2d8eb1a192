import ArgumentParser
import Foundation
import Journal
import RepaveCore

/// `repave journal show RUN`: a run's journal, verified, for people or (`-o json`) machines.
struct JournalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journal", abstract: "Inspect run journals.", subcommands: [Show.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show", abstract: "Print a run's journal after verifying its checksums and chain.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "A run directory, or a run name under the state directory.")
        var run: String

        func run() async throws {
            let directory = RunLocator.resolve(run)
            let (records, torn) = try RunLocator.read(directory)
            switch global.output {
            case .json:
                var items: [Any] = []
                for record in records {
                    var item: [String: Any] = ["seq": record.sequence, "time": record.time, "kind": record.kind,
                                               "step": record.step ?? NSNull(), "checksum": record.checksum]
                    item["data"] = (try? JSONSerialization.jsonObject(with: record.data, options: [.fragmentsAllowed])) ?? NSNull()
                    items.append(item)
                }
                let document: [String: Any] = ["run": directory, "tornBytes": torn, "records": items]
                let data = try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes])
                print(String(decoding: data, as: UTF8.self))
            case .text:
                for record in records {
                    let step = record.step.map { " [\($0)]" } ?? ""
                    print("\(String(record.sequence).padding(toLength: 4, withPad: " ", startingAt: 0)) \(record.time)  \(record.kind)\(step)  \(String(decoding: record.data, as: UTF8.self))")
                }
                if torn > 0 { print("(\(torn) bytes of a torn last record follow; resume repairs them)") }
            }
        }
    }
}

/// Finds run directories: a path as given, or a name under `$XDG_STATE_HOME/repave/runs`.
enum RunLocator {
    static func resolve(_ run: String) -> String {
        if run.contains("/") || FileManager.default.fileExists(atPath: run) { return run }
        return RunDirectory.root() + "/" + run
    }

    /// The newest run under the state directory, by the UTC time that ends each run's name.
    static func latest() -> String? {
        let root = RunDirectory.root()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.max { $0.suffix(16) < $1.suffix(16) }.map { root + "/" + $0 }
    }

    static func read(_ directory: String) throws -> (records: [JournalRecord], tornBytes: Int) {
        do {
            return try Journal.read(directory: directory)
        } catch {
            throw RepaveError(code: "journal.unreadable", "cannot read the journal of \(directory)", causes: [error.description],
                              hint: "check the run name with 'ls \(RunDirectory.root())'", exitStatus: .journalRefused)
        }
    }
}

extension JournalCommand.Show: GlobalOptionsCarrier {}
