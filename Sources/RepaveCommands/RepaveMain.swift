import ArgumentParser
import Foundation
import RepaveCore

/// The process entry point: parses, bootstraps logging, runs the command, renders any error once
/// and maps it to an exit status.
public enum RepaveMain {
    public static func main() async -> Never {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let words = KubectlCompletion.words(invokedAs: CommandLine.arguments.first, arguments: arguments) {
            FileHandle.standardOutput.write(Data(KubectlCompletion.answer(words).utf8))
            exit(0)
        }
        let status = await run(arguments)
        exit(status)
    }

    public static func run(_ arguments: [String]) async -> Int32 {
        let json = wantsJSON(arguments)
        let command: any ParsableCommand
        do {
            command = try RepaveCommand.parseAsRoot(arguments)
        } catch {
            return renderParseError(error, json: json)
        }
        if let options = (command as? any GlobalOptionsCarrier)?.global {
            LoggingBootstrap.configure(level: options.logLevel)
        } else {
            LoggingBootstrap.configure(level: .notice)
        }
        do {
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                var syncCommand = command
                try syncCommand.run()
            }
            return ExitStatus.success.rawValue
        } catch let exit as ExitCode {
            return exit.rawValue
        } catch let error where ErrorRenderer.isOurs(error) {
            let failure = ErrorRenderer.userFacing(error)
            emit(failure, json: json)
            return failure.exitStatus.rawValue
        } catch {
            // ArgumentParser ends --help (and a few other outcomes) by throwing from run().
            return renderParseError(error, json: json)
        }
    }

    /// ArgumentParser's own outcomes: --help and --version exit 0 on stdout; a usage error is
    /// rendered like every other error and exits 64; anything else is an internal error.
    private static func renderParseError(_ error: any Error, json: Bool) -> Int32 {
        let code = RepaveCommand.exitCode(for: error)
        if code == .success {
            print(RepaveCommand.fullMessage(for: error))
            return 0
        }
        guard code == .validationFailure else {
            let failure = ErrorRenderer.userFacing(error)
            emit(failure, json: json)
            return failure.exitStatus.rawValue
        }
        let failure = RepaveError(.usage, RepaveCommand.message(for: error), hint: "see 'repave --help'")
        emit(failure, json: json)
        return ExitStatus.usage.rawValue
    }

    private static func emit(_ error: any UserFacingError, json: Bool) {
        if json {
            FileHandle.standardOutput.write(Data(ErrorRenderer.json(error).utf8))
        } else {
            FileHandle.standardError.write(Data(ErrorRenderer.text(error).utf8))
        }
    }

    /// `-o json` as the user typed it, read before parsing so that even a usage error honours it.
    static func wantsJSON(_ arguments: [String]) -> Bool {
        for (index, argument) in arguments.enumerated() {
            if argument == "--" { break }
            if argument == "-ojson" || argument == "--output=json" { return true }
            if argument == "-o" || argument == "--output", index + 1 < arguments.count {
                if arguments[index + 1] == "json" { return true }
            }
        }
        return false
    }
}

/// A command whose global options the entry point reads (to bootstrap logging first).
protocol GlobalOptionsCarrier {
    var global: GlobalOptions { get }
}

extension RepaveCommand: GlobalOptionsCarrier {}
extension ConfigCommand: GlobalOptionsCarrier {}
