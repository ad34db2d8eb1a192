import Foundation
import RepaveTestSupport
import Testing

@testable import Git

/// Repository facts from libgit2, each compared with the git CLI's own answer.
@Suite("repository inspection agrees with git")
struct InspectionTests {
    /// What `git` says about a repository, parsed from its porcelain output.
    struct Oracle {
        var head = ""          // branch name, or "(detached)"
        var upstream: String?
        var ahead = 0, behind = 0
        var staged = 0, modified = 0, deleted = 0, renamed = 0, conflicted = 0, untracked = 0
        var untrackedPaths: [String] = []
        var stashes: [String] = []
        var commitsOnNoRemote = 0
        var branches: [String: (upstream: String, track: String)] = [:]

        static func of(_ fixture: GitFixture, _ name: String) async throws -> Oracle {
            var oracle = Oracle()
            let status = try await fixture.git(["status", "--porcelain=v2", "--branch"], in: name)
            for line in status.split(separator: "\n").map(String.init) {
                let fields = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
                switch fields.first {
                case "#":
                    if fields[1] == "branch.head" { oracle.head = fields[2] }
                    if fields[1] == "branch.upstream" { oracle.upstream = fields[2] }
                    if fields[1] == "branch.ab" { oracle.ahead = Int(fields[2].dropFirst()) ?? 0; oracle.behind = Int(fields[3].dropFirst()) ?? 0 }
                case "1", "2":
                    let xy = Array(fields[1])
                    if xy[0] != "." { oracle.staged += 1 }
                    if xy[1] == "M" { oracle.modified += 1 }
                    if xy[1] == "D" { oracle.deleted += 1 }
                    if fields[0] == "2" { oracle.renamed += 1 }
                case "u": oracle.conflicted += 1
                case "?":
                    oracle.untracked += 1
                    oracle.untrackedPaths.append(String(line.dropFirst(2)))
                default: break
                }
            }
            let stashes = try await fixture.git(["stash", "list", "--format=%gs"], in: name)
            oracle.stashes = stashes.isEmpty ? [] : stashes.split(separator: "\n").map(String.init)
            let unborn = (try await fixture.git(["rev-parse", "-q", "--verify", "HEAD"], in: name, allowFailure: true)).isEmpty
            if !unborn {
                oracle.commitsOnNoRemote = Int(try await fixture.git(["rev-list", "--count", "--branches", "--tags", "HEAD", "--not", "--remotes"], in: name)) ?? -1
            }
            let refs = try await fixture.git(["for-each-ref", "--format=%(refname:short)|%(upstream:short)|%(upstream:track)", "refs/heads"], in: name)
            for line in refs.split(separator: "\n") {
                let parts = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
                oracle.branches[parts[0]] = (parts[1], parts[2])
            }
            return oracle
        }
    }

    /// Through the async API, on a thread of its own: the debug check stops a blocking
    /// inspection called from a test's task.
    func inspect(_ fixture: GitFixture, _ name: String) async throws -> RepositoryFacts {
        try await Repository.inspect(at: fixture.root + "/" + name) { $0.contains("node_modules") }
    }

    /// Compares every fact git also reports.
    func agree(_ fixture: GitFixture, _ name: String, _ comment: Comment? = nil) async throws -> RepositoryFacts {
        let facts = try await inspect(fixture, name)
        let git = try await Oracle.of(fixture, name)
        let tree = try #require(facts.workingTree)
        #expect(tree.staged.count == git.staged, comment)
        #expect(tree.modified.count == git.modified, comment)
        #expect(tree.deleted.count == git.deleted, comment)
        #expect(tree.renamed.count == git.renamed, comment)
        #expect(tree.conflicted.count == git.conflicted, comment)
        #expect(tree.untracked.count + tree.untrackedExcludedByGlob.count == git.untracked, comment)
        #expect(Set(tree.untracked.sample + tree.untrackedExcludedByGlob).isSubset(of: Set(git.untrackedPaths)), comment)
        #expect(facts.stashes == git.stashes, comment)
        #expect(facts.commitsOnNoRemote == git.commitsOnNoRemote, comment)
        switch facts.head {
        case .branch(let branch): #expect(branch == git.head, comment)
        case .detached: #expect(git.head == "(detached)", comment)
        case .unborn(let branch): #expect(branch == git.head, comment)
        }
        #expect(Set(facts.branches.map(\.name)) == Set(git.branches.keys), comment)
        for branch in facts.branches {
            let theirs = git.branches[branch.name]
            #expect((branch.upstream ?? "") == (theirs?.upstream ?? ""), comment)
            var track: [String] = []
            if let ahead = branch.ahead, ahead > 0 { track.append("ahead \(ahead)") }
            if let behind = branch.behind, behind > 0 { track.append("behind \(behind)") }
            let expected = branch.upstreamGone ? "[gone]" : track.isEmpty ? "" : "[\(track.joined(separator: ", "))]"
            #expect(expected == theirs?.track, comment)
        }
        return facts
    }

