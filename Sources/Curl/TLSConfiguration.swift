import Foundation

/// How a session authenticates the server and itself.
///
/// Verification is always on: the only way to turn it off is ``PeerVerification/disabledByKubeconfig``,
/// which callers pass only when a kubeconfig says `insecure-skip-tls-verify: true` explicitly.
public struct TLSConfiguration: Sendable, Equatable {
    public enum Trust: Sendable, Equatable {
        /// The system's CA bundle (a kubeconfig that names no CA).
        case system
        /// Only the CA(s) in this PEM file; the system bundle is not consulted.
        case caFile(String)
        /// Only the CA(s) in this in-memory PEM; the system bundle is not consulted.
        case caPEM(Data)
    }

    /// A certificate or key, from a file or from memory (kubeconfig `*-data`).
    public enum Material: Sendable, Equatable {
        case file(String)
        case pem(Data)
    }

    public enum PeerVerification: Sendable, Equatable {
        case verify
        /// The kubeconfig explicitly set `insecure-skip-tls-verify: true`.
        case disabledByKubeconfig
    }

    public var trust: Trust
    public var clientCertificate: Material?
    public var clientKey: Material?
    /// kubeconfig `tls-server-name`: the name sent in SNI and checked against the certificate,
    /// when it differs from the host in the server URL.
    public var serverName: String?
    public var verification: PeerVerification

    public init(
        trust: Trust = .system,
        clientCertificate: Material? = nil,
        clientKey: Material? = nil,
        serverName: String? = nil,
        verification: PeerVerification = .verify
    ) {
        self.trust = trust
        self.clientCertificate = clientCertificate
        self.clientKey = clientKey
        self.serverName = serverName
        self.verification = verification
    }
}
