import Curl
import Foundation
import RepaveTestSupport
import Testing

@testable import KubeAPI

/// Kubeconfig resolution agrees with `kubectl config view --minify --flatten` (the machine's
/// kubectl is the oracle) on many shapes, and every valid shape reaches the lab API server.
@Suite("kubeconfig resolution matches kubectl", .serialized)
struct KubeconfigVsKubectlTests {
    let lab: Lab
    let scratch: ScratchDirectory

    init() throws {
        lab = try Lab.current()
        scratch = try ScratchDirectory("repave-kubeconfig")
        try FileManager.default.createDirectory(atPath: scratch.file("pki"), withIntermediateDirectories: true)
        for (from, to) in [(lab.caCertificate, "ca.crt"), (lab.adminCertificate, "admin.crt"), (lab.adminKey, "admin.key")] {
            try FileManager.default.copyItem(atPath: from, toPath: scratch.file("pki/\(to)"))
        }
        try (try lab.token() + "\n").write(toFile: scratch.file("pki/token"), atomically: true, encoding: .utf8)
    }

    struct Shape {
        var files: [String: String]          // relative path → content
        var kubeconfigEnv: [String]? = nil   // relative paths joined into KUBECONFIG
        var explicit: String? = nil          // --kubeconfig
        var context: String? = nil
        var home = true                      // HOME = scratch (so ~/.kube/config is ours)

        /// The file kubectl resolves relative paths against.
        var primaryFile: String { explicit ?? kubeconfigEnv?.first ?? ".kube/config" }
    }

    func write(_ shape: Shape) throws {
        for (path, content) in shape.files {
            let full = scratch.file(path)
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try content.write(toFile: full, atomically: true, encoding: .utf8)
            // 0600 as kubectl writes kubeconfigs: a looser mode adds a warning to the connection.
            try FileManager.default.setAttributes([.posixPermissions: path.hasSuffix(".sh") ? 0o755 : 0o600], ofItemAtPath: full)
        }
    }

    func environment(_ shape: Shape) -> [String: String] {
        var env = ["HOME": scratch.path]
        if let list = shape.kubeconfigEnv { env["KUBECONFIG"] = list.map { scratch.file($0) }.joined(separator: ":") }
        return env
    }

    func loader(_ shape: Shape) -> KubeconfigLoader {
        KubeconfigLoader(explicitPath: shape.explicit.map { scratch.file($0) }, context: shape.context,
                         environment: environment(shape), homeDirectory: scratch.path,
                         serviceAccountDirectory: scratch.file("no-service-account"))
    }

    /// kubectl's view of the shape, or nil when kubectl refuses it.
    func kubectl(_ shape: Shape) async throws -> JSON? {
        var arguments = ["config", "view", "--minify", "--flatten", "-o", "json"]
        if let explicit = shape.explicit { arguments += ["--kubeconfig", scratch.file(explicit)] }
        if let context = shape.context { arguments += ["--context", context] }
        var env: [String: String?] = ["HOME": scratch.path, "KUBECONFIG": nil]
        for (key, value) in environment(shape) { env[key] = value }
        let result = try await runProcess("kubectl", arguments, environment: env)
        return result.status == 0 ? try JSON.decode(Data(result.standardOutput.utf8)) : nil
    }

    func pem(_ material: TLSConfiguration.Material?) throws -> Data? {
        switch material {
        case nil: nil
        case .pem(let data): data
        case .file(let path): try Data(contentsOf: URL(fileURLWithPath: path))
        }
    }

