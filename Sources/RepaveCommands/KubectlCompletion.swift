import ArgumentParser
import Foundation

/// `kubectl repave <TAB>`: kubectl (1.26 and later) runs `kubectl_complete-repave` with the words
/// typed after `kubectl repave`, the last one being the word to complete ("" for a new word), and
/// reads Cobra's `__complete` answer: candidates one per line (`candidate<TAB>description`), then
/// `:<directive>`. swift-argument-parser does not speak that protocol, so this answers it from the
/// same command tree `--experimental-dump-help` describes: subcommands, options and their values.
public enum KubectlCompletion {
    /// Cobra's ShellCompDirective values that we use.
    enum Directive: Int {
        /// Let the shell complete file names (a plan file, a run directory).
        case `default` = 0
        /// Only the candidates given.
        case noFileCompletion = 4
    }

    /// The words to complete when `repave` was started for completion: as `kubectl_complete-repave`
    /// (a link to repave), or as `repave __complete WORD…` like a Cobra program; nil otherwise.
    public static func words(invokedAs name: String?, arguments: [String]) -> [String]? {
        if let name, name.split(separator: "/").last == "kubectl_complete-repave" { return arguments }
        if arguments.first == "__complete" { return Array(arguments.dropFirst()) }
        return nil
    }

    /// Cobra's answer for `words`: the candidates, then the directive line.
    public static func answer(_ words: [String]) -> String {
        let (candidates, directive) = complete(words, in: tree)
        return (candidates + [":\(directive.rawValue)"]).joined(separator: "\n") + "\n"
    }

    static func complete(_ words: [String], in root: CommandNode) -> ([String], Directive) {
        let current = words.last ?? ""
        var command = root
        var pendingOption: ArgumentNode?
        var positionals = 0
        var afterTerminator = false
        for word in words.dropLast() {
            if pendingOption != nil {
                pendingOption = nil
            } else if afterTerminator || !word.hasPrefix("-") || word == "-" {
                if positionals == 0, let sub = command.visibleSubcommands.first(where: { $0.commandName == word }) {
                    command = sub
                } else {
                    positionals += 1
                }
            } else if word == "--" {
                afterTerminator = true
            } else if !word.contains("="), let option = command.argument(named: word), option.kind == "option" {
                pendingOption = option
            }
        }

        if let option = pendingOption {
            return values(of: option, matching: current, prefix: "")
        }
        if !afterTerminator, current.hasPrefix("--"), let equals = current.firstIndex(of: "=") {
            let name = String(current[..<equals])
            guard let option = command.argument(named: name), option.kind == "option" else { return ([], .noFileCompletion) }
            return values(of: option, matching: String(current[current.index(after: equals)...]), prefix: name + "=")
        }
        if !afterTerminator, current.hasPrefix("-") {
            var flags: [String] = []
            for argument in command.visibleArguments where argument.kind != "positional" {
                for name in argument.names ?? [] {
                    let spelled = (name.kind == "long" ? "--" : "-") + name.name
                    if spelled.hasPrefix(current) { flags.append(line(spelled, argument.abstract)) }
                }
            }
            return (flags, .noFileCompletion)
        }
        if positionals == 0, !command.visibleSubcommands.isEmpty {
            let subcommands = command.visibleSubcommands
                .filter { $0.commandName.hasPrefix(current) }
                .map { line($0.commandName, $0.abstract) }
            return (subcommands, .noFileCompletion)
        }
        // A positional argument: a plan file, a run directory or a path to check.
        let positional = command.visibleArguments.filter { $0.kind == "positional" }
        if positionals < positional.count, let values = positional[positionals].allValues, !values.isEmpty {
            return (values.filter { $0.hasPrefix(current) }, .noFileCompletion)
        }
        return ([], .default)
    }

    private static func values(of option: ArgumentNode, matching current: String, prefix: String) -> ([String], Directive) {
        guard let values = option.allValues, !values.isEmpty else { return ([], .default) }
        return (values.filter { $0.hasPrefix(current) }.map { prefix + $0 }, .noFileCompletion)
    }

    /// `candidate<TAB>description`: Cobra's shells show the description beside the candidate.
    private static func line(_ candidate: String, _ description: String?) -> String {
        guard let description, !description.isEmpty else { return candidate }
        let oneLine = description.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        return candidate + "\t" + oneLine.replacingOccurrences(of: "\t", with: " ")
    }

    /// The command tree as `repave --experimental-dump-help` prints it, read in-process.
    static var tree: CommandNode {
        let json: String
        do {
            _ = try RepaveCommand.parseAsRoot(["--experimental-dump-help"])
            json = ""
        } catch {
            json = RepaveCommand.fullMessage(for: error)
        }
        do {
            return try JSONDecoder().decode(ToolInfo.self, from: Data(json.utf8)).command
        } catch {
            // Only if ArgumentParser changes its dump format (the completion tests would fail):
            // offer nothing rather than print an error into the user's command line.
            return CommandNode(commandName: "repave", shouldDisplay: true, abstract: nil, subcommands: nil, arguments: nil)
        }
    }
}

/// The parts of ArgumentParser's `ToolInfoV0` (serialization version 0) that completion reads.
struct ToolInfo: Decodable {
    var command: CommandNode
}

struct CommandNode: Decodable {
    var commandName: String
    var shouldDisplay: Bool?
    var abstract: String?
    var subcommands: [CommandNode]?
    var arguments: [ArgumentNode]?

    var visibleSubcommands: [CommandNode] { (subcommands ?? []).filter { $0.shouldDisplay ?? true } }
    var visibleArguments: [ArgumentNode] { (arguments ?? []).filter(\.shouldDisplay) }

    func argument(named spelled: String) -> ArgumentNode? {
        visibleArguments.first { argument in
            (argument.names ?? []).contains { ($0.kind == "long" ? "--" : "-") + $0.name == spelled }
        }
    }
}

struct ArgumentNode: Decodable {
    struct Name: Decodable {
        var kind: String
        var name: String
    }

    var kind: String
    var shouldDisplay: Bool
    var names: [Name]?
    var abstract: String?
    var allValues: [String]?
}
