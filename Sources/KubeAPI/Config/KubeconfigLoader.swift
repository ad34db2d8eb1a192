import Curl
import Foundation

/// Finds and resolves the configuration kubectl would use:
/// `--kubeconfig`, else `KUBECONFIG` (a colon-separated list merged first-wins per name), else
/// `~/.kube/config`, else the in-cluster service account. `--context` overrides current-context.
public struct KubeconfigLoader: Sendable {
    public var explicitPath: String?
    public var context: String?
    public var environment: [String: String]
    public var homeDirectory: String
    public var serviceAccountDirectory: String

    public init(
        explicitPath: String? = nil,
        context: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        homeDirectory: String = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory(),
        serviceAccountDirectory: String = "/var/run/secrets/kubernetes.io/serviceaccount"
    ) {
        self.explicitPath = explicitPath
        self.context = context
        self.environment = environment
        self.homeDirectory = homeDirectory
        self.serviceAccountDirectory = serviceAccountDirectory
    }

    /// The files that would be read, in precedence order, and whether they came from the
    /// environment (missing ones are skipped then, as kubectl skips them).
    public func candidateFiles() -> (files: [String], explicit: Bool) {
        if let explicitPath, !explicitPath.isEmpty { return ([explicitPath], true) }
        if let list = environment["KUBECONFIG"], !list.isEmpty {
            var seen = Set<String>()
            let files = list.split(separator: ":").map(String.init).filter { !$0.isEmpty && seen.insert($0).inserted }
            return (files, false)
        }
        return ([homeDirectory + "/.kube/config"], false)
    }

    public func load() throws(KubeconfigError) -> ClusterConnection {
        let (files, explicit) = candidateFiles()
        var configs: [Kubeconfig] = []
        for file in files {
            if !FileManager.default.fileExists(atPath: file) {
                if explicit {
                    throw KubeconfigError(file: file, problem: "no such file", hint: "check the --kubeconfig path")
                }
                continue
            }
            configs.append(try Kubeconfig.load(contentsOf: file))
        }
        if configs.isEmpty {
            if context == nil, let inCluster = try inClusterConnection() { return inCluster }
            throw KubeconfigError(
                file: nil, problem: "no kubeconfig found (looked for \(files.joined(separator: ", ")))",
                hint: "pass --kubeconfig FILE, set KUBECONFIG, or create ~/.kube/config")
        }
        return try resolve(merge(configs), files: configs.map(\.file))
    }

    /// client-go's merge: the first file to define a name wins; the first non-empty
    /// current-context wins.
    func merge(_ configs: [Kubeconfig]) -> Kubeconfig {
        var merged = Kubeconfig(file: configs[0].file)
        for config in configs {
            if merged.currentContext == nil { merged.currentContext = config.currentContext }
            merged.clusters.merge(config.clusters) { first, _ in first }
            merged.users.merge(config.users) { first, _ in first }
            merged.contexts.merge(config.contexts) { first, _ in first }
            merged.warnings += config.warnings
        }
        return merged
    }

    func resolve(_ config: Kubeconfig, files: [String]) throws(KubeconfigError) -> ClusterConnection {
        let where_ = files.joined(separator: ":")
        guard let contextName = context ?? config.currentContext else {
            throw KubeconfigError(
                file: where_, key: "current-context", problem: "no current-context is set",
                hint: "pass --context NAME (contexts: \(config.contexts.keys.sorted().joined(separator: ", ")))")
        }
        guard let context = config.contexts[contextName] else {
            throw KubeconfigError(
                file: where_, key: context == nil ? "current-context" : nil,
                problem: "context '\(contextName)' not found",
                hint: config.contexts.isEmpty ? "the file defines no contexts" : "known contexts: \(config.contexts.keys.sorted().joined(separator: ", "))")
        }
        guard let cluster = config.clusters[context.cluster] else {
            throw context.origin.error(
                "context.cluster", context.cluster.isEmpty ? "context names no cluster" : "cluster '\(context.cluster)' not found",
                hint: "known clusters: \(config.clusters.keys.sorted().joined(separator: ", "))")
        }
        var user: Kubeconfig.User?
        if !context.user.isEmpty {
            guard let found = config.users[context.user] else {
                throw context.origin.error(
                    "context.user", "user '\(context.user)' not found",
                    hint: "known users: \(config.users.keys.sorted().joined(separator: ", "))")
            }
            user = found
        }

        var warnings = config.warnings
        guard let server = cluster.server, !server.isEmpty else {
            throw cluster.origin.error("cluster.server", "no server is set")
        }
        guard server.hasPrefix("https://") || server.hasPrefix("http://") else {
            throw cluster.origin.error("cluster.server", "server '\(server)' is not an http(s) URL")
        }
        if let proxy = cluster.proxyURL, !proxy.isEmpty {
            throw cluster.origin.error(
                "cluster.proxy-url", "proxy-url is not supported by repave",
                hint: "run repave from a machine that reaches the API server directly, or remove proxy-url from a copy of the kubeconfig")
        }

        var tls = TLSConfiguration(serverName: cluster.tlsServerName)
        var caSource = "system trust store"
        if cluster.certificateAuthority != nil && cluster.certificateAuthorityData != nil {
            throw cluster.origin.error("cluster", "certificate-authority and certificate-authority-data are both set", hint: "keep one")
        }
        if let data = cluster.certificateAuthorityData {
            tls.trust = .caPEM(data)
            caSource = "certificate-authority-data in \(cluster.origin.file)"
        } else if let path = cluster.certificateAuthority, !path.isEmpty {
            try requireReadable(path, cluster.origin, "cluster.certificate-authority")
            tls.trust = .caFile(path)
            caSource = "file \(path)"
        }
        if cluster.insecureSkipTLSVerify {
            if case .system = tls.trust {} else {
                throw cluster.origin.error(
                    "cluster.insecure-skip-tls-verify", "insecure-skip-tls-verify cannot be combined with a certificate authority",
                    hint: "remove one of them; verifying against the CA is the safe choice")
            }
            tls.verification = .disabledByKubeconfig
            caSource = "none: insecure-skip-tls-verify is true"
            warnings.append("TLS verification is off for cluster '\(cluster.name)': \(cluster.origin.file) sets insecure-skip-tls-verify: true")
        }

        var authentication = ClusterConnection.Authentication.none
        if let user {
            authentication = try authenticationMethod(for: user, tls: &tls)
        }
        return ClusterConnection(
            contextName: context.name, clusterName: cluster.name, userName: user?.name ?? "",
            namespace: context.namespace ?? "default", server: server, tls: tls,
            authentication: authentication,
            impersonateUser: user?.impersonate, impersonateGroups: user?.impersonateGroups ?? [],
            provenance: .init(context: context.origin.description, cluster: cluster.origin.description,
                              user: user?.origin.description ?? "", certificateAuthority: caSource),
            isInCluster: false, warnings: warnings)
    }

