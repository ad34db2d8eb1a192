import Foundation

/// Builds repositories with the git CLI in a scratch directory: the real thing, in every state
/// the git preflight must recognise. git is also the oracle the tests compare against.
public struct GitFixture: Sendable {
    public let root: String

    public init(root: String) {
        self.root = root
    }

    public static let environment: [String: String?] = [
        "GIT_AUTHOR_NAME": "Repave Test", "GIT_AUTHOR_EMAIL": "test@repave.invalid",
        "GIT_COMMITTER_NAME": "Repave Test", "GIT_COMMITTER_EMAIL": "test@repave.invalid",
        "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "GIT_EDITOR": "true",
        "GIT_TERMINAL_PROMPT": "0",
    ]

    /// Runs git in `directory` (relative to the root) and returns its trimmed stdout.
    @discardableResult
    public func git(_ arguments: [String], in directory: String = "", allowFailure: Bool = false) async throws -> String {
        let path = directory.isEmpty ? root : root + "/" + directory
        let result = try await runProcess("git", ["-c", "protocol.file.allow=always", "-c", "init.defaultBranch=main"] + arguments,
                                          environment: Self.environment, workingDirectory: path)
        if result.status != 0 && !allowFailure {
            throw GitCommandFailed(command: "git \(arguments.joined(separator: " ")) in \(path)", output: result.standardError)
        }
        return result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func write(_ relative: String, _ content: String) throws {
        let path = root + "/" + relative
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try content.write(toFile: path, atomically: false, encoding: .utf8)
    }

    public func mkdir(_ relative: String) throws {
        try FileManager.default.createDirectory(atPath: root + "/" + relative, withIntermediateDirectories: true)
    }

    /// A bare "remote" plus a clone of it with one pushed commit: the clean, pushed baseline.
    @discardableResult
    public func pushedClone(_ name: String, remote: String? = nil) async throws -> String {
        let origin = remote ?? "remotes/\(name).git"
        try mkdir(origin)
        try await git(["init", "-q", "--bare"], in: origin)
        try await git(["clone", "-q", root + "/" + origin, name])
        try write("\(name)/README.md", "# \(name)\n")
        try await git(["add", "README.md"], in: name)
        try await git(["commit", "-q", "-m", "first"], in: name)
        try await git(["push", "-q", "-u", "origin", "main"], in: name)
        return name
    }

    public func commit(_ name: String, file: String, content: String, message: String) async throws {
        try write("\(name)/\(file)", content)
        try await git(["add", file], in: name)
        try await git(["commit", "-q", "-m", message], in: name)
    }
}

public struct GitCommandFailed: Error, CustomStringConvertible {
    public let command: String
    public let output: String
    public var description: String { "\(command) failed: \(output)" }
}
