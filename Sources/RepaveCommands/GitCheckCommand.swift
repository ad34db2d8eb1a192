import ArgumentParser
import Foundation
import Git
import KubeAPI
import RepaveCore

/// `repave git-check PATH…`: the git preflight alone. Exit 0 when every repository passes,
/// 2 when any fails; `--report FILE` writes the JSON a plan can name as `gitPreflight.report`.
struct GitCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "git-check",
        abstract: "Check that every git repository below PATHs is committed, pushed and has no stash.",
        discussion: """
            Run it where the data lives (inside the workspace, before the window) and pass \
            --report FILE --for NAMESPACE/CLAIM; a plan's gitPreflight.report names that file. \
            Rules: clean, pushed, no-stash (default: all three).
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Directories to search for repositories.")
    var paths: [String]

    @Option(name: .customLong("require"), help: "A rule every repository must pass (repeatable): clean, pushed, no-stash.")
    var rules: [String] = []

    @Option(name: .customLong("ignore"), help: "A path glob left out of the check, e.g. '**/node_modules/**' (repeatable).")
    var ignore: [String] = []

    @Option(name: .customLong("report"), help: "Write the JSON report to this file.")
    var report: String?

    @Option(name: .customLong("for"), help: "The claim this check is for, as NAMESPACE/CLAIM (recorded in the report).")
    var claim: String?

    @Flag(name: .customLong("allow-other-owners"), help: "Inspect repositories owned by other users (libgit2's safe.directory check off).")
    var allowOtherOwners = false

    func validate() throws {
        for rule in rules where GitRule(rawValue: rule) == nil {
            throw ValidationError("unknown rule '\(rule)' for --require; rules: \(GitRule.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let claim, claim.split(separator: "/").count != 2 {
            throw ValidationError("--for '\(claim)' is not NAMESPACE/CLAIM")
        }
        if paths.isEmpty { throw ValidationError("give at least one PATH to check") }
        do {
            _ = try GlobSet(ignore)
        } catch {
            throw ValidationError("--ignore: \(error)")
        }
    }

    func run() async throws {
        for path in paths where !FileManager.default.fileExists(atPath: path) {
            throw RepaveError(.gitNoSuchPath, "no such file or directory: \(path)",
                              hint: "git-check searches existing directories for repositories", exitStatus: .refused)
        }
        let check = GitCheck(
            paths: paths, rules: rules.isEmpty ? GitRule.defaults : rules.compactMap(GitRule.init(rawValue:)),
            ignore: ignore, claim: claim, allowOtherOwners: allowOtherOwners)
        let result = try await check.run()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let json = try encoder.encode(result)
        if let report {
            do {
                try json.write(to: URL(fileURLWithPath: report), options: .atomic)
            } catch {
                throw RepaveError(.gitReportUnwritable, "cannot write the report to \(report)", cause: error)
            }
        }
        Output.render(Result(report: result), global.output, pretty: true)
        if !result.passed { throw ExitCode(ExitStatus.refused.rawValue) }
    }

    /// The report as `--report` writes it, or as a table of verdicts.
    struct Result: CommandResult {
        let report: GitReport
        var textLines: [String] { Output.lines(GitCheckCommand.table(report)) }
        func encode(to encoder: any Encoder) throws { try report.encode(to: encoder) }
    }

    static func table(_ report: GitReport) -> String {
        var lines: [String] = []
        let rows = report.repositories.map { repository -> [String] in
            let name = repository.parent.map { parent in "  " + (repository.path.hasPrefix(parent + "/") ? String(repository.path.dropFirst(parent.count + 1)) : repository.path) } ?? repository.path
            return [name, repository.head, repository.passed ? "pass" : "FAIL", repository.reasons.joined(separator: "; ")]
        }
        let header = ["REPOSITORY", "HEAD", "VERDICT", "REASONS"]
        let widths = (0..<3).map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        for row in [header] + rows {
            lines.append((0..<3).map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ") + "  " + row[3])
        }
        let failed = report.repositories.filter { !$0.passed }.count
        lines.append("")
        lines.append("\(report.repositories.count) repositories: \(report.repositories.count - failed) pass, \(failed) fail (rules: \(report.rules.joined(separator: ", ")))")
        for path in report.unreadable {
            lines.append("unreadable: \(path.path): \(path.reason) (its contents were not checked)")
        }
        if !report.ownerValidation { lines.append("note: repositories owned by other users were inspected (--allow-other-owners)") }
        if !report.inventory.entries.isEmpty {
            lines.append("")
            lines.append("Not in any repository, or ignored by one — lost when the claim is recreated" + (report.inventory.complete ? ":" : " (an estimate: sizing stopped after \(report.inventory.budgetSeconds) s):"))
            for entry in report.inventory.entries.sorted(by: { $0.bytes > $1.bytes }).prefix(20) {
                let note = entry.kind == "outside-repositories" ? "" : "  (\(entry.kind))"
                let size = formatBytes(entry.bytes)
                let files = entry.files == 1 ? "1 file" : "\(entry.files) files"
                lines.append("  " + String(repeating: " ", count: max(0, 10 - size.count)) + size + String(repeating: " ", count: max(0, 14 - files.count)) + files + "  " + entry.path + note)
            }
            if report.inventory.entries.count > 20 { lines.append("  … and \(report.inventory.entries.count - 20) more (see -o json)") }
            lines.append("  total \(formatBytes(report.inventory.totalBytes))")
        }
        lines.append(report.passed ? "git check passed" : "git check FAILED")
        return lines.joined(separator: "\n") + "\n"
    }

    static func formatBytes(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }
}

extension GitCheckCommand: GlobalOptionsCarrier {}
