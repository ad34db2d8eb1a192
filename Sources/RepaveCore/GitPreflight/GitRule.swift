import Git

/// What a repository must satisfy before its volume may be recreated (a plan's
/// `gitPreflight.require`).
public enum GitRule: String, Sendable, Codable, CaseIterable {
    /// Nothing staged, modified, deleted, conflicted or untracked (beyond ignore globs), no
    /// merge/rebase/cherry-pick in progress, submodules at their recorded commits and clean.
    case clean
    /// Every commit is on a remote: no branch ahead of its upstream, none with commits but no
    /// upstream, no detached commits on no branch, and a remote at all once anything is committed.
    /// A remote that is a local path inside the checked paths is no copy (it is deleted with the
    /// volume): the commits must also be on another remote.
    case pushed
    /// No stash entries (a stash lives only in this repository).
    case noStash = "no-stash"

    public static let defaults: [GitRule] = [.clean, .pushed, .noStash]

    /// One line per failure of this rule, e.g. `2 modified: src/a.ts, src/b.ts`.
    public func failures(_ facts: RepositoryFacts) -> [String] {
        switch self {
        case .clean: Self.cleanFailures(facts)
        case .pushed: Self.pushedFailures(facts)
        case .noStash:
            facts.stashes.isEmpty ? [] : ["\(count(facts.stashes.count, "stash", "stashes")): " + facts.stashes.prefix(3).joined(separator: "; ")]
        }
    }

    private static func cleanFailures(_ facts: RepositoryFacts) -> [String] {
        var reasons: [String] = []
        if let operation = facts.operation { reasons.append("\(operation) in progress") }
        if let tree = facts.workingTree {
            let kinds: [(String, RepositoryFacts.Paths)] = [
                ("conflicted", tree.conflicted), ("staged", tree.staged), ("modified", tree.modified),
                ("deleted", tree.deleted), ("type-changed", tree.typeChanged), ("untracked", tree.untracked),
                ("hidden by skip-worktree or assume-unchanged (git status cannot show their edits)", tree.hiddenByIndexFlags),
            ]
            for (name, paths) in kinds where paths.count > 0 {
                let more = paths.count > paths.sample.count ? ", …" : ""
                reasons.append("\(paths.count) \(name): \(paths.sample.joined(separator: ", "))\(more)")
            }
        }
        for submodule in facts.submodules {
            if submodule.commitDiffers { reasons.append("submodule \(submodule.path): checked-out commit differs from the recorded one") }
            if submodule.dirty { reasons.append("submodule \(submodule.path): has uncommitted changes") }
        }
        return reasons
    }

    private static func pushedFailures(_ facts: RepositoryFacts) -> [String] {
        var reasons: [String] = []
        let hasCommits: Bool = if case .unborn = facts.head { facts.branches.contains { ($0.commitsOnNoRemote ?? 0) > 0 } } else { true }
        if facts.remotes.isEmpty {
            if hasCommits && facts.commitsOnNoRemote > 0 {
                reasons.append("no remote: \(count(facts.commitsOnNoRemote, "commit")) \(facts.commitsOnNoRemote == 1 ? "exists" : "exist") only here")
            }
            return reasons
        }
        if let lost = facts.discountedRemotes, let unsaved = facts.commitsOnNoCountedRemote, unsaved > 0 {
            for name in lost {
                let remote = facts.remoteLocations?.first { $0.name == name }
                reasons.append("remote '\(name)' is \(remote?.localPaths.first ?? remote?.url ?? "a local path"), inside the checked paths: it is deleted with the volume")
            }
            reasons.append("\(count(unsaved, "commit")) \(unsaved == 1 ? "is" : "are") on no remote outside the checked paths")
        }
        for branch in facts.branches {
            if let ahead = branch.ahead, ahead > 0, let upstream = branch.upstream {
                reasons.append("branch \(branch.name) is \(count(ahead, "commit")) ahead of \(upstream)")
            } else if let unique = branch.commitsOnNoRemote, unique > 0 {
                reasons.append(branch.upstreamGone
                    ? "branch \(branch.name): upstream \(branch.upstream ?? "") is gone; \(count(unique, "commit")) on no remote"
                    : "branch \(branch.name) has no upstream; \(count(unique, "commit")) on no remote")
            }
        }
        if facts.commitsOnNoBranch > 0, case .detached(let commit) = facts.head {
            reasons.append("HEAD is detached at \(commit.prefix(12)) with \(count(facts.commitsOnNoBranch, "commit")) on no branch or remote")
        }
        if reasons.isEmpty && facts.commitsOnNoRemote > 0 {
            // Branch by branch everything is pushed, yet commits exist that no remote has
            // (reachable from a tag, say).
            reasons.append("\(count(facts.commitsOnNoRemote, "commit")) reachable from tags or HEAD \(facts.commitsOnNoRemote == 1 ? "is" : "are") on no remote")
        }
        return reasons
    }
}

func count(_ n: Int, _ singular: String, _ plural: String? = nil) -> String {
    "\(n) \(n == 1 ? singular : plural ?? singular + "s")"
}
