import ArgumentParser
import Foundation
import Journal
import KubeAPI
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

        struct Record: Encodable {
            var seq: Int
            var time: String
            var kind: String
            var step: String?
            var checksum: String
            var data: JSON
            /// The payload as the journal holds it, for the text form.
            var raw: String

            // `step` is written as null when absent, as every record has the key.
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(seq, forKey: .seq)
                try container.encode(time, forKey: .time)
                try container.encode(kind, forKey: .kind)
                try container.encode(step, forKey: .step)
                try container.encode(checksum, forKey: .checksum)
                try container.encode(data, forKey: .data)
            }
            enum CodingKeys: String, CodingKey { case seq, time, kind, step, checksum, data }
        }

        struct Result: CommandResult {
            var run: String
            var tornBytes: Int
            var records: [Record]

            var textLines: [String] {
                records.map { record in
                    let step = record.step.map { " [\($0)]" } ?? ""
                    return "\(String(record.seq).padding(toLength: 4, withPad: " ", startingAt: 0)) \(record.time)  \(record.kind)\(step)  \(record.raw)"
                } + (tornBytes > 0 ? ["(\(tornBytes) bytes of a torn last record follow; resume repairs them)"] : [])
            }
        }

        func run() async throws {
            let directory = RunLocator.resolve(run)
            let (records, torn) = try RunLocator.read(directory)
            Output.render(Result(run: directory, tornBytes: torn, records: records.map {
                Record(seq: $0.sequence, time: $0.time, kind: $0.kind, step: $0.step, checksum: $0.checksum, data: JSON(document: $0.data),
                       raw: String(decoding: $0.data, as: UTF8.self))
            }), global.output)
        }
    }
}

extension JournalCommand.Show: GlobalOptionsCarrier {}
