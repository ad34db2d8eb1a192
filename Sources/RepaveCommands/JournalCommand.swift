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

    /// The plan as the run approved it (`plan.json` beside the journal). A run stopped between
    /// its journal's creation and that copy changed nothing: it is started again, not resumed.
    static func plan(in directory: String, journal: Journal?) throws -> RecreatePlan {
        let path = directory + "/plan.json"
        guard let data = FileManager.default.contents(atPath: path) else {
            if let journal, journal.records.count == 1 {
                throw RepaveError(code: "run.not-started", "\(directory) stopped before it started: its journal has only its header and no plan copy, so nothing was changed",
                                  hint: "start it again with 'repave run PLAN'", exitStatus: .journalRefused)
            }
            throw RepaveError(code: "run.no-plan", "\(directory) holds no plan.json", hint: "the run directory is incomplete; check it with 'repave journal show \(directory)'", exitStatus: .journalRefused)
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do {
            return try decoder.decode(RecreatePlan.self, from: data)
        } catch {
            throw RepaveError(code: "run.plan-unreadable", "\(path) is not a plan copy this repave can read", causes: ["\(error)"],
                              hint: "resume it with the repave that started the run", exitStatus: .journalRefused)
        }
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
