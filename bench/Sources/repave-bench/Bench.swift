import ArgumentParser

/// Benchmarks that print Repave's figure, the alternative's, and the ratio from one run.
@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repave-bench", abstract: "Repave's benchmarks against what a user would use instead.",
        subcommands: [ClientGet.self, Maintenance.self, Preflight.self, AuditScale.self])
}