    /// Loads the shape both ways, compares field by field, and returns our connection.
    @discardableResult
    func agree(_ shape: Shape, _ comment: Comment) async throws -> ClusterConnection {
        try write(shape)
        let view = try #require(try await kubectl(shape), "kubectl refused the shape: \(comment)")
        let connection = try loader(shape).load()
        let cluster = try #require(view[path: "clusters"]?[0]?["cluster"])
        let user = view[path: "users"]?[0]?["user"] ?? [:]
        let context = try #require(view[path: "contexts"]?[0])

        #expect(connection.contextName == view["current-context"]?.stringValue, comment)
        #expect(connection.server == cluster["server"]?.stringValue, comment)
        #expect(connection.namespace == (context[path: "context", "namespace"]?.stringValue ?? "default"), comment)
        #expect(connection.tls.serverName == cluster["tls-server-name"]?.stringValue, comment)
        #expect((connection.tls.verification == .disabledByKubeconfig) == (cluster["insecure-skip-tls-verify"]?.boolValue ?? false), comment)
        switch connection.tls.trust {
        case .system: #expect(cluster["certificate-authority-data"] == nil, comment)
        case .caFile(let path): #expect(try Data(contentsOf: URL(fileURLWithPath: path)).base64EncodedString() == cluster["certificate-authority-data"]?.stringValue, comment)
        case .caPEM(let data): #expect(data.base64EncodedString() == cluster["certificate-authority-data"]?.stringValue, comment)
        }
        #expect(try pem(connection.tls.clientCertificate)?.base64EncodedString() == user["client-certificate-data"]?.stringValue, comment)
        #expect(try pem(connection.tls.clientKey)?.base64EncodedString() == user["client-key-data"]?.stringValue, comment)
        switch connection.authentication {
        case .token(let token): #expect(token == user["token"]?.stringValue, comment)
        case .tokenFile(let path):
            // kubectl's view keeps the path as written; resolve it as client-go does.
            let directory = URL(fileURLWithPath: scratch.file(shape.primaryFile)).deletingLastPathComponent()
            let theirs = URL(fileURLWithPath: user["tokenFile"]?.stringValue ?? "", relativeTo: directory).standardizedFileURL.path
            #expect(path == theirs, comment)
        case .exec(let exec):
            let theirs = try #require(user["exec"])
            // kubectl's view shows a relative command as written; both resolve it against the file.
            #expect(exec.command.hasSuffix(String((theirs["command"]?.stringValue ?? "").drop { $0 == "." })), comment)
            #expect(exec.args == (theirs["args"]?.arrayValue ?? []).compactMap(\.stringValue), comment)
            #expect(exec.apiVersion == theirs["apiVersion"]?.stringValue, comment)
            #expect(exec.env.map { "\($0.name)=\($0.value)" } == (theirs["env"]?.arrayValue ?? []).map { "\($0["name"]?.stringValue ?? "")=\($0["value"]?.stringValue ?? "")" }, comment)
        case .basic(let username, let password):
            #expect(username == user["username"]?.stringValue && password == user["password"]?.stringValue, comment)
        case .clientCertificate: #expect(user["client-certificate-data"] != nil, comment)
        case .none: #expect(user["token"] == nil && user["exec"] == nil && user["client-certificate-data"] == nil, comment)
        }
        return connection
    }

    /// Both kubectl and repave refuse the shape; returns repave's error.
    func bothRefuse(_ shape: Shape, _ comment: Comment) async throws -> KubeconfigError? {
        try write(shape)
        #expect(try await kubectl(shape) == nil, "kubectl accepted: \(comment)")
        return #expect(throws: KubeconfigError.self, comment) { try loader(shape).load() }
    }

    func reach(_ connection: ClusterConnection) async throws -> Int {
        let client = try KubeClient(connection: connection, userAgent: "repave-test/kubeconfig")
        let response = try await client.send(.init(.get, "/api/v1/namespaces/kube-system"))
        return response.status
    }

    // MARK: building blocks

    func cluster(_ name: String = "lab", server: String? = nil, extra: String = "") -> String {
        "- name: \(name)\n  cluster:\n    server: \(server ?? lab.apiURL)\n\(extra)"
    }
    var caData: String { (try? Data(contentsOf: URL(fileURLWithPath: lab.caCertificate)).base64EncodedString()) ?? "" }
    func context(_ name: String, cluster: String = "lab", user: String, namespace: String? = nil) -> String {
        "- name: \(name)\n  context:\n    cluster: \(cluster)\n    user: \(user)\n" + (namespace.map { "    namespace: \($0)\n" } ?? "")
    }
    func kubeconfig(clusters: [String] = [], users: [String] = [], contexts: [String] = [], current: String? = nil) -> String {
        var text = "apiVersion: v1\nkind: Config\n"
        if !clusters.isEmpty { text += "clusters:\n" + clusters.joined() }
        if !users.isEmpty { text += "users:\n" + users.joined() }
        if !contexts.isEmpty { text += "contexts:\n" + contexts.joined() }
        if let current { text += "current-context: \(current)\n" }
        return text
    }
    var adminFiles: String { "- name: admin\n  user:\n    client-certificate: ../pki/admin.crt\n    client-key: ../pki/admin.key\n" }

    // MARK: the shapes

