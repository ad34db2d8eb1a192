import ArgumentParser
import Logging

public enum OutputFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case text
    case json
}

public enum ProgressMode: String, ExpressibleByArgument, CaseIterable, Sendable {
    /// Live progress when stderr is a terminal, plain lines otherwise.
    case auto
    case plain
    case none
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// The options every command shares, named as kubectl names them.
public struct GlobalOptions: ParsableArguments, Sendable {
    @Option(name: .long, help: ArgumentHelp("Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).", valueName: "path"))
    public var kubeconfig: String?

    @Option(name: .long, help: ArgumentHelp("The kubeconfig context to use (default: its current-context).", valueName: "name"))
    public var context: String?

    @Option(name: [.customShort("o"), .customLong("output")], help: "Result format on stdout: text or json.")
    public var output: OutputFormat = .text

    @Option(name: .customLong("log-level"), help: ArgumentHelp("Log level on stderr: trace, debug, info, notice, warning, error, critical.", valueName: "level"))
    public var logLevel: Logger.Level = .notice

    @Option(name: .long, help: "Progress on stderr: auto (live on a terminal), plain or none.")
    public var progress: ProgressMode = .auto

    public init() {}
}
