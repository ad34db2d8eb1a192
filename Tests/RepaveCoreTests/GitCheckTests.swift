import Blocking
import Foundation
import Git
import RepaveTestSupport
import Synchronization
import Testing

@testable import RepaveCore

/// The whole git preflight on directory trees built with the git CLI: discovery, verdicts,
/// the inventory of what would be lost.
@Suite("git check")
struct GitCheckTests {
    func run(_ fixture: GitFixture, _ paths: [String], ignore: [String] = ["**/node_modules/**"]) async throws -> GitReport {
        try await GitCheck(paths: paths.map { fixture.root + "/" + $0 }, ignore: ignore, inventoryBudget: .seconds(5)).run()
    }

    func repository(_ report: GitReport, _ path: String) throws -> GitReport.RepositoryReport {
        try #require(report.repositories.first { $0.path.hasSuffix("/" + path) }, "no repository \(path) in \(report.repositories.map(\.path))")
    }

    @Test("a clean, pushed home passes; the rest of the home is listed with sizes")
    func cleanHome() async throws {
        let scratch = try ScratchDirectory()
        let fixture = GitFixture(root: scratch.path)
        try await fixture.pushedClone("home/api")
        try await fixture.pushedClone("home/Research/web")
        try fixture.write("home/.npmrc", "registry=x\n")
        try fixture.write("home/.cache/tool/blob.bin", String(repeating: "x", count: 4096))
        try fixture.write("home/node_modules/left-pad/index.js", "module.exports = 1\n")
        let report = try await run(fixture, ["home"])
        #expect(report.passed)
        #expect(report.repositories.map(\.path) == [scratch.path + "/home/Research/web", scratch.path + "/home/api"])
        #expect(report.repositories.allSatisfy { $0.passed && $0.reasons.isEmpty && $0.head == "main" })
        let inventory = Dictionary(report.inventory.entries.map { ($0.path.replacingOccurrences(of: scratch.path + "/", with: ""), $0) }, uniquingKeysWith: { a, _ in a })
        #expect(inventory["home/.npmrc"]?.bytes == 11)
        #expect(inventory["home/.cache"]?.bytes == 4096)
        #expect(inventory["home/.cache"]?.files == 1)
        #expect(inventory["home/node_modules"]?.kind == "excluded-by-glob")
        #expect(inventory["home/api"] == nil)
        #expect(report.inventory.complete)
    }

    @Test("each failing rule gives a reason; the run fails when any repository fails")
    func failures() async throws {
        let scratch = try ScratchDirectory()
        let fixture = GitFixture(root: scratch.path)
        try await fixture.pushedClone("dirty")
        try fixture.write("dirty/README.md", "changed\n")
        try fixture.write("dirty/new.txt", "new\n")
        try await fixture.pushedClone("ahead")
        try await fixture.commit("ahead", file: "x.txt", content: "x\n", message: "local")
        try await fixture.pushedClone("stashed")
        try fixture.write("stashed/README.md", "wip\n")
        try await fixture.git(["stash", "push", "-q", "-m", "wip"], in: "stashed")
        try fixture.mkdir("local")
        try await fixture.git(["init", "-q"], in: "local")
        try await fixture.commit("local", file: "a.txt", content: "a\n", message: "only here")
        let report = try await run(fixture, ["dirty", "ahead", "stashed", "local"])
        #expect(!report.passed)
        #expect(try repository(report, "dirty").reasons == ["1 modified: README.md", "1 untracked: new.txt"])
        #expect(try repository(report, "ahead").reasons == ["branch main is 1 commit ahead of origin/main"])
        #expect(try repository(report, "stashed").reasons == ["1 stash: On main: wip"])
        #expect(try repository(report, "local").reasons == ["no remote: 1 commit exists only here"])
    }

