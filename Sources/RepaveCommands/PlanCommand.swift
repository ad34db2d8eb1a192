import ArgumentParser
import Foundation
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

    func run() async throws {
        let parsed = try RecreatePlan.load(contentsOf: plan)
        let json = global.output == .json
        if !json { print(Self.describe(parsed, file: plan), terminator: "") }
        var document: [String: Any] = ["plan": try JSONSerialization.jsonObject(with: parsed.canonicalJSON()), "digest": parsed.digest, "file": plan]
        // With -o json, one document: the plan (and its checks) on success, the error envelope otherwise.
        func emit() throws {
            guard json else { return }
            let data = try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        }
        if offline { return try emit() }
        let session = try await RunSession.connect(global: global, plan: parsed, offline: "repave plan \(plan) --offline")
        let connection = session.client.connection
        if !json { print("\n\(serverDryRun ? "server dry run" : "preflight") against \(connection.server) (context \(connection.contextName)):") }
        document["server"] = connection.server
        let lines = try await Recreate.serverDryRun(plan: parsed, client: session.client, writes: serverDryRun)
        if json {
            document[serverDryRun ? "serverDryRun" : "preflight"] = lines.map { line -> [String: String] in
                ["result": line.hasPrefix("FAIL") ? "fail" : "ok", "check": String(line.dropFirst(5))]
            }
        } else {
            for line in lines { print("  " + line) }
        }
        let failed = lines.filter { $0.hasPrefix("FAIL") }
        guard failed.isEmpty else {
            throw RepaveError(code: "plan.dry-run-failed", "the API server would refuse part of the run", causes: json ? failed.map { String($0.dropFirst(5)) } : [],
                              hint: json ? "each cause is a refused change" : "see the FAIL lines above", exitStatus: .refused)
        }
        try emit()
    }

    static func describe(_ plan: RecreatePlan, file: String) -> String {
        var lines = ["plan \(plan.name) (\(file))", "digest sha256:\(plan.digest)"]
        lines.append("target:        \(plan.target.namespace)/\(plan.target.claim)" + (plan.context.map { " in context \($0)" } ?? " in the current context"))
        lines.append("workloads:     " + (plan.target.workloads.isEmpty ? "discovered from the pods that mount the claim" : plan.target.workloads.map { "\($0.kind.rawValue)/\($0.name)" }.joined(separator: ", ")))
        let parameters = plan.storageClass.parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        lines.append("storage class: \(plan.storageClass.name) (\(plan.storageClass.provisioner); \(parameters); reclaim \(plan.storageClass.reclaimPolicy); \(plan.storageClass.volumeBindingMode); expansion \(plan.storageClass.allowVolumeExpansion ? "on" : "off"); \(plan.storageClass.ensure ? "created if absent" : "must exist"))")
        lines.append("old volume:    \(plan.oldVolume.rawValue)")
        lines.append("acknowledged:  " + (plan.acknowledge.isEmpty ? "none" : plan.acknowledge.map(\.rawValue).joined(separator: ", ")))
        if let git = plan.gitPreflight {
            let source = git.report.map { "report \($0) (at most \(git.maxReportAge) old)" } ?? "paths \(git.paths.joined(separator: ", "))"
            lines.append("git preflight: \(source); require \(git.require.map(\.rawValue).joined(separator: ", "))" + (git.ignore.isEmpty ? "" : "; ignore \(git.ignore.joined(separator: ", "))"))
        } else {
            lines.append("git preflight: none (nothing on the volume is checked)")
        }
        if let window = plan.window {
            let now = Date()
            let state = now < window.start ? "opens in \(PlanDuration.rounded(seconds: window.start.timeIntervalSince(now)))"
                : now < window.end ? "open, \(PlanDuration.rounded(seconds: window.end.timeIntervalSince(now))) left" : "closed"
            lines.append("window:        \(window.start.formatted(.iso8601)) for \(window.duration) (\(state))")
        } else {
            lines.append("window:        none (run refuses nothing on time)")
        }
        let t = plan.timeouts
        lines.append("timeouts:      scaleDown \(t.scaleDown), claimDeletion \(t.claimDeletion), bind \(t.bind), rollout \(t.rollout), verify \(t.verify)")
        lines.append("verify:        Longhorn volume in \(plan.verify.namespace) with \(plan.verify.replicas) replicas, \(plan.verify.robustness)")
        return lines.joined(separator: "\n") + "\n"
    }
}

extension PlanCommand: GlobalOptionsCarrier {}
