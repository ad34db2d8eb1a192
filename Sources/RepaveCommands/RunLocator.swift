import Blocking
import Foundation
import Journal
import RepaveCore

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

    /// The plan as the run approved it (`plan.json` beside the journal), and its bytes. A run
    /// stopped between its journal's creation and that copy changed nothing: it is started
    /// again, not resumed.
    static func plan(in directory: String, journal: Journal?) throws -> (strategy: any Strategy, data: Data) {
        let path = directory + "/plan.json"
        guard let data = FileManager.default.contents(atPath: path) else {
            if let journal, journal.records.count == 1 {
                throw RepaveError(.runNotStarted, "\(directory) stopped before it started: its journal has only its header and no plan copy, so nothing was changed",
                                  hint: "start it again with 'repave run PLAN'")
            }
            throw RepaveError(.runNoPlan, "\(directory) holds no plan.json", hint: "the run directory is incomplete; check it with 'repave journal show \(directory)'")
        }
        do {
            return (try PlanFile.stored(data), data)
        } catch {
            throw RepaveError(.runPlanUnreadable, "\(path) is not a plan copy this repave can read", cause: error,
                              hint: "resume it with the repave that started the run")
        }
    }

    /// The run's session for `abort` and `finalize`, which act on what the run saved, by uid,
    /// whatever else changed since: its binding is not checked.
    static func reopenAsItWas(_ run: String, global: GlobalOptions) async throws -> (directory: String, session: MaintenanceSession) {
        let directory = resolve(run)
        let journal = try await offPool("journal open") { () throws(JournalError) in try Journal.open(directory: directory) }
        let stored = try plan(in: directory, journal: journal)
        let client = try Cluster.connect(global: global, context: stored.strategy.kubeContext)
        let session = try await MaintenanceSession.reopen(stored.strategy, journal: journal, directory: directory, client: client,
                                                          storedPlan: stored.data, acceptChanged: true, bindingChecked: false)
        return (directory, session)
    }

    static func read(_ directory: String) throws -> (records: [JournalRecord], tornBytes: Int) {
        do {
            return try Journal.read(directory: directory)
        } catch {
            throw RepaveError(.journalUnreadable, "cannot read the journal of \(directory)", cause: error,
                              hint: "check the run name with 'ls \(RunDirectory.root())'")
        }
    }
}

