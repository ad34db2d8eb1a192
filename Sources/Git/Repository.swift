import CGit2

/// An open repository. Owns its `git_repository *`; like every libgit2 object it must not be used
/// by two threads at once, so it is deliberately not `Sendable`: open one per task.
public final class Repository {
    let raw: OpaquePointer

    /// The `.git` directory (or the repository itself when bare), with a trailing slash.
    public let gitDirectory: String
    /// The working tree, with a trailing slash; nil for a bare repository.
    public let workingDirectory: String?

    private init(raw: OpaquePointer) {
        self.raw = raw
        self.gitDirectory = String(cString: git_repository_path(raw))
        self.workingDirectory = git_repository_workdir(raw).map { String(cString: $0) }
    }

    deinit {
        git_repository_free(raw)
    }

    public var isBare: Bool { git_repository_is_bare(raw) != 0 }

    /// Opens the repository at exactly `path` (its working tree, `.git` directory or a bare
    /// repository), without searching parent directories.
    public static func open(at path: String) throws(GitError) -> Repository {
        try open(path, flags: GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue, operation: "open repository at \(path)")
    }

    /// Opens the repository containing `path`, searching parent directories as `git` does.
    public static func discover(from path: String) throws(GitError) -> Repository {
        try open(path, flags: 0, operation: "find a repository containing \(path)")
    }

    private static func open(_ path: String, flags: UInt32, operation: String) throws(GitError) -> Repository {
        try GitLibrary.ensureInitialized()
        var raw: OpaquePointer?
        let result = git_repository_open_ext(&raw, path, flags, nil)
        // libgit2 1.5 reports both "not a repository" and "owned by another user while no
        // safe.directory is configured" as GIT_ENOTFOUND; its message tells them apart, so keep it.
        try GitError.check(result, operation)
        guard let raw else {
            throw GitError(code: .generic, errorClass: 0, message: "libgit2 returned no repository", operation: operation)
        }
        return Repository(raw: raw)
    }

    /// The branch HEAD points at (`main`), or nil when HEAD is detached or unborn.
    public func currentBranch() throws(GitError) -> String? {
        var head: OpaquePointer?
        let result = git_repository_head(&head, raw)
        // Unborn: no commit yet. A missing HEAD (GIT_ENOTFOUND) is a broken repository: an error.
        if result == GIT_EUNBORNBRANCH.rawValue { return nil }
        try GitError.check(result, "read HEAD of \(gitDirectory)")
        defer { git_reference_free(head) }
        guard git_reference_is_branch(head) != 0, let name = git_reference_shorthand(head) else { return nil }
        return String(cString: name)
    }
}