    private func authenticationMethod(for user: Kubeconfig.User, tls: inout TLSConfiguration) throws(KubeconfigError) -> ClusterConnection.Authentication {
        let origin = user.origin
        if let provider = user.authProvider {
            throw origin.error("user.auth-provider", "auth-provider '\(provider)' is not supported (kubectl removed them too)",
                               hint: "use an exec credential plugin instead (e.g. kubelogin, gke-gcloud-auth-plugin)")
        }
        if user.clientCertificate != nil && user.clientCertificateData != nil {
            throw origin.error("user", "client-certificate and client-certificate-data are both set", hint: "keep one")
        }
        if user.clientKey != nil && user.clientKeyData != nil {
            throw origin.error("user", "client-key and client-key-data are both set", hint: "keep one")
        }
        let hasCertificate = user.clientCertificate != nil || user.clientCertificateData != nil
        let hasKey = user.clientKey != nil || user.clientKeyData != nil
        if hasCertificate != hasKey {
            throw origin.error("user", hasCertificate ? "client-certificate is set without client-key" : "client-key is set without client-certificate")
        }
        if let path = user.clientCertificate {
            try requireReadable(path, origin, "user.client-certificate")
            tls.clientCertificate = .file(path)
        } else if let data = user.clientCertificateData {
            tls.clientCertificate = .pem(data)
        }
        if let path = user.clientKey {
            try requireReadable(path, origin, "user.client-key")
            tls.clientKey = .file(path)
        } else if let data = user.clientKeyData {
            tls.clientKey = .pem(data)
        }

        let token = user.token.flatMap { $0.isEmpty ? nil : $0 }
        let hasBasic = !(user.username ?? "").isEmpty || !(user.password ?? "").isEmpty
        var methods: [String] = []
        if token != nil || user.tokenFile != nil { methods.append("token") }
        if hasBasic { methods.append("basic auth") }
        if methods.count > 1 {
            throw origin.error("user", "more than one authentication method: \(methods.joined(separator: ", "))", hint: "keep one")
        }
        // client-go consults an exec plugin only when no token, basic auth or client
        // certificate is configured beside it.
        if let token { return .token(token) }
        if let path = user.tokenFile {
            try requireReadable(path, origin, "user.tokenFile")
            return .tokenFile(path)
        }
        if hasBasic { return .basic(username: user.username ?? "", password: user.password ?? "") }
        if hasCertificate { return .clientCertificate }
        if let exec = user.exec { return .exec(exec) }
        return .none
    }

    private func requireReadable(_ path: String, _ origin: Kubeconfig.Origin, _ key: String) throws(KubeconfigError) {
        guard FileManager.default.isReadableFile(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw origin.error(key, exists ? "\(path): permission denied" : "\(path): no such file",
                               hint: "relative paths are resolved against the kubeconfig file's directory")
        }
    }

    /// The pod's service account, as client-go's InClusterConfig reads it.
    func inClusterConnection() throws(KubeconfigError) -> ClusterConnection? {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], let port = environment["KUBERNETES_SERVICE_PORT"],
              !host.isEmpty, !port.isEmpty
        else { return nil }
        let tokenPath = serviceAccountDirectory + "/token"
        let caPath = serviceAccountDirectory + "/ca.crt"
        guard FileManager.default.isReadableFile(atPath: tokenPath) else {
            throw KubeconfigError(file: tokenPath, problem: "running in a cluster (KUBERNETES_SERVICE_HOST is set) but the service account token is not readable",
                                  hint: "mount a service account token or pass --kubeconfig")
        }
        let namespace = (try? String(contentsOfFile: serviceAccountDirectory + "/namespace", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let hostPart = host.contains(":") ? "[\(host)]" : host
        var tls = TLSConfiguration()
        var caSource = "system trust store"
        if FileManager.default.isReadableFile(atPath: caPath) {
            tls.trust = .caFile(caPath)
            caSource = "file \(caPath)"
        }
        return ClusterConnection(
            contextName: "in-cluster", clusterName: "in-cluster", userName: "service account",
            namespace: namespace.flatMap { $0.isEmpty ? nil : $0 } ?? "default",
            server: "https://\(hostPart):\(port)", tls: tls, authentication: .tokenFile(tokenPath),
            impersonateUser: nil, impersonateGroups: [],
            provenance: .init(context: "in-cluster", cluster: "KUBERNETES_SERVICE_HOST/PORT", user: serviceAccountDirectory, certificateAuthority: caSource),
            isInCluster: true, warnings: [])
    }
}
