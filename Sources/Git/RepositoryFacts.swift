/// What a repository holds that is not safe upstream, as `git` itself would report it. Plain
/// values copied out of libgit2, so they outlive the repository handle and cross threads.
public struct RepositoryFacts: Sendable, Codable, Equatable {
    /// Paths of one kind of change: how many, and the first few.
    public struct Paths: Sendable, Codable, Equatable {
        public var count = 0
        public var sample: [String] = []

        mutating func add(_ path: String, limit: Int = 5) {
            count += 1
            if sample.count < limit { sample.append(path) }
        }
    }

    public struct WorkingTree: Sendable, Codable, Equatable {
        /// Changes in the index (staged): new, modified, deleted, renamed or type-changed files.
        public var staged = Paths()
        /// Tracked files modified in the working tree and not staged.
        public var modified = Paths()
        /// Tracked files deleted from the working tree and not staged.
        public var deleted = Paths()
        public var renamed = Paths()
        public var typeChanged = Paths()
        /// Unmerged paths of a merge, rebase or cherry-pick.
        public var conflicted = Paths()
        /// Untracked and not ignored (by .gitignore or by the check's ignore globs). Untracked
        /// directories count once, as `git status` shows them.
        public var untracked = Paths()
        /// Tracked files marked skip-worktree or assume-unchanged, whose edits git hides.
        public var hiddenByIndexFlags = Paths()
        /// Untracked paths (directories collapsed) left out because an ignore glob (e.g.
        /// `**/node_modules/**`) matched: not a failure, but lost with the volume.
        public var untrackedExcludedByGlob: [String] = []
        /// Every untracked directory not excluded by a glob (with a trailing slash): where a
        /// nested repository could hide.
        public var untrackedDirectories: [String] = []

        public var isClean: Bool {
            staged.count + modified.count + deleted.count + renamed.count + typeChanged.count + conflicted.count + untracked.count
                + hiddenByIndexFlags.count == 0
        }
    }

    public struct Branch: Sendable, Codable, Equatable {
        public var name: String
        /// `origin/main`; nil when the branch tracks nothing.
        public var upstream: String?
        /// Commits on the branch that its upstream lacks, and the reverse.
        public var ahead: Int?
        public var behind: Int?
        /// Without an upstream: commits on the branch that no remote-tracking ref contains.
        public var commitsOnNoRemote: Int?
        /// The upstream is configured but its remote-tracking ref is gone (`[gone]`).
        public var upstreamGone = false
    }

    public enum Head: Sendable, Codable, Equatable {
        case branch(String)
        /// Detached at this commit.
        case detached(String)
        /// No commit yet on this branch.
        case unborn(String)
    }

    public struct Submodule: Sendable, Codable, Equatable {
        public var name: String
        public var path: String
        /// The checked-out commit is not the one the parent records.
        public var commitDiffers: Bool
        /// Modified or untracked content inside the submodule.
        public var dirty: Bool
        public var uninitialized: Bool
    }

    /// A remote and where it points.
    public struct Remote: Sendable, Codable, Equatable {
        public var name: String
        public var url: String
        /// `remote.NAME.pushurl` when set: where `git push` sends commits instead of `url`.
        public var pushURL: String?
        /// The directories `url` and `pushURL` name when they are local (a `file://` URL or a
        /// path), absolute, with symlinks and `..` resolved; empty for a network remote.
        public var localPaths: [String]
    }

    /// The working tree (or the bare repository's directory).
    public var path: String
    public var gitDirectory: String
    public var isBare: Bool
    public var isLinkedWorktree: Bool
    public var head: Head
    /// `merge`, `rebase`, `cherry-pick`, `revert`, `bisect`, `am`; nil when none is in progress.
    public var operation: String?
    /// nil for a bare repository.
    public var workingTree: WorkingTree?
    public var branches: [Branch]
    /// Commits reachable from local branches, tags and HEAD that no remote-tracking ref contains:
    /// `git rev-list --count --branches --tags HEAD --not --remotes`.
    public var commitsOnNoRemote: Int
    /// With a detached HEAD: commits reachable from HEAD but from no branch and no remote.
    public var commitsOnNoBranch: Int
    public var stashes: [String]
    public var submodules: [Submodule]
    /// The remotes' names.
    public var remotes: [String]
    /// Top-level paths ignored by .gitignore (not recursed into): what recreating the volume
    /// loses from inside this repository.
    public var ignored: [String]
    /// Every remote with its URLs. Optional, like the two below, so that a report written before
    /// they existed still decodes.
    public var remoteLocations: [Remote]?
    /// The remotes the inspection was told not to count as copies (a git check's: those inside
    /// the paths it checks, deleted with the volume); nil when there were none.
    public var discountedRemotes: [String]?
    /// With ``discountedRemotes``: commits reachable from local branches, tags and HEAD that no
    /// remote-tracking ref of any other remote contains (`git rev-list --count --branches --tags
    /// HEAD --not --remotes=OTHER…`); nil when no remote was discounted.
    public var commitsOnNoCountedRemote: Int?
}
