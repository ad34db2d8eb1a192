import ArgumentParser
import Curl
import Foundation
import KubeAPI
import Subprocess
import SystemPackage

/// 200 sequential GETs of one object through KubeClient (one process, one connection) against
/// 200 `kubectl get -o json` runs of the same object, on the same lab, in one run.
struct ClientGet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client-get", abstract: "KubeClient GETs vs kubectl get, same object, same cluster.")

    @Option(help: "The admin kubeconfig of the lab to measure against.")
    var kubeconfig: String

    @Option(help: "Requests per side.")
    var count = 200

    @Option(help: "The kubectl to compare with.")
    var kubectl = "kubectl"

    func run() async throws {
        let connection = try KubeconfigLoader(explicitPath: kubeconfig).load()
        let client = try KubeClient(connection: connection, userAgent: "repave-bench/client-get")
        let clock = ContinuousClock()

        // The object: the kube-system namespace (exists in every cluster, a typical small GET).
        // Warm-up: TLS, the server's caches, first-request costs.
        for _ in 0..<20 { _ = try await client.get(.namespaces, named: "kube-system") }
        let start = clock.now
        for _ in 0..<count { _ = try await client.get(.namespaces, named: "kube-system") }
        let repave = clock.now - start
        let transport = client.transportConnectionsOpened

        // The floor under the client: the same GET through the bare HTTP session (no decoding,
        // no retry logic).
        let session = try HTTPSession(configuration: .init(tls: connection.tls, userAgent: "repave-bench/client-get"))
        let url = connection.server + "/api/v1/namespaces/kube-system"
        _ = try await session.perform(HTTPRequest(.get, url))
        let rawStart = clock.now
        for _ in 0..<count { _ = try await session.perform(HTTPRequest(.get, url)) }
        let raw = clock.now - rawStart

        for _ in 0..<3 { _ = try await runKubectl() }   // warm-up: page cache
        let kubectlStart = clock.now
        for _ in 0..<count { _ = try await runKubectl() }
        let kubectlTime = clock.now - kubectlStart

        let perRepave = repave / count
        let perKubectl = kubectlTime / count
        let ratio = Double(kubectlTime.components.seconds) + Double(kubectlTime.components.attoseconds) / 1e18
        let ratioBase = Double(repave.components.seconds) + Double(repave.components.attoseconds) / 1e18
        print("case: \(count) sequential GETs of namespaces/kube-system")
        print(row("", "repave (KubeClient)", "kubectl get -o json", "ratio"))
        print(row("total", format(repave), format(kubectlTime), String(format: "%.1fx", ratio / ratioBase)))
        print(row("per request", format(perRepave), format(perKubectl), ""))
        print(row("  transport only", format(raw / count), "", ""))
        print(row("TLS connections", "\(transport)", "\(count + 1) (one per process)", ""))
        let met = ratio / ratioBase >= 20 && transport == 1
        print("target: repave >= 20x faster with one TLS handshake: \(met ? "met" : "NOT met")")
        Report.summarize("client: \(count) GETs of one object", repave: "\(format(repave)), \(transport) TLS", alternative: "\(format(kubectlTime)), \(count + 1) TLS",
                         ratio: Report.ratio(ratioBase, ratio), target: "<= 0.05x, 1 TLS", met: met)
    }

    private func runKubectl() async throws -> Int {
        let result = try await Subprocess.run(
            kubectl.contains("/") ? .path(FilePath(kubectl)) : .name(kubectl), arguments: ["--kubeconfig", kubeconfig, "get", "namespace", "kube-system", "-o", "json"],
            output: .discarded, error: .discarded)
        guard case .exited(0) = result.terminationStatus else { throw ValidationError("kubectl failed: \(result.terminationStatus)") }
        return 0
    }

    private func row(_ a: String, _ b: String, _ c: String, _ d: String) -> String {
        a.padding(toLength: 18, withPad: " ", startingAt: 0) + b.padding(toLength: 22, withPad: " ", startingAt: 0)
            + c.padding(toLength: 30, withPad: " ", startingAt: 0) + d
    }

    private func format(_ duration: Duration) -> String {
        let ms = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        return ms >= 1000 ? String(format: "%.2f s", ms / 1000) : String(format: "%.2f ms", ms)
    }
}