    @Test("clean and pushed")
    func cleanPushed() async throws {
        let scratch = try ScratchDirectory()
        let fixture = GitFixture(root: scratch.path)
        try await fixture.pushedClone("api")
        let facts = try await agree(fixture, "api")
        #expect(facts.workingTree?.isClean == true)
        #expect(facts.branches.first?.ahead == 0)
        #expect(facts.remotes == ["origin"])
    }

    @Test("staged, unstaged, deleted, renamed and untracked changes")
    func changes() async throws {
        let scratch = try ScratchDirectory()
        let fixture = GitFixture(root: scratch.path)
        try await fixture.pushedClone("api")
        try await fixture.commit("api", file: "old.txt", content: "rename me\n", message: "old")
        try await fixture.commit("api", file: "gone.txt", content: "delete me\n", message: "gone")
        try fixture.write("api/staged.txt", "new\n")
        try await fixture.git(["add", "staged.txt"], in: "api")
        try fixture.write("api/README.md", "# changed\n")
        try await fixture.git(["mv", "old.txt", "new.txt"], in: "api")
        try FileManager.default.removeItem(atPath: scratch.path + "/api/gone.txt")
        try fixture.write("api/notes/idea.md", "untracked\n")
        try fixture.write("api/scratch.txt", "untracked\n")
        let facts = try await agree(fixture, "api")
        #expect(facts.workingTree?.staged.count == 2)     // staged.txt and the rename
        #expect(facts.workingTree?.renamed.sample == ["new.txt"])
        #expect(facts.workingTree?.untracked.sample.sorted() == ["notes/", "scratch.txt"])
        #expect(facts.workingTree?.untrackedDirectories == ["notes/"])
    }

    @Test("ignored files and untracked files under an excluded glob are not untracked")
    func ignoredAndExcluded() async throws {
        let scratch = try ScratchDirectory()
        let fixture = GitFixture(root: scratch.path)
        try await fixture.pushedClone("web")
        try await fixture.commit("web", file: ".gitignore", content: ".next/\n*.log\n", message: "ignore")
        try await fixture.git(["push", "-q"], in: "web")
        try fixture.write("web/.next/cache/x", "build output\n")
        try fixture.write("web/debug.log", "log\n")
        try fixture.write("web/node_modules/left-pad/index.js", "module.exports = 1\n")
        let facts = try await agree(fixture, "web")
        #expect(facts.workingTree?.isClean == true)
        #expect(facts.workingTree?.untrackedExcludedByGlob == ["node_modules/"])
        #expect(facts.ignored.sorted() == [".next/", "debug.log"])
    }

    @Test("ahead of upstream; behind only; a branch with commits and no upstream; a gone upstream")
    func branches() async throws {
        let scratch = try ScratchDirectory()
        let fixture = GitFixture(root: scratch.path)
        try await fixture.pushedClone("api")
        try await fixture.git(["clone", "-q", scratch.path + "/remotes/api.git", "other"])
        try await fixture.commit("other", file: "theirs.txt", content: "x\n", message: "theirs")
        try await fixture.git(["push", "-q"], in: "other")
        try await fixture.git(["fetch", "-q"], in: "api")                 // api is now behind 1
        var facts = try await agree(fixture, "api", "behind only")
        #expect(facts.branches.first { $0.name == "main" }?.behind == 1)
        #expect(facts.commitsOnNoRemote == 0)

        try await fixture.git(["checkout", "-q", "-b", "feature"], in: "api")
        try await fixture.commit("api", file: "f.txt", content: "f\n", message: "feature")
        try await fixture.git(["checkout", "-q", "main"], in: "api")
        try await fixture.commit("api", file: "mine.txt", content: "m\n", message: "mine")   // ahead 1, behind 1
        try await fixture.git(["checkout", "-q", "-b", "topic"], in: "api")
        try await fixture.git(["push", "-q", "-u", "origin", "topic"], in: "api")
        try await fixture.git(["push", "-q", "origin", "--delete", "topic"], in: "api")    // topic's upstream is gone
        try await fixture.git(["checkout", "-q", "main"], in: "api")
        facts = try await agree(fixture, "api", "ahead, no upstream, gone")
        let main = try #require(facts.branches.first { $0.name == "main" })
        #expect(main.ahead == 1 && main.behind == 1)
        let feature = try #require(facts.branches.first { $0.name == "feature" })
        let unique = Int(try await fixture.git(["rev-list", "--count", "feature", "--not", "--remotes"], in: "api"))
        #expect(feature.upstream == nil)
        #expect(feature.commitsOnNoRemote == unique)
        #expect(unique == 1)
        #expect(facts.branches.first { $0.name == "topic" }?.upstreamGone == true)
    }

