import Foundation
import RepaveTestSupport
import Testing

/// `repave git-check` as an operator runs it, including as another user than the data's owner.
@Suite("repave git-check")
struct GitCheckCommandTests {
    func repave(_ arguments: [String], asNobody: Bool = false, home: String? = nil) async throws -> ProcessResult {
        if asNobody {
            return try await runProcess("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", try repaveBinary()] + arguments,
                                        environment: ["HOME": home ?? "/nonexistent"])
        }
        return try await runProcess(try repaveBinary(), arguments)
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test("exit 0 and a table when everything passes; the report names claim, rules and host")
    func passes() async throws {
        let scratch = try ScratchDirectory()
        let fixture = GitFixture(root: scratch.path)
        try await fixture.pushedClone("home/api")
        let reportFile = scratch.file("git-report.json")
        let result = try await repave(["git-check", scratch.path + "/home", "--report", reportFile, "--for", "devpod/coder-jeda-codespace-home"])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("\(scratch.path)/home/api  main  pass"))
        #expect(result.standardOutput.hasSuffix("git check passed\n"))
        let report = try json(try String(contentsOfFile: reportFile, encoding: .utf8))
        #expect(report["kind"] as? String == "GitReport")
        #expect(report["claim"] as? String == "devpod/coder-jeda-codespace-home")
        #expect(report["rules"] as? [String] == ["clean", "pushed", "no-stash"])
        #expect(report["passed"] as? Bool == true)
        #expect(report["host"] as? String == ProcessInfo.processInfo.hostName)
        #expect((report["repositories"] as? [[String: Any]])?.count == 1)
    }

    @Test("exit 2 when any repository fails, with -o json on stdout")
    func fails() async throws {
        let scratch = try ScratchDirectory()
        let fixture = GitFixture(root: scratch.path)
        try await fixture.pushedClone("api")
        try fixture.write("api/wip.txt", "unsaved\n")
        let result = try await repave(["git-check", scratch.path + "/api", "-o", "json", "--require", "clean"])
        #expect(result.status == 2)
        let report = try json(result.standardOutput)
        #expect(report["passed"] as? Bool == false)
        let repository = try #require((report["repositories"] as? [[String: Any]])?.first)
        #expect(repository["reasons"] as? [String] == ["1 untracked: wip.txt"])
    }

    @Test("usage errors: an unknown rule, a bad --for, a missing path")
    func usage() async throws {
        let unknown = try await repave(["git-check", "/tmp", "--require", "committed"])
        #expect(unknown.status == 64)
        #expect(unknown.standardError.hasPrefix("error[usage]: unknown rule 'committed' for --require; rules: clean, pushed, no-stash"))
        let badFor = try await repave(["git-check", "/tmp", "--for", "just-a-claim"])
        #expect(badFor.status == 64)
        let missing = try await repave(["git-check", "/nonexistent/path"])
        #expect(missing.status == 2)
        #expect(missing.standardError.hasPrefix("error[git.no-such-path]: no such file or directory: /nonexistent/path"))
    }

    @Test("as another user: the owner check is explained, unreadable directories are reported, --allow-other-owners inspects")
    func otherUser() async throws {
        let scratch = try ScratchDirectory()
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: scratch.path)
        let fixture = GitFixture(root: scratch.path)
        try await fixture.pushedClone("home/api")
        try fixture.write("home/private/secret.txt", "x\n")
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: scratch.path + "/home/private")
        let home = try ScratchDirectory("nobody-home")
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: home.path)

        let refused = try await repave(["git-check", scratch.path + "/home", "-o", "json"], asNobody: true, home: home.path)
        #expect(refused.status == 2, "\(refused.standardError)")
        let report = try json(refused.standardOutput)
        let repository = try #require((report["repositories"] as? [[String: Any]])?.first)
        let reason = (repository["reasons"] as? [String])?.first ?? ""
        #expect(reason.contains("owned by uid 0"), "\(reason)")
        #expect(reason.contains("safe.directory"))
        #expect(reason.contains("--allow-other-owners"))
        let unreadable = try #require(report["unreadable"] as? [[String: Any]])
        #expect(unreadable.map { $0["path"] as? String } == [scratch.path + "/home/private"])
        #expect((unreadable.first?["reason"] as? String)?.contains("ermission denied") == true)

        let allowed = try await repave(["git-check", scratch.path + "/home", "-o", "json", "--allow-other-owners"], asNobody: true, home: home.path)
        let second = try json(allowed.standardOutput)
        #expect(second["ownerValidation"] as? Bool == false)
        let inspected = try #require((second["repositories"] as? [[String: Any]])?.first)
        #expect(inspected["passed"] as? Bool == true, "\(inspected["reasons"] ?? "")")
        // The unreadable directory still fails the run: its contents were never checked.
        #expect(allowed.status == 2)
    }
}
