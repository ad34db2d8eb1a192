import Foundation
import RepaveTestSupport
import Testing

@testable import Git

/// libgit2 on repositories made with the git CLI, the oracle.
@Suite("Git repositories")
struct RepositoryTests {
    func git(_ arguments: [String], in directory: String) async throws -> String {
        let result = try await runProcess("git", arguments, environment: [
            "GIT_AUTHOR_NAME": "Repave Test", "GIT_AUTHOR_EMAIL": "test@repave.invalid",
            "GIT_COMMITTER_NAME": "Repave Test", "GIT_COMMITTER_EMAIL": "test@repave.invalid",
            "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
        ], workingDirectory: directory)
        #expect(result.status == 0, "git \(arguments.joined(separator: " ")): \(result.standardError)")
        return result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A repository with one commit on `main` and a subdirectory.
    func makeRepository(in scratch: ScratchDirectory) async throws -> String {
        let path = scratch.file("work")
        try FileManager.default.createDirectory(atPath: path + "/src/deep", withIntermediateDirectories: true)
        _ = try await git(["init", "-q", "-b", "main"], in: path)
        try "hello\n".write(toFile: path + "/src/deep/file.txt", atomically: true, encoding: .utf8)
        _ = try await git(["add", "."], in: path)
        _ = try await git(["commit", "-q", "-m", "first"], in: path)
        return path
    }

    @Test("open finds a repository made with the git CLI, and its branch")
    func openRepository() async throws {
        let scratch = try ScratchDirectory()
        let path = try await makeRepository(in: scratch)
        let repository = try Repository.open(at: path)
        let top = try await git(["rev-parse", "--show-toplevel"], in: path)
        let gitDir = try await git(["rev-parse", "--absolute-git-dir"], in: path)
        #expect(repository.workingDirectory == top + "/")
        #expect(repository.gitDirectory == gitDir + "/")
        #expect(!repository.isBare)
        #expect(try repository.currentBranch() == "main")
    }

    @Test("discover walks up from a subdirectory; open does not")
    func discoverFromSubdirectory() async throws {
        let scratch = try ScratchDirectory()
        let path = try await makeRepository(in: scratch)
        let repository = try Repository.discover(from: path + "/src/deep")
        let top = try await git(["rev-parse", "--show-toplevel"], in: path)
        #expect(repository.workingDirectory == top + "/")
        let error = #expect(throws: GitError.self) { try Repository.open(at: path + "/src/deep") }
        #expect(error?.code == .notFound)
    }

    @Test("a path that is not a repository is a clear error naming the path")
    func notARepository() throws {
        let scratch = try ScratchDirectory()
        let error = #expect(throws: GitError.self) { try Repository.discover(from: scratch.path) }
        #expect(error?.code == .notFound)
        #expect(error?.operation == "find a repository containing \(scratch.path)")
        #expect(error?.message.contains(scratch.path) == true, "libgit2 said: \(error?.message ?? "")")
        #expect(error?.description.hasPrefix("failed to find a repository containing \(scratch.path): ") == true)
    }

    @Test("bare repositories and unborn branches")
    func bareAndUnborn() async throws {
        let scratch = try ScratchDirectory()
        let bare = scratch.file("bare.git")
        try FileManager.default.createDirectory(atPath: bare, withIntermediateDirectories: true)
        _ = try await git(["init", "-q", "--bare", "-b", "main"], in: bare)
        let repository = try Repository.open(at: bare)
        #expect(repository.isBare)
        #expect(repository.workingDirectory == nil)
        // No commit yet: HEAD names a branch that does not exist.
        #expect(try repository.currentBranch() == nil)
    }

    @Test("errors are read on the failing thread: concurrent failures keep their own messages")
    func threadLocalErrors() async throws {
        let scratch = try ScratchDirectory()
        let good = try await makeRepository(in: scratch)
        let missing = (0..<8).map { scratch.file("missing-\($0)") }
        for path in missing { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        let results = await withTaskGroup(of: (String, String?).self) { group in
            for path in missing {
                group.addTask {
                    do {
                        _ = try Repository.open(at: path)
                        return (path, nil)
                    } catch {
                        return (path, (error as? GitError)?.message ?? "\(error)")
                    }
                }
                group.addTask {
                    // Successful opens on other threads must not disturb the failures' messages.
                    (good, (try? Repository.open(at: good)) == nil ? "unexpected failure" : nil)
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        for (path, message) in results {
            if path == good {
                #expect(message == nil)
            } else {
                #expect(message?.contains(path) == true, "\(path): \(message ?? "no error")")
            }
        }
    }

    @Test("owner validation can be read and set explicitly")
    func ownerValidation() throws {
        let original = try GitLibrary.ownerValidation()
        defer { try? GitLibrary.setOwnerValidation(original) }
        try GitLibrary.setOwnerValidation(false)
        #expect(try GitLibrary.ownerValidation() == false)
        try GitLibrary.setOwnerValidation(true)
        #expect(try GitLibrary.ownerValidation() == true)
        #expect(GitLibrary.version.hasPrefix("1."))
    }
}