    @Test("ignored files pass; untracked files under an ignore glob pass; a directory holding only excluded content passes")
    func ignoredContent() async throws {
        let scratch = try ScratchDirectory()
        let fixture = GitFixture(root: scratch.path)
        try await fixture.pushedClone("web")
        try await fixture.commit("web", file: ".gitignore", content: ".next/\n", message: "ignore")
        try await fixture.git(["push", "-q"], in: "web")
        try fixture.write("web/.next/build.js", "x\n")
        try fixture.write("web/node_modules/a/index.js", "x\n")
        try fixture.write("web/tools/node_modules/b/index.js", "x\n")   // git shows "tools/" untracked
        let report = try await run(fixture, ["web"])
        let web = try repository(report, "web")
        #expect(web.passed, "\(web.reasons)")
        let kinds = Set(report.inventory.entries.map { "\($0.kind) \($0.path.replacingOccurrences(of: scratch.path + "/", with: ""))" })
        #expect(kinds.contains("ignored-in-repository web/.next"))
        #expect(kinds.contains("excluded-by-glob web/node_modules"))
        // Without the glob the same tree fails, as git would say.
        let strict = try await run(fixture, ["web"], ignore: [])
        #expect(try repository(strict, "web").reasons == ["2 untracked: node_modules/, tools/"])
    }

    @Test("nested repository in an untracked directory, submodule, linked worktree and bare repository are all found")
    func discovery() async throws {
        let scratch = try ScratchDirectory()
        let fixture = GitFixture(root: scratch.path)
        try await fixture.pushedClone("home/outer")
        try await fixture.pushedClone("home/outer/experiments/inner")       // untracked dir of outer
        try await fixture.pushedClone("lib")
        try await fixture.git(["submodule", "add", "-q", scratch.path + "/remotes/lib.git", "vendor/lib"], in: "home/outer")
        try await fixture.git(["commit", "-q", "-m", "lib"], in: "home/outer")
        try await fixture.git(["push", "-q"], in: "home/outer")
        try await fixture.git(["worktree", "add", "-q", "-b", "hotfix", scratch.path + "/home/outer-hotfix"], in: "home/outer")
        try fixture.write("home/outer-hotfix/README.md", "hotfix\n")
        try fixture.mkdir("home/archive.git")
        try await fixture.git(["init", "-q", "--bare"], in: "home/archive.git")
        let report = try await run(fixture, ["home"])
        let found = Dictionary(report.repositories.map { ($0.path.replacingOccurrences(of: scratch.path + "/", with: ""), $0) }, uniquingKeysWith: { a, _ in a })
        #expect(found["home/outer"]?.kind == "normal")
        #expect(found["home/outer/experiments/inner"]?.parent == scratch.path + "/home/outer")
        #expect(found["home/outer/vendor/lib"]?.kind == "submodule")
        #expect(found["home/outer/vendor/lib"]?.parent == scratch.path + "/home/outer")
        #expect(found["home/outer-hotfix"]?.kind == "worktree")
        #expect(found["home/outer-hotfix"]?.reasons == ["1 modified: README.md"])
        #expect(found["home/archive.git"]?.kind == "bare")
        #expect(found["home/archive.git"]?.head == "bare")
        // The outer repository's untracked directory is the nested repository: that fails clean,
        // exactly as `git status` lists it.
        #expect(found["home/outer"]?.reasons == ["1 untracked: experiments/"])
    }

    @Test("a path inside a repository finds that repository")
    func insideRepository() async throws {
        let scratch = try ScratchDirectory()
        let fixture = GitFixture(root: scratch.path)
        try await fixture.pushedClone("api")
        try fixture.write("api/src/deep/file.txt", "x\n")
        try await fixture.git(["add", "."], in: "api")
        try await fixture.git(["commit", "-q", "-m", "deep"], in: "api")
        let report = try await run(fixture, ["api/src/deep"])
        #expect(report.repositories.map(\.path) == [scratch.path + "/api"])
        #expect(try repository(report, "api").reasons == ["branch main is 1 commit ahead of origin/main"])
    }