    @Test("1. the lab's admin kubeconfig: inline certificate data")
    func inlineData() async throws {
        let text = try String(contentsOfFile: lab.adminKubeconfig, encoding: .utf8)
        let connection = try await agree(Shape(files: ["inline/config": text], explicit: "inline/config"), "inline data")
        #expect(try await reach(connection) == 200)
    }

    @Test("2. paths relative to the kubeconfig's directory")
    func relativePaths() async throws {
        let text = kubeconfig(clusters: [cluster(extra: "    certificate-authority: ../pki/ca.crt\n")], users: [adminFiles],
                              contexts: [context("admin@lab", user: "admin")], current: "admin@lab")
        let connection = try await agree(Shape(files: ["sub/config": text], kubeconfigEnv: ["sub/config"]), "relative paths")
        #expect(connection.tls.trust == .caFile(scratch.file("pki/ca.crt")))
        #expect(try await reach(connection) == 200)
    }

    @Test("3. a KUBECONFIG list merges first-wins per name and skips missing files")
    func mergedList() async throws {
        let first = kubeconfig(clusters: [cluster(extra: "    certificate-authority-data: \(caData)\n")])
        let second = kubeconfig(clusters: [cluster(server: "https://127.0.0.1:1", extra: "    certificate-authority-data: \(caData)\n")],
                                users: [adminFiles], contexts: [context("admin@lab", user: "admin")], current: "admin@lab")
        let shape = Shape(files: ["a/config": first, "b/config": second], kubeconfigEnv: ["a/config", "missing/config", "b/config"])
        let connection = try await agree(shape, "merged list")
        #expect(connection.server == lab.apiURL)
        #expect(connection.provenance.cluster.hasPrefix(scratch.file("a/config")))
        #expect(connection.provenance.user.hasPrefix(scratch.file("b/config")))
        #expect(try await reach(connection) == 200)
    }

    @Test("4. a static bearer token")
    func token() async throws {
        let text = kubeconfig(clusters: [cluster(extra: "    certificate-authority-data: \(caData)\n")],
                              users: ["- name: t\n  user:\n    token: \(try lab.token())\n"], contexts: [context("t@lab", user: "t")], current: "t@lab")
        let connection = try await agree(Shape(files: ["token/config": text], explicit: "token/config"), "token")
        #expect(connection.authenticationSummary == "bearer token")
        #expect(try await reach(connection) == 200)
    }

    @Test("5. tokenFile, relative, re-read when it changes")
    func tokenFile() async throws {
        let text = kubeconfig(clusters: [cluster(extra: "    certificate-authority-data: \(caData)\n")],
                              users: ["- name: t\n  user:\n    tokenFile: ../pki/token\n"], contexts: [context("t@lab", user: "t")], current: "t@lab")
        let connection = try await agree(Shape(files: ["tf/config": text], explicit: "tf/config"), "tokenFile")
        let client = try KubeClient(connection: connection, userAgent: "repave-test/kubeconfig")
        #expect(try await client.send(.init(.get, "/api/v1/namespaces/kube-system")).status == 200)
        try "not-a-valid-token\n".write(toFile: scratch.file("pki/token"), atomically: true, encoding: .utf8)
        let error = await #expect(throws: KubeAPIError.self) { try await client.send(.init(.get, "/api/v1/namespaces/kube-system")) }
        #expect(error?.reason == .unauthorized)
        try (try lab.token() + "\n").write(toFile: scratch.file("pki/token"), atomically: true, encoding: .utf8)
        #expect(try await client.send(.init(.get, "/api/v1/namespaces/kube-system")).status == 200)
    }

