import Curl
import Foundation

/// Everything needed to talk to one cluster as one user: the result of resolving kubeconfig
/// files (or the in-cluster service account) the way kubectl does.
public struct ClusterConnection: Sendable {
    public enum Authentication: Sendable, Equatable {
        case none
        /// The TLS client certificate in ``tls`` authenticates.
        case clientCertificate
        case token(String)
        /// A token re-read whenever the file changes (projected service-account tokens rotate).
        case tokenFile(String)
        case basic(username: String, password: String)
        case exec(ExecConfig)
    }

    /// Where each part came from, for `repave config` and error messages.
    public struct Provenance: Sendable, Equatable {
        public var context: String
        public var cluster: String
        public var user: String
        /// Where the trusted CA came from: a file, a `-data` key, the system bundle.
        public var certificateAuthority: String
    }

    public var contextName: String
    public var clusterName: String
    public var userName: String
    public var namespace: String
    public var server: String
    public var tls: TLSConfiguration
    public var authentication: Authentication
    public var impersonateUser: String?
    public var impersonateGroups: [String]
    public var provenance: Provenance
    public var isInCluster: Bool
    /// Things the operator should know, such as TLS verification being off.
    public var warnings: [String]

    /// How the user authenticates, without the secret: `client certificate (client-certificate-data)`.
    public var authenticationSummary: String {
        switch authentication {
        case .none: "none (anonymous)"
        case .clientCertificate: "client certificate"
        case .token: "bearer token"
        case .tokenFile(let path): "bearer token from file \(path)"
        case .basic(let username, _): "basic auth as \(username)"
        case .exec(let exec): "exec plugin \(exec.command) (\(exec.apiVersion))"
        }
    }
}
