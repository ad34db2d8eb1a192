import KubeAPI
import Logging
import RepaveCore

/// The client a command uses: the kubeconfig (`--kubeconfig`, `KUBECONFIG`, ~/.kube/config),
/// the context (`--context`, else the plan's, else the current one).
enum Cluster {
    static func connect(global: GlobalOptions, context: String?) throws -> KubeClient {
        let connection = try KubeconfigLoader(explicitPath: global.kubeconfig, context: global.context ?? context).load()
        return try KubeClient(connection: connection, userAgent: RepaveVersion.userAgent, logger: Logger(label: "repave"))
    }

    /// For commands that also work without a cluster: a kubeconfig problem's hint names the
    /// offline form of the command.
    static func connect(global: GlobalOptions, context: String?, offline command: String) throws -> KubeClient {
        do {
            return try connect(global: global, context: context)
        } catch where ErrorRenderer.isOurs(error) {
            let error = ErrorRenderer.userFacing(error)
            throw RepaveError(ErrorCode.all.first { $0.name == error.code } ?? .kubeconfigInvalid, error.message, causes: error.causes,
                              hint: (error.hint.map { $0 + "; " } ?? "") + "or without the cluster: \(command)", exitStatus: error.exitStatus)
        }
    }
}