    @Test("detached HEAD with a commit on no branch; unborn HEAD")
    func headStates() async throws {
        let scratch = try ScratchDirectory()
        let fixture = GitFixture(root: scratch.path)
        try await fixture.pushedClone("api")
        try await fixture.git(["checkout", "-q", "--detach"], in: "api")
        try await fixture.commit("api", file: "lost.txt", content: "lost\n", message: "detached work")
        let facts = try await agree(fixture, "api", "detached")
        guard case .detached = facts.head else { Issue.record("expected detached, got \(facts.head)"); return }
        #expect(facts.commitsOnNoBranch == 1)
        #expect(facts.commitsOnNoRemote == 1)

        try fixture.mkdir("fresh")
        try await fixture.git(["init", "-q"], in: "fresh")
        try fixture.write("fresh/a.txt", "a\n")
        let unborn = try await agree(fixture, "fresh", "unborn")
        #expect(unborn.head == .unborn("main"))
        #expect(unborn.commitsOnNoRemote == 0)
        #expect(unborn.remotes.isEmpty)
    }

    @Test("stashes, in git's order, with their messages")
    func stashes() async throws {
        let scratch = try ScratchDirectory()
        let fixture = GitFixture(root: scratch.path)
        try await fixture.pushedClone("api")
        try fixture.write("api/README.md", "one\n")
        try await fixture.git(["stash", "push", "-q", "-m", "first wip"], in: "api")
        try fixture.write("api/README.md", "two\n")
        try await fixture.git(["stash", "push", "-q", "-m", "second wip"], in: "api")
        let facts = try await agree(fixture, "api")
        #expect(facts.stashes == ["On main: second wip", "On main: first wip"])
    }

    @Test("a merge with a conflict, and a rebase stopped on one, are in progress")
    func operations() async throws {
        let scratch = try ScratchDirectory()
        let fixture = GitFixture(root: scratch.path)
        try await fixture.pushedClone("api")
        try await fixture.git(["checkout", "-q", "-b", "other"], in: "api")
        try await fixture.commit("api", file: "README.md", content: "other\n", message: "other side")
        try await fixture.git(["checkout", "-q", "main"], in: "api")
        try await fixture.commit("api", file: "README.md", content: "main\n", message: "main side")
        try await fixture.git(["merge", "other"], in: "api", allowFailure: true)
        let merging = try await agree(fixture, "api", "merge")
        #expect(merging.operation == "merge")
        #expect(merging.workingTree?.conflicted.sample == ["README.md"])
        try await fixture.git(["merge", "--abort"], in: "api")

        try await fixture.git(["rebase", "other"], in: "api", allowFailure: true)
        let rebasing = try await agree(fixture, "api", "rebase")
        #expect(rebasing.operation == "rebase")
        #expect(rebasing.workingTree?.conflicted.count == 1)
    }

    @Test("a submodule at another commit than recorded, and one with uncommitted changes")
    func submodules() async throws {
        let scratch = try ScratchDirectory()
        let fixture = GitFixture(root: scratch.path)
        try await fixture.pushedClone("lib")
        try await fixture.pushedClone("app")
        try await fixture.git(["submodule", "add", "-q", scratch.path + "/remotes/lib.git", "vendor/lib"], in: "app")
        try await fixture.git(["commit", "-q", "-m", "add lib"], in: "app")
        var facts = try await agree(fixture, "app", "submodule clean")
        #expect(facts.submodules.map(\.path) == ["vendor/lib"])
        #expect(facts.submodules.first?.dirty == false && facts.submodules.first?.commitDiffers == false)

        try fixture.write("app/vendor/lib/README.md", "dirty\n")
        facts = try await inspect(fixture, "app")
        #expect(facts.submodules.first?.dirty == true)
        try await fixture.git(["checkout", "-q", "README.md"], in: "app/vendor/lib")
        try await fixture.commit("app/vendor/lib", file: "new.txt", content: "n\n", message: "moved on")
        facts = try await inspect(fixture, "app")
        #expect(facts.submodules.first?.commitDiffers == true)
        // git agrees that the parent sees a modified submodule.
        let status = try await fixture.git(["status", "--porcelain=v2"], in: "app")
        #expect(status.contains("vendor/lib"))
    }

