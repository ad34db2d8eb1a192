import Foundation

/// One kubeconfig file as kubectl reads it, with relative paths already resolved against the
/// file's own directory (client-go resolves them per file, before merging).
public struct Kubeconfig: Sendable {
    public struct Cluster: Sendable, Equatable {
        public var name: String
        public var server: String?
        public var certificateAuthority: String?
        public var certificateAuthorityData: Data?
        public var insecureSkipTLSVerify: Bool
        public var tlsServerName: String?
        public var proxyURL: String?
        /// Where it was defined, for messages and `repave config`.
        public var origin: Origin
    }

    public struct User: Sendable, Equatable {
        public var name: String
        public var clientCertificate: String?
        public var clientCertificateData: Data?
        public var clientKey: String?
        public var clientKeyData: Data?
        public var token: String?
        public var tokenFile: String?
        public var username: String?
        public var password: String?
        public var exec: ExecConfig?
        public var authProvider: String?
        public var impersonate: String?
        public var impersonateGroups: [String]
        public var origin: Origin
    }

    public struct Context: Sendable, Equatable {
        public var name: String
        public var cluster: String
        public var user: String
        public var namespace: String?
        public var origin: Origin
    }

    /// A place in a kubeconfig file: `~/.kube/config:14:3`, key `users[jeda]`.
    public struct Origin: Sendable, Equatable, CustomStringConvertible {
        public var file: String
        public var line: Int?
        public var key: String

        public var description: String { line.map { "\(file):\($0)" } ?? file }

        func error(_ subkey: String? = nil, _ problem: String, hint: String? = nil) -> KubeconfigError {
            KubeconfigError(file: file, line: line, key: subkey.map { "\(key).\($0)" } ?? key, problem: problem, hint: hint)
        }
    }

    public var file: String
    public var currentContext: String?
    public var clusters: [String: Cluster] = [:]
    public var users: [String: User] = [:]
    public var contexts: [String: Context] = [:]
    /// Things the operator should know about the file itself, such as others being able to read it.
    public var warnings: [String] = []

    /// The largest kubeconfig read. Real ones are kilobytes (a few hundred clusters with embedded
    /// certificates stay well under this); a bigger file is refused before any of it is read, so
    /// a wrong path (a disk image, /dev/zero) costs neither time nor memory.
    public static let maxBytes = 16 << 20

    /// Reads and parses `path`. Unknown keys are ignored, as kubectl ignores them; a key of the
    /// wrong type, bad base64 or a nameless entry is an error naming file, line and key.
    public static func load(contentsOf path: String) throws(KubeconfigError) -> Kubeconfig {
        let data: Data
        let mode: mode_t
        do {
            (data, mode) = try SmallFile.read(path, limit: maxBytes)
        } catch {
            switch error {
            case .tooLarge(let size):
                throw KubeconfigError(file: path, problem: "the file is \(size.map { "\($0) bytes" } ?? "over \(maxBytes) bytes"); a kubeconfig is at most \(maxBytes) bytes (16 MiB)",
                                      hint: "check that this is a kubeconfig file")
            case .missing:
                throw KubeconfigError(file: path, problem: "cannot read the file: no such file")
            case .unreadable(let reason):
                throw KubeconfigError(file: path, problem: "cannot read the file: \(reason)")
            }
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw KubeconfigError(file: path, problem: "the file is not UTF-8 text")
        }
        var config = try parse(text, file: path)
        if let exposure = SmallFile.exposure(of: mode) {
            // Helm warns the same way; kubectl writes its files 0600.
            config.warnings.append("\(path) is \(exposure) (mode \(String(format: "%04o", mode & 0o7777))); a kubeconfig holds credentials: chmod 600 \(path)")
        }
        return config
    }

    public static func parse(_ text: String, file: String) throws(KubeconfigError) -> Kubeconfig {
        var config = Kubeconfig(file: file)
        guard let root = try YAMLReader.parse(text, file: file), !root.isNull else { return config }
        guard root.node.mapping != nil else { throw root.fail("a kubeconfig must be a mapping (apiVersion, kind, clusters, users, contexts)") }
        // Paths are resolved as text: `URL(fileURLWithPath:)` without `isDirectory` stats the path
        // to find out, and parsing must touch no file the kubeconfig names (seen with strace on
        // fuzz/FuzzKubeconfig; KubeAPIFuzzRegressionTests.parsingTouchesNoFile).
        let directory = URL(fileURLWithPath: file, isDirectory: false).deletingLastPathComponent()
        func resolve(_ path: String?) -> String? {
            guard let path, !path.isEmpty else { return nil }
            return path.hasPrefix("/") ? path : URL(fileURLWithPath: path, isDirectory: false, relativeTo: directory).standardizedFileURL.path
        }

        config.currentContext = try root.string("current-context").flatMap { $0.isEmpty ? nil : $0 }

        for entry in try root.sequence("clusters") {
            let name = try entryName(entry)
            let item = entry.named(name)
            guard let body = try item.optional("cluster") else { throw item.fail("cluster '\(name)' has no 'cluster' mapping") }
            config.clusters[name] = Cluster(
                name: name,
                server: try body.string("server"),
                certificateAuthority: resolve(try body.string("certificate-authority")),
                certificateAuthorityData: try base64(body, "certificate-authority-data"),
                insecureSkipTLSVerify: try body.bool("insecure-skip-tls-verify") ?? false,
                tlsServerName: try body.string("tls-server-name").flatMap { $0.isEmpty ? nil : $0 },
                proxyURL: try body.string("proxy-url").flatMap { $0.isEmpty ? nil : $0 },
                origin: Origin(file: file, line: item.node.mark?.line, key: item.path))
        }

        for entry in try root.sequence("users") {
            let name = try entryName(entry)
            let item = entry.named(name)
            let body = try item.optional("user")
            var exec: ExecConfig?
            var certificateData: Data?, keyData: Data?, authProvider: String?
            if let body {
                if let execNode = try body.optional("exec") { exec = try ExecConfig.parse(execNode, resolve: resolve) }
                certificateData = try base64(body, "client-certificate-data")
                keyData = try base64(body, "client-key-data")
                if let provider = try body.optional("auth-provider") { authProvider = try provider.string("name") ?? "unnamed" }
            }
            config.users[name] = User(
                name: name,
                clientCertificate: resolve(try body?.string("client-certificate")),
                clientCertificateData: certificateData,
                clientKey: resolve(try body?.string("client-key")),
                clientKeyData: keyData,
                token: try body?.string("token").flatMap { $0.isEmpty ? nil : $0 },
                tokenFile: resolve(try body?.string("tokenFile")),
                username: try body?.string("username").flatMap { $0.isEmpty ? nil : $0 },
                password: try body?.string("password").flatMap { $0.isEmpty ? nil : $0 },
                exec: exec,
                authProvider: authProvider,
                impersonate: try body?.string("as"),
                impersonateGroups: try body?.strings("as-groups") ?? [],
                origin: Origin(file: file, line: item.node.mark?.line, key: item.path))
        }

        for entry in try root.sequence("contexts") {
            let name = try entryName(entry)
            let item = entry.named(name)
            guard let body = try item.optional("context") else { throw item.fail("context '\(name)' has no 'context' mapping") }
            config.contexts[name] = Context(
                name: name,
                cluster: try body.string("cluster") ?? "",
                user: try body.string("user") ?? "",
                namespace: try body.string("namespace").flatMap { $0.isEmpty ? nil : $0 },
                origin: Origin(file: file, line: item.node.mark?.line, key: item.path))
        }
        return config
    }

