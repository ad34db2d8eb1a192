import Curl
import Foundation
import Logging
import Subprocess
import SystemPackage

/// Supplies the `Authorization` for each request: a static token, a token file re-read whenever
/// it changes, or an exec plugin's credential cached until it expires (and re-fetched after a 401).
actor CredentialSource {
    private let authentication: ClusterConnection.Authentication
    private let clusterInfo: JSON
    private let logger: Logger

    private var tokenFileCache: (stamp: FileStamp, token: String)?
    private var execCache: (token: String, expires: Date?)?
    private var execRun: Task<(token: String, expires: Date?), any Error>?
    /// How many times the exec plugin ran (tests check the cache with it).
    private(set) var execRuns = 0

    init(connection: ClusterConnection, logger: Logger) {
        authentication = connection.authentication
        // What client-go passes a plugin with provideClusterInfo: server, CA, TLS settings.
        var cluster: JSON = ["server": .string(connection.server)]
        switch connection.tls.trust {
        case .caPEM(let pem): cluster["certificate-authority-data"] = .string(pem.base64EncodedString())
        case .caFile(let path):
            if let pem = FileManager.default.contents(atPath: path) { cluster["certificate-authority-data"] = .string(pem.base64EncodedString()) }
        case .system: break
        }
        if connection.tls.verification == .disabledByKubeconfig { cluster["insecure-skip-tls-verify"] = true }
        if let name = connection.tls.serverName { cluster["tls-server-name"] = .string(name) }
        clusterInfo = cluster
        self.logger = logger
    }

    /// Whether a 401 may be cured by fetching a fresh credential.
    nonisolated var canRefresh: Bool {
        switch authentication {
        case .exec, .tokenFile: true
        default: false
        }
    }

    func authorization() async throws -> HTTPAuthorization? {
        switch authentication {
        case .none, .clientCertificate: return nil
        case .token(let token): return .bearer(token)
        case .basic(let username, let password): return .basic(username: username, password: password)
        case .tokenFile(let path): return .bearer(try readTokenFile(path))
        case .exec(let exec):
            if let cached = execCache, cached.expires.map({ $0.timeIntervalSinceNow > 10 }) ?? true {
                return .bearer(cached.token)
            }
            // Concurrent first requests share one plugin run (it may open a browser login).
            if let running = execRun { return .bearer(try await running.value.token) }
            let running = Task { try await self.run(exec) }
            execRun = running
            defer { execRun = nil }
            let credential = try await running.value
            execCache = credential
            return .bearer(credential.token)
        }
    }

    /// Forget cached credentials after a 401: the next request fetches new ones.
    func invalidate() {
        execCache = nil
        tokenFileCache = nil
    }

    private struct FileStamp: Equatable {
        var modified: Date?
        var size: Int?
    }

    private func readTokenFile(_ path: String) throws -> String {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        let stamp = FileStamp(modified: attributes?[.modificationDate] as? Date, size: attributes?[.size] as? Int)
        if let cached = tokenFileCache, cached.stamp == stamp { return cached.token }
        let token: String
        do {
            token = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            throw KubeconfigError(file: path, key: "tokenFile", problem: "cannot read the token file: \(describe(error))")
        }
        guard !token.isEmpty else { throw KubeconfigError(file: path, key: "tokenFile", problem: "the token file is empty") }
        tokenFileCache = (stamp, token)
        return token
    }

    private func run(_ exec: ExecConfig) async throws -> (token: String, expires: Date?) {
        execRuns += 1
        var spec: JSON = ["interactive": false]
        if exec.provideClusterInfo { spec["cluster"] = clusterInfo }
        let info: JSON = ["apiVersion": .string(exec.apiVersion), "kind": "ExecCredential", "spec": spec]
        var environment: [Environment.Key: String?] = ["KUBERNETES_EXEC_INFO": String(decoding: info.encoded(), as: UTF8.self)]
        for variable in exec.env {
            if let key = Environment.Key(rawValue: variable.name) { environment[key] = variable.value }
        }
        let executable: Executable = exec.command.contains("/") ? .path(FilePath(exec.command)) : .name(exec.command)
        let problem = "exec credential plugin '\(exec.command)'"
        let result: ExecutionResult<Void, StringOutput<UTF8>, StringOutput<UTF8>>
        do {
            result = try await Subprocess.run(
                executable, arguments: Arguments(exec.args), environment: .inherit.updating(environment),
                output: .string(limit: 1 << 20), error: .string(limit: 64 << 10))
        } catch {
            throw KubeconfigError(file: nil, key: "user.exec.command", problem: "\(problem) could not be started: \(error)",
                                  hint: exec.installHint ?? "install it or fix the command in the kubeconfig")
        }
        guard case .exited(0) = result.terminationStatus else {
            let stderr = (result.standardError).trimmingCharacters(in: .whitespacesAndNewlines).suffix(400)
            throw KubeconfigError(file: nil, key: "user.exec", problem: "\(problem) failed (\(result.terminationStatus)): \(stderr)",
                                  hint: exec.installHint)
        }
        let (token, expires) = try exec.decodeCredential(result.standardOutput)
        logger.debug("exec credential plugin ran", metadata: ["command": "\(exec.command)", "expires": "\(expires.map { "\($0)" } ?? "never")"])
        return (token, expires)
    }
}

extension ExecConfig {
    /// An exec plugin's standard output → its token and expiry. Errors never quote the output,
    /// which may hold a credential.
    public func decodeCredential(_ output: String) throws -> (token: String, expires: Date?) {
        let problem = "exec credential plugin '\(command)'"
        guard let credential = try? JSON.decode(Data(output.utf8)), credential["kind"]?.stringValue == "ExecCredential" else {
            throw KubeconfigError(file: nil, key: "user.exec", problem: "\(problem) did not print an ExecCredential object")
        }
        let token = credential[path: "status", "token"]?.stringValue
        if let version = credential["apiVersion"]?.stringValue, version != apiVersion {
            // Quoted only when it has an API version's shape (group/vN, vNalphaM, vNbetaM) and is
            // not the token: the output may hold a credential.
            let shape = #/[a-z0-9.\-]{1,63}/v[0-9]{1,3}((alpha|beta)[0-9]{1,3})?/#
            let shown = version.wholeMatch(of: shape) != nil && version != token ? version : "(not an API version)"
            throw KubeconfigError(file: nil, key: "user.exec", problem: "\(problem) answered with apiVersion \(shown), expected \(apiVersion)")
        }
        guard let token, !token.isEmpty else {
            if credential[path: "status", "clientCertificateData"] != nil {
                throw KubeconfigError(file: nil, key: "user.exec", problem: "\(problem) returned a client certificate; repave supports token credentials from exec plugins only",
                                      hint: "configure the plugin to return a token, or use client-certificate-data in the kubeconfig")
            }
            throw KubeconfigError(file: nil, key: "user.exec", problem: "\(problem) returned no status.token")
        }
        var expires: Date?
        if let stamp = credential[path: "status", "expirationTimestamp"]?.stringValue {
            expires = try? Date(stamp, strategy: .iso8601)
        }
        return (token, expires)
    }
}