    @Test("a dirty linked worktree and a bare repository")
    func worktreeAndBare() async throws {
        let scratch = try ScratchDirectory()
        let fixture = GitFixture(root: scratch.path)
        try await fixture.pushedClone("api")
        try await fixture.git(["worktree", "add", "-q", "-b", "hotfix", scratch.path + "/api-hotfix"], in: "api")
        try fixture.write("api-hotfix/README.md", "hotfix in progress\n")
        let worktree = try await agree(fixture, "api-hotfix")
        #expect(worktree.isLinkedWorktree)
        #expect(worktree.head == .branch("hotfix"))
        #expect(worktree.workingTree?.modified.sample == ["README.md"])

        let bare = try await Repository.inspect(at: scratch.path + "/remotes/api.git")
        #expect(bare.isBare)
        #expect(bare.workingTree == nil)
        #expect(bare.branches.map(\.name) == ["main"])
    }

    @Test("remote URLs: file:// and plain paths are local directories, resolved; network and scp-like URLs are not")
    func remoteLocations() async throws {
        let scratch = try ScratchDirectory()
        let fixture = GitFixture(root: scratch.path)
        try await fixture.pushedClone("api")
        try FileManager.default.createSymbolicLink(atPath: scratch.path + "/link", withDestinationPath: scratch.path + "/remotes")
        try await fixture.git(["remote", "add", "relative", "../link/api.git"], in: "api")
        try await fixture.git(["remote", "add", "web", "https://example.invalid/api.git"], in: "api")
        try await fixture.git(["remote", "add", "backup", "file://\(scratch.path)/remotes/./gone.git"], in: "api")
        try await fixture.git(["remote", "set-url", "--push", "web", scratch.path + "/remotes/../remotes/api.git"], in: "api")
        let facts = try await inspect(fixture, "api")
        let remotes = Dictionary(try #require(facts.remoteLocations).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let bare = scratch.path + "/remotes/api.git"
        #expect(facts.remotes == ["backup", "origin", "relative", "web"])
        #expect(remotes["origin"]?.localPaths == [bare])
        #expect(remotes["relative"]?.localPaths == [bare], "a relative path starts at the working tree; the symlink is resolved")
        #expect(remotes["backup"]?.localPaths == [scratch.path + "/remotes/gone.git"], "a missing directory resolves as far as it exists")
        #expect(remotes["web"]?.url == "https://example.invalid/api.git")
        #expect(remotes["web"]?.localPaths == [bare], "the push URL counts too")
        #expect(facts.discountedRemotes == nil && facts.commitsOnNoCountedRemote == nil)

        let base = scratch.path + "/api/"
        #expect(Repository.localDirectory(ofURL: "git@github.com:coder/api.git", relativeTo: base) == nil)
        #expect(Repository.localDirectory(ofURL: "ssh://git@host/api.git", relativeTo: base) == nil)
        #expect(Repository.localDirectory(ofURL: "file://localhost/srv/x%20y.git", relativeTo: base) == "/srv/x y.git")
        #expect(Repository.localDirectory(ofURL: "./a:b", relativeTo: base) == base + "a:b")

        // Told to discount origin (as a git check does with a remote inside its paths), the
        // commits count as on no remote unless another remote's refs hold them.
        let discounted = try await Repository.inspect(at: scratch.path + "/api", discounting: { $0.name == "origin" })
        #expect(discounted.discountedRemotes == ["origin"])
        #expect(discounted.commitsOnNoCountedRemote == 1)
        #expect(discounted.commitsOnNoRemote == 0)
        try await fixture.git(["fetch", "-q", "relative"], in: "api")
        let alsoElsewhere = try await Repository.inspect(at: scratch.path + "/api", discounting: { $0.name == "origin" })
        #expect(alsoElsewhere.commitsOnNoCountedRemote == 0)
    }
}
