import CGit2
import CGit2Shim

/// libgit2's process-wide state. `git_libgit2_init` is reference counted and cheap to keep: we
/// initialise once, lazily, and never shut down (a CLI exits instead).
public enum GitLibrary {
    private static let initialized: Int32 = git_libgit2_init()

    static func ensureInitialized() throws(GitError) {
        try GitError.check(initialized, "initialise libgit2")
    }

    /// libgit2's version, e.g. `1.5.1`.
    public static var version: String {
        _ = initialized
        var major: Int32 = 0, minor: Int32 = 0, revision: Int32 = 0
        git_libgit2_version(&major, &minor, &revision)
        return "\(major).\(minor).\(revision)"
    }

    /// Whether libgit2 refuses repositories owned by another user (git's `safe.directory`).
    /// A volume mounted from a pod usually belongs to another uid than the operator's, so the git
    /// preflight decides this explicitly instead of inheriting it.
    public static func setOwnerValidation(_ enabled: Bool) throws(GitError) {
        try ensureInitialized()
        try GitError.check(cgit2_set_owner_validation(enabled ? 1 : 0), "set owner validation")
    }

    public static func ownerValidation() throws(GitError) -> Bool {
        try ensureInitialized()
        var enabled: Int32 = 0
        try GitError.check(cgit2_get_owner_validation(&enabled), "read owner validation")
        return enabled != 0
    }
}