    @Test("symlinks are never followed, so a loop cannot trap the walk")
    func symlinkLoop() async throws {
        let scratch = try ScratchDirectory()
        let fixture = GitFixture(root: scratch.path)
        try await fixture.pushedClone("home/api")
        try FileManager.default.createSymbolicLink(atPath: scratch.path + "/home/loop", withDestinationPath: scratch.path + "/home")
        try FileManager.default.createSymbolicLink(atPath: scratch.path + "/home/outside", withDestinationPath: "/usr")
        let report = try await run(fixture, ["home"])
        #expect(report.repositories.count == 1)
        #expect(report.passed)
    }

    @Test("rules can be chosen; glob syntax")
    func rulesAndGlobs() async throws {
        let scratch = try ScratchDirectory()
        let fixture = GitFixture(root: scratch.path)
        try await fixture.pushedClone("api")
        try fixture.write("api/README.md", "dirty\n")
        let report = try await GitCheck(paths: [scratch.path + "/api"], rules: [.pushed, .noStash]).run()
        #expect(report.passed)
        #expect(report.rules == ["pushed", "no-stash"])

        let globs = try GlobSet(["**/node_modules/**", "*.log", "build/", "/abs/only"])
        #expect(globs.matches(relative: "node_modules/"))
        #expect(globs.matches(relative: "a/b/node_modules/c/d.js"))
        #expect(globs.matches(relative: "deep/debug.log"))
        #expect(globs.matches(relative: "build/"))
        #expect(globs.matches(relative: "x", absolute: "/abs/only"))
        #expect(!globs.matches(relative: "abs/only"))
        #expect(!globs.matches(relative: "node_modules_backup/x"))
        #expect(!globs.matches(relative: "src/main.swift"))
        // Relative patterns never look at where the root itself lives.
        let tmp = try GlobSet(["**/tmp/**"])
        #expect(!tmp.matches(relative: "notes.txt", absolute: "/tmp/work/notes.txt"))
    }

    @Test("regressions: ways unsaved work could pass (each must fail)")
    func falseNegatives() async throws {
        let scratch = try ScratchDirectory()
        let fixture = GitFixture(root: scratch.path)

        // A root given through a symlink is followed.
        try await fixture.pushedClone("real/api")
        try fixture.write("real/api/wip.txt", "unsaved\n")
        try FileManager.default.createSymbolicLink(atPath: scratch.path + "/link", withDestinationPath: scratch.path + "/real")
        #expect(try await run(fixture, ["link"]).repositories.map(\.passed) == [false])

        // A file removed from the index and now ignored is still a staged change.
        try await fixture.pushedClone("secret")
        try await fixture.commit("secret", file: "secret.env", content: "token\n", message: "oops")
        try await fixture.git(["push", "-q"], in: "secret")
        try fixture.write("secret/.git/info/exclude", "secret.env\n")
        try await fixture.git(["rm", "-q", "--cached", "secret.env"], in: "secret")
        #expect(try repository(try await run(fixture, ["secret"]), "secret").reasons.first?.hasPrefix("1 staged: secret.env") == true)

        // A relative glob never matches where the root lives (scratch dirs live under /tmp).
        let tmpGlob = try await run(fixture, ["real"], ignore: ["**/tmp/**"])
        #expect(tmpGlob.repositories.count == 1 && !tmpGlob.passed)

        // Edits hidden by skip-worktree are reported.
        try await fixture.pushedClone("hidden")
        try await fixture.git(["update-index", "--skip-worktree", "README.md"], in: "hidden")
        try fixture.write("hidden/README.md", "edited but hidden\n")
        #expect(try await fixture.git(["status", "--porcelain"], in: "hidden").isEmpty)    // git shows nothing
        #expect(try repository(try await run(fixture, ["hidden"]), "hidden").reasons.first?.contains("skip-worktree") == true)

        // A repository inside an untracked directory whose other content is excluded is found.
        try await fixture.pushedClone("outer")
        try fixture.write("outer/tools/node_modules/x/index.js", "x\n")
        try await fixture.pushedClone("outer/tools/inner")
        try fixture.write("outer/tools/inner/wip.txt", "unsaved\n")
        let nested = try await run(fixture, ["outer"])
        #expect(try repository(nested, "outer/tools/inner").reasons == ["1 untracked: wip.txt"])

        // A commit reachable only from a tag is on no remote.
        try await fixture.pushedClone("tagged")
        try await fixture.git(["checkout", "-q", "--detach"], in: "tagged")
        try await fixture.commit("tagged", file: "t.txt", content: "t\n", message: "tagged only")
        try await fixture.git(["tag", "v1"], in: "tagged")
        try await fixture.git(["checkout", "-q", "main"], in: "tagged")
        #expect(try repository(try await run(fixture, ["tagged"]), "tagged").reasons == ["1 commit reachable from tags or HEAD is on no remote"])
    }

