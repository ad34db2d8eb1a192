import ArgumentParser
import Foundation
import KubeAPI
import Logging

// repave-lab: the lab agent (kubelets and Longhorn) for the local control plane. Not shipped in
// the `repave` binary; `scripts/lab up` starts it.
@main
struct LabCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repave-lab",
        abstract: "The lab's tools: the agent (kubelets and Longhorn) and test-only engine runs.",
        subcommands: [AgentCommand.self, EngineDemo.self, DemoWorld.self, LockProbe.self], defaultSubcommand: AgentCommand.self)
}

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Plays the lab cluster's kubelets (lab-node-1…N) and the Longhorn CSI driver against a real API server.")

    @Option(help: "The kubeconfig of the agent's identity.")
    var kubeconfig: String

    @Option(name: .customLong("ready-file"), help: "Created once nodes, CRD and caches are ready.")
    var readyFile: String?

    @Option(help: "How many simulated nodes to register (0 with a real node).")
    var nodes = 3

    @Option(name: .customLong("longhorn-nodes"), help: "How many Longhorn nodes (nodes.longhorn.io lab-node-1…N) may hold replicas.")
    var longhornNodes = 3

    @Option(name: .customLong("real-node"), help: "A node run by a real kubelet: the agent plays only Longhorn's controller side for it.")
    var realNodes: [String] = []

    @Option(name: .customLong("volume-dir"), help: "The real node's volume directory (the CSI plugin serves <dir>/<volume name>).")
    var volumeDir: String?

    @Option(name: .customLong("start-delay"), help: "Default delay before a scheduled pod runs (e.g. 2s).")
    var startDelay = "0s"

    @Option(name: .customLong("terminate-delay"), help: "Default delay before a terminating pod is gone.")
    var terminateDelay = "0s"

    @Option(name: .customLong("provision-delay"), help: "Default delay before a claim's volume is provisioned.")
    var provisionDelay = "0s"

    @Option(name: .customLong("log-level"))
    var logLevel: String = "info"

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "repave-lab")
        func duration(_ text: String, _ flag: String) throws -> Duration {
            guard let value = parseDuration(text) else { throw ValidationError("--\(flag): '\(text)' is not a duration such as 2s or 500ms") }
            return value
        }
        let settings = LabAgent.Settings(
            nodes: nodes, startDelay: try duration(startDelay, "start-delay"),
            terminateDelay: try duration(terminateDelay, "terminate-delay"),
            provisionDelay: try duration(provisionDelay, "provision-delay"), heartbeat: .seconds(10),
            longhornNodes: longhornNodes, realNodes: realNodes, volumeDir: volumeDir)
        guard nodes >= 0 else { throw ValidationError("--nodes: \(nodes) is negative; give 0 or more") }
        guard longhornNodes >= 0 else { throw ValidationError("--longhorn-nodes: \(longhornNodes) is negative; give 0 or more") }
        let connection = try KubeconfigLoader(explicitPath: kubeconfig).load()
        let client = try KubeClient(connection: connection, userAgent: "repave-lab/0.1.0", logger: logger)
        let agent = LabAgent(client: client, settings: settings, logger: logger)
        try await agent.prepare()
        try await agent.run(readyFile: readyFile)
    }
}
