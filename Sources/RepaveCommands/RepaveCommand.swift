import ArgumentParser
import Curl
import Git
import KubeAPI
import RepaveCore

/// `repave`: the root command. Subcommands arrive with their issues; each one includes
/// ``GlobalOptions`` through `@OptionGroup`.
public struct RepaveCommand: AsyncParsableCommand {
    public static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "repave",
            abstract: "Recreate a Kubernetes PersistentVolumeClaim on a better StorageClass, safely and resumably.",
            discussion: """
                Exit statuses: 0 done or nothing to do; 1 internal bug; 2 refused before changing \
                anything; 3 stopped mid-run (resume is safe); 4 journal locked, corrupt or resume refused; \
                5 cannot load the kubeconfig or reach the cluster; 64 usage; 130/143 interrupted.
                """,
            version: "repave \(BuildVersion.full) (libcurl \(HTTPSession.curlVersion), libgit2 \(GitLibrary.version))",
            subcommands: [PlanCommand.self, RunCommand.self, ResumeCommand.self, AbortCommand.self, RollbackCommand.self, FinalizeCommand.self, StatusCommand.self, RunbookCommand.self, JournalCommand.self, ConfigCommand.self, GitCheckCommand.self, AuditCommand.self]
        )
    }

    @OptionGroup public var global: GlobalOptions

    public init() {}

    public func run() async throws {
        print(RepaveCommand.helpMessage())
    }
}