    private static func entryName(_ entry: YAMLReader) throws(KubeconfigError) -> String {
        guard let name = try entry.string("name"), !name.isEmpty else {
            throw entry.fail("entry has no name", hint: "every cluster, user and context needs 'name:'")
        }
        return name
    }

    private static func base64(_ reader: YAMLReader, _ key: String) throws(KubeconfigError) -> Data? {
        guard let text = try reader.string(key) else { return nil }
        let compact = text.filter { !$0.isWhitespace }
        guard let data = Data(base64Encoded: compact) else {
            throw (try reader.optional(key) ?? reader).fail("not valid base64", hint: "*-data keys hold base64 of the PEM file (base64 -w0 FILE)")
        }
        return data
    }
}

/// An `exec` credential plugin (client.authentication.k8s.io v1 or v1beta1).
public struct ExecConfig: Sendable, Equatable {
    public var command: String
    public var args: [String]
    public var env: [Variable]
    public var apiVersion: String
    public var installHint: String?
    public var provideClusterInfo: Bool
    public var interactiveMode: String?

    public struct Variable: Sendable, Equatable {
        public var name: String
        public var value: String
    }

    public static let supportedAPIVersions = ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"]

    static func parse(_ node: YAMLReader, resolve: (String?) -> String?) throws(KubeconfigError) -> ExecConfig {
        guard let command = try node.string("command"), !command.isEmpty else {
            throw node.fail("exec plugin has no command")
        }
        guard let apiVersion = try node.string("apiVersion"), !apiVersion.isEmpty else {
            throw node.fail("exec plugin has no apiVersion", hint: "use client.authentication.k8s.io/v1")
        }
        guard supportedAPIVersions.contains(apiVersion) else {
            throw node.fail("exec plugin apiVersion '\(apiVersion)' is not supported", hint: "use one of \(supportedAPIVersions.joined(separator: ", "))")
        }
        var env: [Variable] = []
        for item in try node.sequence("env") {
            guard let name = try item.string("name") else { throw item.fail("env entry has no name") }
            env.append(Variable(name: name, value: try item.string("value") ?? ""))
        }
        let interactiveMode = try node.string("interactiveMode")
        if apiVersion.hasSuffix("/v1"), interactiveMode == nil {
            throw node.fail("interactiveMode must be set for exec plugins of client.authentication.k8s.io/v1", hint: "add interactiveMode: Never")
        }
        if let mode = interactiveMode, !["Never", "IfAvailable", "Always"].contains(mode) {
            throw node.fail("interactiveMode '\(mode)' is not one of Never, IfAvailable, Always")
        }
        // A command with a slash is a path, relative to the kubeconfig's directory like any
        // other path in it; a bare name is looked up in PATH.
        let resolvedCommand = command.contains("/") ? (resolve(command) ?? command) : command
        return ExecConfig(
            command: resolvedCommand, args: try node.strings("args"), env: env, apiVersion: apiVersion,
            installHint: try node.string("installHint"),
            provideClusterInfo: try node.bool("provideClusterInfo") ?? false,
            interactiveMode: interactiveMode)
    }
}

func describe(_ error: any Error) -> String {
    if let cocoa = error as? CocoaError, let underlying = cocoa.userInfo[NSUnderlyingErrorKey] as? NSError,
       underlying.domain == NSPOSIXErrorDomain, let code = POSIXErrorCode(rawValue: Int32(underlying.code))
    {
        return String(cString: strerror(code.rawValue)).lowercased()
    }
    if let cocoa = error as? CocoaError {
        switch cocoa.code {
        case .fileReadNoSuchFile, .fileNoSuchFile: return "no such file"
        case .fileReadNoPermission: return "permission denied"
        default: break
        }
    }
    return "\(error)"
}