    /// A clone of a bare repository made in `bareDirectory`, cloned by `url` (nil: its path),
    /// with one pushed commit.
    func cloneOfBare(_ fixture: GitFixture, _ name: String, bare bareDirectory: String, url: String? = nil) async throws {
        try fixture.mkdir(bareDirectory)
        try await fixture.git(["init", "-q", "--bare"], in: bareDirectory)
        try await fixture.git(["clone", "-q", url ?? fixture.root + "/" + bareDirectory, name])
        try await fixture.commit(name, file: "README.md", content: "# \(name)\n", message: "first")
        try await fixture.git(["push", "-q", "-u", "origin", "main"], in: name)
    }

    @Test("a remote that is a local path inside the checked paths is no copy, even when its bare repository is ignored")
    func remoteInsideCheckedPaths() async throws {
        let scratch = try ScratchDirectory()
        let fixture = GitFixture(root: scratch.path)
        // `git clone /home/coder/x.git`: the only remote lives on the same volume.
        try await cloneOfBare(fixture, "home/api", bare: "home/x.git")
        let lost = [
            "remote 'origin' is \(scratch.path)/home/x.git, inside the checked paths: it is deleted with the volume",
            "1 commit is on no remote outside the checked paths",
        ]
        #expect(try repository(try await run(fixture, ["home"]), "home/api").reasons == lost)

        // Excluding the bare repository from the check does not make it a copy.
        let ignored = try await run(fixture, ["home"], ignore: ["x.git/"])
        #expect(!ignored.passed)
        #expect(!ignored.repositories.contains { $0.path.hasSuffix("/x.git") })
        #expect(try repository(ignored, "home/api").reasons == lost)

        // Any checked path counts, however the URL reaches it: file://, through a symlink and `..`.
        try await cloneOfBare(fixture, "work/web", bare: "data/web.git", url: "file://\(scratch.path)/data/web.git")
        try FileManager.default.createSymbolicLink(atPath: scratch.path + "/work/data-link", withDestinationPath: scratch.path + "/data")
        try await cloneOfBare(fixture, "work/docs", bare: "data/docs.git")
        try await fixture.git(["remote", "set-url", "origin", "../data-link/../data/docs.git"], in: "work/docs")
        let file = try await run(fixture, ["work", "data"], ignore: ["*.git/"])
        #expect(try repository(file, "work/web").reasons.first == "remote 'origin' is \(scratch.path)/data/web.git, inside the checked paths: it is deleted with the volume")
        #expect(try repository(file, "work/docs").reasons.first == "remote 'origin' is \(scratch.path)/data/docs.git, inside the checked paths: it is deleted with the volume")

        // Outside every checked path, the same remotes are copies that survive the volume.
        let outside = try await run(fixture, ["work"])
        #expect(try repository(outside, "work/web").passed)
        #expect(try repository(outside, "work/docs").passed)
    }

