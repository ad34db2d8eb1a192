import ArgumentParser
import Foundation
import RepaveCore

/// `repave plan PLAN`: the validated plan with every default made explicit, its digest and the
/// maintenance window. Reads nothing but the file. (The live preflight and the step list join
/// with the recreate strategy.)
struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan", abstract: "Validate a plan file and show it with every default explicit.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The plan file (e.g. plans/devpod-home.yaml).")
    var plan: String

    @Flag(name: .customLong("server-dry-run"), help: "Also run the live preflight and send every change with dryRun=All (nothing is stored).")
    var serverDryRun = false

    func run() async throws {
        let parsed = try RecreatePlan.load(contentsOf: plan)
        if serverDryRun {
            let session = try await RunSession.connect(global: global, plan: parsed)
            let lines = try await Recreate.serverDryRun(plan: parsed, client: session.client)
            if global.output == .json {
                let document = try JSONSerialization.jsonObject(with: parsed.canonicalJSON())
                let checks = lines.map { line -> [String: String] in
                    ["result": line.hasPrefix("FAIL") ? "fail" : "ok", "check": String(line.dropFirst(5))]
                }
                let data = try JSONSerialization.data(withJSONObject: ["plan": document, "digest": parsed.digest, "file": plan,
                                                                       "server": session.client.connection.server, "serverDryRun": checks],
                                                      options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(Self.describe(parsed, file: plan), terminator: "")
                print("\nserver dry run against \(session.client.connection.server) (context \(session.client.connection.contextName)):")
                for line in lines { print("  " + line) }
            }
            if lines.contains(where: { $0.hasPrefix("FAIL") }) {
                throw RepaveError(code: "plan.dry-run-failed", "the API server would refuse part of the run", hint: "see the FAIL lines above", exitStatus: .refused)
            }
            return
        }
        switch global.output {
        case .json:
            let document = try JSONSerialization.jsonObject(with: parsed.canonicalJSON())
            let data = try JSONSerialization.data(withJSONObject: ["plan": document, "digest": parsed.digest, "file": plan],
                                                  options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        case .text:
            print(Self.describe(parsed, file: plan), terminator: "")
        }
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
            let state = now < window.start ? "opens in \(PlanDuration(seconds: window.start.timeIntervalSince(now)))"
                : now < window.end ? "open, \(PlanDuration(seconds: window.end.timeIntervalSince(now))) left" : "closed"
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
