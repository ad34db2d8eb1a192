import ArgumentParser
import Foundation
import KubeAPI
import RepaveCore

/// `repave plan PLAN`: the validated plan with every default made explicit, its digest and the
/// maintenance window, then the live preflight against the cluster (read-only; a refusal is
/// exit 2 with what to do). `--server-dry-run` also sends every change with dryRun=All;
/// `--offline` reads nothing but the file.
struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan", abstract: "Validate a plan file and show it with every default explicit.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The plan file (e.g. plans/devpod-home.yaml).")
    var plan: String

    @Flag(name: .customLong("server-dry-run"), help: "Also run the live preflight and send every change with dryRun=All (nothing is stored).")
    var serverDryRun = false

    @Flag(help: "Validate the file alone: read nothing from the cluster (no preflight).")
    var offline = false

    func validate() throws {
        if offline && serverDryRun { throw ValidationError("--offline and --server-dry-run exclude each other: pick one") }
    }

    struct Check: Encodable {
        var result: String
        var check: String
    }

    /// With -o json, one document: the plan (and its checks) on success, the error envelope
    /// otherwise. The text form is printed as it goes.
    struct Result: CommandResult {
        var file: String
        var digest: String
        var plan: JSON
        var server: String?
        var preflight: [Check]?
        var serverDryRun: [Check]?
        var textLines: [String] { [] }
    }

    func run() async throws {
        let strategy = try PlanFile.load(contentsOf: plan)
        let text = global.output == .text
        if text { print(strategy.describe(file: plan), terminator: "") }
        var result = Result(file: plan, digest: strategy.planDigest, plan: JSON(document: strategy.canonicalPlan))
        if offline { return emit(result) }
        let client = try Cluster.connect(global: global, context: strategy.kubeContext, offline: "repave plan \(plan) --offline")
        let connection = client.connection
        if text { print("\n\(serverDryRun ? "server dry run" : "preflight") against \(connection.server) (context \(connection.contextName)):") }
        result.server = connection.server
        let checks = try await MaintenanceSession.rehearse(strategy, client: client, writes: serverDryRun)
        if text { for check in checks { print("  " + check.line) } }
        let listed = checks.map { Check(result: $0.passed ? "ok" : "fail", check: $0.check + ($0.detail.map { ": \($0)" } ?? "")) }
        if serverDryRun { result.serverDryRun = listed } else { result.preflight = listed }
        let failed = listed.filter { $0.result == "fail" }
        guard failed.isEmpty else {
            throw RepaveError(.planDryRunFailed, "the API server would refuse part of the run", causes: text ? [] : failed.map(\.check),
                              hint: text ? "see the FAIL lines above" : "each cause is a refused change")
        }
        emit(result)
    }

    private func emit(_ result: Result) {
        if global.output == .json { Output.render(result, .json, pretty: true) }
    }
}

extension PlanCommand: GlobalOptionsCarrier {}