    @Test("a remote inside the checked paths is harmless when another remote holds every commit; network remotes are unchanged")
    func otherRemotes() async throws {
        let scratch = try ScratchDirectory()
        let fixture = GitFixture(root: scratch.path)
        try await cloneOfBare(fixture, "home/api", bare: "home/x.git")
        try fixture.mkdir("backup/api.git")
        try await fixture.git(["init", "-q", "--bare"], in: "backup/api.git")
        try await fixture.git(["remote", "add", "backup", scratch.path + "/backup/api.git"], in: "home/api")
        try await fixture.git(["push", "-q", "backup", "main"], in: "home/api")
        #expect(try repository(try await run(fixture, ["home"], ignore: ["x.git/"]), "home/api").passed)
        try await fixture.commit("home/api", file: "new.txt", content: "n\n", message: "only on the volume")
        try await fixture.git(["push", "-q", "origin", "main"], in: "home/api")
        #expect(try repository(try await run(fixture, ["home"], ignore: ["x.git/"]), "home/api").reasons == [
            "remote 'origin' is \(scratch.path)/home/x.git, inside the checked paths: it is deleted with the volume",
            "1 commit is on no remote outside the checked paths",
        ])

        // Network URLs (https, scp-like) are never local: the rule is as it was.
        try await fixture.pushedClone("web")
        try await fixture.git(["remote", "set-url", "origin", "git@github.com:coder/web.git"], in: "web")
        try await fixture.git(["remote", "add", "mirror", "https://example.invalid/web.git"], in: "web")
        let network = try await run(fixture, ["web"])
        #expect(try repository(network, "web").passed)
        #expect(try repository(network, "web").facts?.discountedRemotes == nil)
        try await fixture.commit("web", file: "x.txt", content: "x\n", message: "local")
        #expect(try repository(try await run(fixture, ["web"]), "web").reasons == ["branch main is 1 commit ahead of origin/main"])
    }

    @Test("the walk, the sizing and the inspections run off the cooperative pool; called from a task, the debug check fires")
    func offThePool() async throws {
        let scratch = try ScratchDirectory()
        let fixture = GitFixture(root: scratch.path)
        try await fixture.pushedClone("home/api")
        try await fixture.commit("home/api", file: ".gitignore", content: "build/\n", message: "ignore")
        try fixture.write("home/api/build/out.bin", "x\n")
        try fixture.write("home/notes/todo.txt", "x\n")
        let violations = Mutex<[String]>([])
        let record: @Sendable (String) -> Void = { what in violations.withLock { $0.append(what) } }
        let report = try await CooperativePoolCheck.$reportViolation.withValue(record) {
            try await run(fixture, ["home"])
        }
        #expect(report.inventory.entries.count == 2, "\(report.inventory.entries.map(\.path))")   // sized: notes, and api/build
        #expect(violations.withLock { $0 } == [])

        // The same functions called straight from this task are caught (debug builds only).
        let noGlobs = try GlobSet([])
        CooperativePoolCheck.$reportViolation.withValue(record) {
            _ = Sizer(budget: .seconds(5)).measure(scratch.path + "/home/notes")
            var discovery = RepositoryDiscovery(ignore: noGlobs, sizer: Sizer(budget: .seconds(5)))
            discovery.search(scratch.path + "/home", relativeTo: scratch.path + "/home")
            _ = try? Repository.open(at: scratch.path + "/home/api").inspect()
        }
        #if DEBUG
        #expect(violations.withLock { $0 } == [
            "git-check sizing of \(scratch.path)/home/notes",
            "git-check walk of \(scratch.path)/home",
            "libgit2 inspection of \(scratch.path)/home/api/",
        ])
        #else
        #expect(violations.withLock { $0 } == [])
        #endif
    }
}