    @Test("6. an exec credential plugin: env, args and KUBERNETES_EXEC_INFO; cached; re-run after a 401")
    func execPlugin() async throws {
        // The plugin answers with a wrong token on its first run, then the lab's token.
        let script = """
            #!/bin/sh
            [ "$LAB_PLUGIN_MODE" = "lab" ] || { echo "LAB_PLUGIN_MODE not passed" >&2; exit 3; }
            [ "$1" = "--audience" ] || { echo "args not passed" >&2; exit 4; }
            echo "$KUBERNETES_EXEC_INFO" | grep -q '"kind":"ExecCredential"' || { echo "no exec info" >&2; exit 5; }
            count=$(cat "$0.count" 2>/dev/null || echo 0); echo $((count + 1)) > "$0.count"
            token=$(cat "$(dirname "$0")/../pki/token")
            [ "$count" = 0 ] && token=stale-token
            printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s","expirationTimestamp":"2099-01-01T00:00:00Z"}}' "$token"
            """
        let user = """
            - name: e
              user:
                exec:
                  apiVersion: client.authentication.k8s.io/v1
                  command: ./plugin.sh
                  args: [--audience, lab]
                  env: [{name: LAB_PLUGIN_MODE, value: lab}]
                  interactiveMode: Never
                  provideClusterInfo: true

            """
        let text = kubeconfig(clusters: [cluster(extra: "    certificate-authority-data: \(caData)\n")], users: [user],
                              contexts: [context("e@lab", user: "e")], current: "e@lab")
        let connection = try await agree(Shape(files: ["exec/config": text, "exec/plugin.sh": script], explicit: "exec/config"), "exec plugin")
        #expect(connection.authenticationSummary == "exec plugin \(scratch.file("exec/plugin.sh")) (client.authentication.k8s.io/v1)")
        // This kubectl is a version dispatcher that asks the server for its version first, which
        // runs the plugin; start the plugin's own count afresh.
        try? FileManager.default.removeItem(atPath: scratch.file("exec/plugin.sh.count"))
        let client = try KubeClient(connection: connection, userAgent: "repave-test/kubeconfig")
        #expect(try await client.send(.init(.get, "/api/v1/namespaces/kube-system")).status == 200)
        let fetches = await client.credentialFetches
        let runs = try String(contentsOfFile: scratch.file("exec/plugin.sh.count"), encoding: .utf8)
        #expect(fetches == 2, "stale token → 401 → re-run → 200")
        #expect(runs == "2\n")
        #expect(try await client.send(.init(.get, "/api/v1/namespaces/default")).status == 200)
        #expect(await client.credentialFetches == 2)   // cached until expirationTimestamp
    }

    @Test("7. --context overrides current-context")
    func contextOverride() async throws {
        let text = kubeconfig(clusters: [cluster(extra: "    certificate-authority-data: \(caData)\n")],
                              users: [adminFiles, "- name: t\n  user:\n    token: \(try lab.token())\n"],
                              contexts: [context("admin@lab", user: "admin"), context("t@lab", user: "t", namespace: "devpod")], current: "admin@lab")
        let connection = try await agree(Shape(files: ["ctx/config": text], explicit: "ctx/config", context: "t@lab"), "context override")
        #expect(connection.contextName == "t@lab")
        #expect(connection.namespace == "devpod")
        #expect(try await reach(connection) == 200)
    }

    @Test("8. tls-server-name and a context namespace")
    func serverNameAndNamespace() async throws {
        let text = kubeconfig(clusters: [cluster(extra: "    certificate-authority-data: \(caData)\n    tls-server-name: localhost\n")],
                              users: [adminFiles], contexts: [context("admin@lab", user: "admin", namespace: "devpod")], current: "admin@lab")
        let connection = try await agree(Shape(files: ["sni/config": text], explicit: "sni/config"), "tls-server-name")
        #expect(connection.tls.serverName == "localhost")
        #expect(try await reach(connection) == 200)
    }

    @Test("9. insecure-skip-tls-verify: true is honoured, warned about, and nothing else turns verification off")
    func insecure() async throws {
        let text = kubeconfig(clusters: [cluster(extra: "    insecure-skip-tls-verify: true\n")], users: [adminFiles],
                              contexts: [context("admin@lab", user: "admin")], current: "admin@lab")
        let connection = try await agree(Shape(files: ["insecure/config": text], explicit: "insecure/config"), "insecure")
        #expect(connection.warnings.count == 1)
        #expect(connection.provenance.certificateAuthority.contains("insecure-skip-tls-verify"))
        #expect(try await reach(connection) == 200)

        let off = kubeconfig(clusters: [cluster(extra: "    insecure-skip-tls-verify: false\n")], users: [adminFiles],
                             contexts: [context("admin@lab", user: "admin")], current: "admin@lab")
        let strict = try await agree(Shape(files: ["strict/config": off], explicit: "strict/config"), "insecure false")
        #expect(strict.tls.verification == .verify)
        let error = await #expect(throws: CurlError.self) { try await reach(strict) }
        #expect(error?.kind == .serverCertificateRejected)
    }

