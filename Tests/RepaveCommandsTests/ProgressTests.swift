import Foundation
import KubeAPI
import RepaveTestSupport
import Testing

/// `--progress` as an operator sees it: on a pseudo-terminal (script(1)), not only through pipes.
@Suite("progress on a terminal", .serialized)
struct ProgressTests: DevpodTesting {
    let lab: Lab
    let client: KubeClient

    init() throws {
        lab = try Lab.current()
        client = try lab.adminClient(userAgent: "repave-test/progress")
    }

    /// `repave run` on a pseudo-terminal; script(1) puts the terminal's output (stdout and stderr
    /// together) on its own stdout.
    func runOnTerminal(_ world: World, progress: String) async throws -> ProcessResult {
        let command = [try repaveBinary(), "run", world.planFile, "--yes", "--kubeconfig", lab.adminKubeconfig,
                       "--state-dir", world.scratch.file("runs"), "--progress", progress].joined(separator: " ")
        return try await runProcess("script", ["-qec", command, "/dev/null"])
    }

    @Test("auto on a terminal: each wait is one live line, redrawn in place with the time it has waited, then the result")
    func live() async throws {
        // The new claim takes 2.5 s to bind: its wait is redrawn at least twice.
        try await withDevpod(claimAnnotations: ["lab.repave/provision-delay": "2500ms"]) { world in
            let result = try await runOnTerminal(world, progress: "auto")
            #expect(result.status == 0, "\(result.standardOutput)")
            let screen = result.standardOutput
            let redraws = screen.components(separatedBy: "\r[").count - 1
            #expect(redraws >= 3, "\(redraws) redraws: \(screen.debugDescription)")
            // The same wait's line, redrawn with the seconds it has waited, and erased to its end.
            let waited = screen.components(separatedBy: "await-bound: waiting for the new claim to be Bound (the provisioner creates its volume) (").dropFirst()
                .compactMap { Int($0.prefix { $0.isNumber }) }
            #expect(waited.count >= 2 && (waited.max() ?? 0) >= 2, "\(waited): \(screen.debugDescription)")
            #expect(screen.contains("s)\u{1B}[K"))
            #expect(screen.contains("] preflight: check the claim"))
            #expect(screen.contains("finished: \(world.namespace)/coder-jeda-codespace-home recreated"))
        }
    }

    @Test("none on a terminal: no progress, only the result; plain: lines, never redrawn")
    func quietAndPlain() async throws {
        try await withDevpod { world in
            let result = try await runOnTerminal(world, progress: "none")
            #expect(result.status == 0, "\(result.standardOutput)")
            #expect(!result.standardOutput.contains("] preflight:"), "\(result.standardOutput)")
            #expect(!result.standardOutput.contains("waiting for"))
            #expect(result.standardOutput.contains("finished: \(world.namespace)/coder-jeda-codespace-home recreated"))
        }
        try await withDevpod(claimAnnotations: ["lab.repave/provision-delay": "1500ms"]) { world in
            let result = try await runOnTerminal(world, progress: "plain")
            #expect(result.status == 0, "\(result.standardOutput)")
            #expect(result.standardOutput.contains("] await-bound: waiting for the new claim to be Bound"))
            #expect(!result.standardOutput.contains("\u{1B}[K"), "\(result.standardOutput.debugDescription)")
        }
    }
}
