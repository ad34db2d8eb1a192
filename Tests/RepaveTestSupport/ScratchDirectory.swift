import Foundation
import KubeAPI

/// A temporary directory removed when the value goes away, even when the test throws.
public final class ScratchDirectory: Sendable {
    public let path: String

    public init(_ prefix: String = "repave-test") throws {
        let template = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix).XXXXXX").path
        var bytes = Array(template.utf8CString)
        guard let made = mkdtemp(&bytes) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: template])
        }
        path = String(cString: made)
    }

    public func file(_ name: String) -> String { path + "/" + name }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}

extension ScratchDirectory {
    /// The connection of a private (0600) kubeconfig written here, for a server nobody answers at
    /// (127.0.0.1:1): for a client whose requests the test serves itself, or never sends.
    public func unreachableConnection() throws -> ClusterConnection {
        let file = self.file("kubeconfig")
        try """
            apiVersion: v1
            kind: Config
            clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
            contexts: [{name: x, context: {cluster: c, user: ""}}]
            current-context: x
            """.write(toFile: file, atomically: true, encoding: .utf8)
        // Private, as a kubeconfig should be: the loader warns about anything looser.
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
        return try KubeconfigLoader(explicitPath: file).load()
    }
}
