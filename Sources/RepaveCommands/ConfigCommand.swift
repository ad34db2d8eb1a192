import ArgumentParser
import Foundation
import KubeAPI

/// `repave config`: which cluster, context, user and authentication a run would use, and the
/// kubeconfig file each came from, before anything touches the cluster. Never prints a secret.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Show which cluster, context, user and credentials a run would use (no secrets).",
        discussion: "Reads the kubeconfig the way kubectl does and contacts nothing.")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let loader = KubeconfigLoader(explicitPath: global.kubeconfig, context: global.context)
        let connection = try loader.load()
        let files = loader.candidateFiles().files.filter { FileManager.default.fileExists(atPath: $0) }
        let report = Report(connection: connection, files: connection.isInCluster ? [] : files)
        Output.render(report, global.output)
    }

    struct Report: CommandResult {
        let connection: ClusterConnection
        let files: [String]

        var textLines: [String] { Output.lines(text) }
        func encode(to encoder: any Encoder) throws { try json.encode(to: encoder) }

        var verification: String {
            connection.tls.verification == .verify ? "verified" : "NOT verified (insecure-skip-tls-verify: true)"
        }

        var text: String {
            let c = connection
            var rows: [(String, String)] = [
                ("context", c.contextName + (c.provenance.context.isEmpty ? "" : "  (\(c.provenance.context))")),
                ("cluster", c.clusterName + "  (\(c.provenance.cluster))"),
                ("server", c.server),
                ("namespace", c.namespace),
                ("user", c.userName.isEmpty ? "(none)" : c.userName + "  (\(c.provenance.user))"),
                ("auth", c.authenticationSummary),
                ("CA", c.provenance.certificateAuthority),
                ("TLS", verification),
            ]
            if let name = c.tls.serverName { rows.append(("tls-server-name", name)) }
            if let user = c.impersonateUser { rows.append(("impersonate", user)) }
            if !files.isEmpty { rows.append(("kubeconfig", files.joined(separator: ":"))) }
            let width = rows.map(\.0.count).max() ?? 0
            var text = rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n") + "\n"
            for warning in c.warnings { text += "warning: \(warning)\n" }
            return text
        }

        var json: JSON {
            let c = connection
            var object: JSON = [
                "context": .string(c.contextName), "contextSource": .string(c.provenance.context),
                "cluster": .string(c.clusterName), "clusterSource": .string(c.provenance.cluster),
                "server": .string(c.server), "namespace": .string(c.namespace),
                "user": .string(c.userName), "userSource": .string(c.provenance.user),
                "auth": .string(c.authenticationSummary),
                "certificateAuthority": .string(c.provenance.certificateAuthority),
                "tlsVerified": .bool(c.tls.verification == .verify),
                "inCluster": .bool(c.isInCluster),
                "kubeconfigFiles": .array(files.map { .string($0) }),
                "warnings": .array(c.warnings.map { .string($0) }),
            ]
            if let name = c.tls.serverName { object["tlsServerName"] = .string(name) }
            return object
        }
    }
}
