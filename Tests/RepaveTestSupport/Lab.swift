import Foundation

/// The lab cluster `make test` brings up (`scripts/lab up`), found through `REPAVE_LAB_DIR`.
///
/// An integration test run without it fails with a message saying how to start it: it is never
/// skipped silently.
public struct Lab: Sendable {
    public struct NotRunning: Error, CustomStringConvertible {
        public let detail: String
        public var description: String { "lab not running: run `make test` or `scripts/lab up` (\(detail))" }
    }

    public let directory: String
    private let values: [String: String]

    public static func current() throws -> Lab {
        try find("REPAVE_LAB_DIR")
    }

    /// The lab with a real node (`LAB_NODES=real scripts/lab up`, which `make test` also starts),
    /// found through `REPAVE_NODE_LAB_DIR`: pods run real processes, volumes hold real bytes. A
    /// data test run without it fails with the same "lab not running" message, never a skip.
    public static func realNode() throws -> Lab {
        let lab = try find("REPAVE_NODE_LAB_DIR")
        guard lab.values["LAB_NODES"] == "real" else {
            throw NotRunning(detail: "\(lab.directory) is a simulated lab; REPAVE_NODE_LAB_DIR must name one started with LAB_NODES=real")
        }
        return lab
    }

    private static func find(_ variable: String) throws -> Lab {
        guard let directory = ProcessInfo.processInfo.environment[variable], !directory.isEmpty else {
            throw NotRunning(detail: "\(variable) is not set")
        }
        let envFile = directory + "/cluster.env"
        guard let text = try? String(contentsOfFile: envFile, encoding: .utf8) else {
            throw NotRunning(detail: "\(envFile) is missing")
        }
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        if FileManager.default.fileExists(atPath: directory + "/node.env"),
           let text = try? String(contentsOfFile: directory + "/node.env", encoding: .utf8) {
            for line in text.split(separator: "\n") {
                guard let equals = line.firstIndex(of: "=") else { continue }
                values[String(line[..<equals])] = String(line[line.index(after: equals)...])
            }
        }
        return Lab(directory: directory, values: values)
    }

    public func value(_ key: String) throws -> String {
        guard let value = values[key] else {
            throw NotRunning(detail: "cluster.env has no \(key); restart the lab with this checkout's scripts/lab")
        }
        return value
    }

    public var apiURL: String { values["API_URL"] ?? "" }
    public var caCertificate: String { values["CA_CERT"] ?? "" }
    public var adminCertificate: String { values["ADMIN_CERT"] ?? "" }
    public var adminKey: String { values["ADMIN_KEY"] ?? "" }
    public var restrictedCertificate: String { values["RESTRICTED_CERT"] ?? "" }
    public var restrictedKey: String { values["RESTRICTED_KEY"] ?? "" }
    /// A CA that did not sign the API server's certificate.
    public var otherCACertificate: String { values["OTHER_CA_CERT"] ?? "" }
    public var adminKubeconfig: String { values["ADMIN_KUBECONFIG"] ?? "" }

    /// The static token of `token-user` (first field of the token file).
    public func token() throws -> String {
        let file = try value("TOKEN_FILE")
        let text = try String(contentsOfFile: file, encoding: .utf8)
        guard let token = text.split(separator: ",").first else {
            throw NotRunning(detail: "\(file) holds no token")
        }
        return String(token)
    }
}
