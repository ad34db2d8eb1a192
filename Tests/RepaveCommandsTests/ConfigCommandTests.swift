import Foundation
import RepaveTestSupport
import Testing

/// `repave config` against the lab's kubeconfigs: what it shows, and what it never shows.
@Suite("repave config")
struct ConfigCommandTests {
    let lab: Lab
    init() throws { lab = try Lab.current() }

    func repave(_ arguments: [String], environment: [String: String?] = [:]) async throws -> ProcessResult {
        try await runProcess(try repaveBinary(), arguments, environment: environment)
    }

    @Test("text: context, cluster, server, user, auth and CA with the file each came from")
    func text() async throws {
        let result = try await repave(["config", "--kubeconfig", lab.adminKubeconfig])
        #expect(result.status == 0, "\(result.standardError)")
        let lines = result.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines.contains("context     admin@lab  (\(lab.adminKubeconfig):14)"))
        #expect(lines.contains("server      \(lab.apiURL)"))
        #expect(lines.contains("auth        client certificate"))
        #expect(lines.contains("TLS         verified"))
        #expect(lines.contains("CA          certificate-authority-data in \(lab.adminKubeconfig)"))
    }

    @Test("json, from KUBECONFIG, with the token user: no token anywhere in the output")
    func jsonWithoutSecrets() async throws {
        let tokenKubeconfig = try lab.value("TOKEN_KUBECONFIG")
        let result = try await repave(["config", "-o", "json"], environment: ["KUBECONFIG": tokenKubeconfig])
        #expect(result.status == 0, "\(result.standardError)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        #expect(object["auth"] as? String == "bearer token")
        #expect(object["user"] as? String == "token-user")
        #expect(object["kubeconfigFiles"] as? [String] == [tokenKubeconfig])
        let token = try lab.token()
        #expect(!result.standardOutput.contains(token))
        #expect(!result.standardError.contains(token))
    }

    @Test("a missing context exits 5 naming the file and the known contexts")
    func missingContext() async throws {
        let result = try await repave(["config", "--kubeconfig", lab.adminKubeconfig, "--context", "prod"])
        #expect(result.status == 5)
        #expect(result.standardError == "error[kubeconfig.invalid]: cannot use the kubeconfig: \(lab.adminKubeconfig): context 'prod' not found\nhint: known contexts: admin@lab\n")
    }

    @Test("no kubeconfig at all is an error, never a silent default")
    func nothingFound() async throws {
        let home = try ScratchDirectory()
        let result = try await repave(["config"], environment: ["HOME": home.path, "KUBECONFIG": nil, "KUBERNETES_SERVICE_HOST": nil])
        #expect(result.status == 5)
        #expect(result.standardError.hasPrefix("error[kubeconfig.invalid]: cannot use the kubeconfig: no kubeconfig found (looked for \(home.path)/.kube/config)"))
    }
}
