import Foundation
import RepaveCore

/// What `run` and `resume` share once they hold a session: the confirmation, progress, and the
/// run's result or error.
enum RunReporting {
    struct Result: CommandResult {
        var result = "finished"
        var run: String
        var fields: [String: String]
        var headline: String
        var lines: [String]

        var textLines: [String] { ["finished: \(headline)"] + lines.map { "  " + $0 } }

        func encode(to encoder: any Encoder) throws {
            var object = fields
            object["result"] = result
            object["run"] = run
            try object.encode(to: encoder)
        }
    }

    static func execute(_ session: MaintenanceSession, confirm: Bool, global: GlobalOptions) async throws {
        let target = session.strategy.target.description
        let progress = ProgressPrinter(mode: global.progress)
        let ask: @Sendable (String?, [(id: String, summary: String)]) async -> Bool = { pnr, steps in
            progress.finish()
            return await Confirmation.askTypedName(target, steps: steps, pointOfNoReturn: pnr)
        }
        let report = try await session.execute(confirm: confirm ? ask : nil, progress: { progress.handle($0) })
        progress.finish()
        if let error = report.error { throw error }
        guard let summary = report.summary else { return }
        Output.render(Result(run: report.directory, fields: summary.fields, headline: summary.headline, lines: summary.lines), global.output)
    }
}