    @Test("10. --kubeconfig beats KUBECONFIG; ~/.kube/config is the default")
    func precedence() async throws {
        let good = kubeconfig(clusters: [cluster(extra: "    certificate-authority-data: \(caData)\n")], users: [adminFiles],
                              contexts: [context("admin@lab", user: "admin")], current: "admin@lab")
        let broken = "apiVersion: v1\nclusters: {this is not: a list}\n"
        let explicit = try await agree(Shape(files: ["p/config": good, "p/broken": broken], kubeconfigEnv: ["p/broken"], explicit: "p/config"), "explicit wins")
        #expect(try await reach(explicit) == 200)
        let home = kubeconfig(clusters: [cluster(extra: "    certificate-authority: ../pki/ca.crt\n")],
                              users: ["- name: admin\n  user:\n    client-certificate: ../pki/admin.crt\n    client-key: ../pki/admin.key\n"],
                              contexts: [context("home@lab", user: "admin")], current: "home@lab")
        let fromHome = try await agree(Shape(files: [".kube/config": home]), "home default")
        #expect(fromHome.contextName == "home@lab")
        #expect(try await reach(fromHome) == 200)
    }

    @Test("11. a missing context, user or cluster is refused by both, naming file and key")
    func missingParts() async throws {
        let text = kubeconfig(clusters: [cluster(extra: "    certificate-authority-data: \(caData)\n")], users: [adminFiles],
                              contexts: [context("admin@lab", user: "admin"), context("ghost-user", user: "ghost"),
                                         context("ghost-cluster", cluster: "nowhere", user: "admin")], current: "admin@lab")
        let files = ["m/config": text]
        let context = try await bothRefuse(Shape(files: files, explicit: "m/config", context: "nope"), "missing context")
        #expect(context?.problem == "context 'nope' not found")
        #expect(context?.file == scratch.file("m/config"))
        let user = try await bothRefuse(Shape(files: files, explicit: "m/config", context: "ghost-user"), "missing user")
        #expect(user?.key == "contexts[ghost-user].context.user")
        #expect(user?.problem == "user 'ghost' not found")
        #expect(user?.line != nil)
        let cluster = try await bothRefuse(Shape(files: files, explicit: "m/config", context: "ghost-cluster"), "missing cluster")
        #expect(cluster?.key == "contexts[ghost-cluster].context.cluster")
    }

    @Test("12. a missing --kubeconfig file or an unquoted YAML boolean is refused by both")
    func brokenFiles() async throws {
        let missing = try await bothRefuse(Shape(files: [:], explicit: "does/not/exist"), "missing explicit file")
        #expect(missing?.problem == "no such file")
        let norway = kubeconfig(clusters: [cluster(extra: "    certificate-authority-data: \(caData)\n")], users: [adminFiles],
                                contexts: [context("admin@lab", user: "admin", namespace: "no")], current: "admin@lab")
        let error = try await bothRefuse(Shape(files: ["n/config": norway], explicit: "n/config"), "namespace: no")
        #expect(error?.key == "contexts[admin@lab].context.namespace")
    }

    @Test("13. basic auth (username and password) resolves as kubectl reads it")
    func basicAuth() async throws {
        let text = kubeconfig(clusters: [cluster(extra: "    certificate-authority-data: \(caData)\n")],
                              users: ["- name: b\n  user:\n    username: jeda\n    password: 'hunter2'\n"],
                              contexts: [context("b@lab", user: "b")], current: "b@lab")
        let connection = try await agree(Shape(files: ["basic/config": text], explicit: "basic/config"), "basic auth")
        #expect(connection.authentication == .basic(username: "jeda", password: "hunter2"))
        #expect(connection.authenticationSummary == "basic auth as jeda")
    }

    @Test("14. in a pod: the service account's token, CA and namespace, when no kubeconfig exists")
    func inCluster() async throws {
        let account = scratch.file("serviceaccount")
        try FileManager.default.createDirectory(atPath: account, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: lab.caCertificate, toPath: account + "/ca.crt")
        try (try lab.token()).write(toFile: account + "/token", atomically: true, encoding: .utf8)
        try "devpod".write(toFile: account + "/namespace", atomically: true, encoding: .utf8)
        let port = try #require(URLComponents(string: lab.apiURL)?.port)
        let loader = KubeconfigLoader(
            environment: ["KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": String(port)],
            homeDirectory: scratch.file("empty-home"), serviceAccountDirectory: account)
        let connection = try loader.load()
        #expect(connection.isInCluster)
        #expect(connection.namespace == "devpod")
        #expect(connection.server == lab.apiURL)
        #expect(connection.authentication == .tokenFile(account + "/token"))
        #expect(try await reach(connection) == 200)
        // A context named on the command line never falls back to the service account.
        var named = loader
        named.context = "prod"
        #expect(throws: KubeconfigError.self) { try named.load() }
    }
}
