import Foundation
import RepaveTestSupport
import Testing

/// Warnings about the files an operator hands repave, as the operator sees them. No cluster:
/// `plan --offline` and `config` read files only.
@Suite("warnings about plan and kubeconfig files")
struct FileWarningTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    func repave(_ arguments: [String]) async throws -> ProcessResult {
        try await runProcess(try repaveBinary(), arguments, environment: ["KUBECONFIG": nil])
    }

    @Test("a plan others may write is warned about on stderr; one they may only read (a git checkout's 0644) is not")
    func planWritableByOthers() async throws {
        let scratch = try ScratchDirectory()
        let file = scratch.file("plan.yaml")
        try FileManager.default.copyItem(atPath: Self.root + "/plans/devpod-home.yaml", toPath: file)
        chmod(file, 0o664)
        let warned = try await repave(["plan", file, "--offline"])
        #expect(warned.status == 0, "\(warned.standardError)")
        #expect(warned.standardError.contains("\(file) is writable by group (mode 0664); anyone who can edit a plan chooses what repave deletes: chmod go-w \(file)"),
                "\(warned.standardError)")
        chmod(file, 0o644)
        let quiet = try await repave(["plan", file, "--offline"])
        #expect(quiet.status == 0)
        #expect(quiet.standardError.isEmpty, "\(quiet.standardError)")
    }

    @Test("a kubeconfig others may read is warned about by repave config; a 0600 one is not")
    func kubeconfigReadableByOthers() async throws {
        let scratch = try ScratchDirectory()
        let file = scratch.file("config")
        let text = "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
        #expect(FileManager.default.createFile(atPath: file, contents: Data(text.utf8), attributes: [.posixPermissions: 0o644]))
        let warned = try await repave(["config", "--kubeconfig", file])
        #expect(warned.status == 0, "\(warned.standardError)")
        #expect(warned.standardOutput.contains("warning: \(file) is readable by group and others (mode 0644); a kubeconfig holds credentials: chmod 600 \(file)"),
                "\(warned.standardOutput)")
        chmod(file, 0o600)
        let quiet = try await repave(["config", "--kubeconfig", file])
        #expect(!quiet.standardOutput.contains("warning"), "\(quiet.standardOutput)")
    }
}
