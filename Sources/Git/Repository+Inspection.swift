import Blocking
import CGit2
import Foundation

extension Repository {
    /// Collects every fact of ``RepositoryFacts``. Blocking and thread-bound, like the handle:
    /// call it on a thread of its own (``inspect(at:excluded:discounting:)`` does).
    ///
    /// - Parameters:
    ///   - excluded: untracked paths (relative to the working tree, directories with a trailing
    ///     slash) for which it returns true are not counted as untracked.
    ///   - discounting: remotes for which it returns true do not count as copies: their
    ///     remote-tracking refs are left out of ``RepositoryFacts/commitsOnNoCountedRemote``.
    public func inspect(
        excluded: (String) -> Bool = { _ in false }, discounting: (RepositoryFacts.Remote) -> Bool = { _ in false }
    ) throws(GitError) -> RepositoryFacts {
        assertOffPool("libgit2 inspection of \(workingDirectory ?? gitDirectory)")
        let tree = isBare ? nil : try workingTree(excluded: excluded)
        let remotes = try remoteLocations()
        let discounted = remotes.filter(discounting)
        let counted = remotes.filter { remote in !discounted.contains { $0.name == remote.name } }
        return RepositoryFacts(
            path: workingDirectory ?? gitDirectory,
            gitDirectory: gitDirectory,
            isBare: isBare,
            isLinkedWorktree: git_repository_is_worktree(raw) != 0,
            head: try head(),
            operation: operation(),
            workingTree: tree?.tree,
            branches: try branches(),
            commitsOnNoRemote: try countCommits(push: ["refs/heads/*", "refs/tags/*"], includeHead: true, hide: ["refs/remotes/*"]),
            commitsOnNoBranch: git_repository_head_detached(raw) == 1
                ? try countCommits(push: [], includeHead: true, hide: ["refs/heads/*", "refs/remotes/*"]) : 0,
            stashes: isBare ? [] : try stashes(),
            submodules: isBare ? [] : try submodules(),
            remotes: remotes.map(\.name),
            ignored: tree?.ignored ?? [],
            remoteLocations: remotes,
            discountedRemotes: discounted.isEmpty ? nil : discounted.map(\.name),
            commitsOnNoCountedRemote: discounted.isEmpty ? nil
                : try countCommits(push: ["refs/heads/*", "refs/tags/*"], includeHead: true, hide: counted.map { "refs/remotes/\($0.name)/*" }))
    }

    func head() throws(GitError) -> RepositoryFacts.Head {
        if git_repository_head_unborn(raw) == 1 {
            var reference: OpaquePointer?
            defer { git_reference_free(reference) }
            // HEAD is symbolic to a branch that has no commit yet.
            if git_reference_lookup(&reference, raw, "HEAD") == 0, let target = git_reference_symbolic_target(reference) {
                return .unborn(String(cString: target).replacingOccurrences(of: "refs/heads/", with: ""))
            }
            return .unborn("")
        }
        var reference: OpaquePointer?
        try GitError.check(git_repository_head(&reference, raw), "read HEAD of \(gitDirectory)")
        defer { git_reference_free(reference) }
        if git_repository_head_detached(raw) == 1 {
            return .detached(git_reference_target(reference).map(hex) ?? "")
        }
        return .branch(git_reference_shorthand(reference).map { String(cString: $0) } ?? "")
    }

    func operation() -> String? {
        switch git_repository_state(raw) {
        case Int32(GIT_REPOSITORY_STATE_MERGE.rawValue): "merge"
        case Int32(GIT_REPOSITORY_STATE_REVERT.rawValue), Int32(GIT_REPOSITORY_STATE_REVERT_SEQUENCE.rawValue): "revert"
        case Int32(GIT_REPOSITORY_STATE_CHERRYPICK.rawValue), Int32(GIT_REPOSITORY_STATE_CHERRYPICK_SEQUENCE.rawValue): "cherry-pick"
        case Int32(GIT_REPOSITORY_STATE_BISECT.rawValue): "bisect"
        case Int32(GIT_REPOSITORY_STATE_REBASE.rawValue), Int32(GIT_REPOSITORY_STATE_REBASE_INTERACTIVE.rawValue),
             Int32(GIT_REPOSITORY_STATE_REBASE_MERGE.rawValue): "rebase"
        case Int32(GIT_REPOSITORY_STATE_APPLY_MAILBOX.rawValue), Int32(GIT_REPOSITORY_STATE_APPLY_MAILBOX_OR_REBASE.rawValue): "am"
        default: nil
        }
    }

    /// One status pass (the working-tree scan is the expensive part): changes, untracked and
    /// ignored entries together.
    func workingTree(excluded: (String) -> Bool) throws(GitError) -> (tree: RepositoryFacts.WorkingTree, ignored: [String]) {
        var options = git_status_options()
        try GitError.check(git_status_options_init(&options, UInt32(GIT_STATUS_OPTIONS_VERSION)), "prepare status")
        options.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR
        // As `git status`: untracked directories collapsed, renames detected in the index,
        // submodules judged separately.
        options.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED.rawValue | GIT_STATUS_OPT_INCLUDE_IGNORED.rawValue
            | GIT_STATUS_OPT_RENAMES_HEAD_TO_INDEX.rawValue | GIT_STATUS_OPT_EXCLUDE_SUBMODULES.rawValue
        var list: OpaquePointer?
        try GitError.check(git_status_list_new(&list, raw, &options), "read the status of \(workingDirectory ?? gitDirectory)")
        defer { git_status_list_free(list) }

        var tree = RepositoryFacts.WorkingTree()
        var ignored: [String] = []
        for index in 0..<git_status_list_entrycount(list) {
            guard let entry = git_status_byindex(list, index)?.pointee else { continue }
            let flags = entry.status.rawValue
            let delta = entry.index_to_workdir ?? entry.head_to_index
            let path = delta.flatMap { $0.pointee.new_file.path ?? $0.pointee.old_file.path }.map { String(cString: $0) } ?? ""
            if flags & GIT_STATUS_CONFLICTED.rawValue != 0 {
                tree.conflicted.add(path)
                continue
            }
            // Staged changes first: a path can be both staged (deleted from the index) and now
            // ignored or untracked (`git rm --cached secret.env`), and the staged part must count.
            let staged = GIT_STATUS_INDEX_NEW.rawValue | GIT_STATUS_INDEX_MODIFIED.rawValue | GIT_STATUS_INDEX_DELETED.rawValue
                | GIT_STATUS_INDEX_RENAMED.rawValue | GIT_STATUS_INDEX_TYPECHANGE.rawValue
            if flags & staged != 0 { tree.staged.add(entry.head_to_index.flatMap { $0.pointee.new_file.path ?? $0.pointee.old_file.path }.map { String(cString: $0) } ?? path) }
            if flags & GIT_STATUS_INDEX_RENAMED.rawValue != 0 { tree.renamed.add(path) }
            if flags & GIT_STATUS_IGNORED.rawValue != 0 {
                ignored.append(path)
                continue
            }
            if flags & GIT_STATUS_WT_NEW.rawValue != 0 {
                if excluded(path) || onlyExcludedInside(path, excluded: excluded) {
                    tree.untrackedExcludedByGlob.append(path)
                } else {
                    tree.untracked.add(path)
                    if path.hasSuffix("/") { tree.untrackedDirectories.append(path) }
                }
                continue
            }
            if flags & (GIT_STATUS_INDEX_TYPECHANGE.rawValue | GIT_STATUS_WT_TYPECHANGE.rawValue) != 0 { tree.typeChanged.add(path) }
            if flags & GIT_STATUS_WT_MODIFIED.rawValue != 0 { tree.modified.add(path) }
            if flags & GIT_STATUS_WT_DELETED.rawValue != 0 { tree.deleted.add(path) }
        }
        try hiddenByIndexFlags(into: &tree)
        return (tree, ignored)
    }

    /// Files marked skip-worktree or assume-unchanged: neither git nor libgit2 shows their edits,
    /// so their state cannot be proven; they are reported (a conservative failure).
    private func hiddenByIndexFlags(into tree: inout RepositoryFacts.WorkingTree) throws(GitError) {
        var index: OpaquePointer?
        try GitError.check(git_repository_index(&index, raw), "read the index of \(workingDirectory ?? gitDirectory)")
        defer { git_index_free(index) }
        for position in 0..<git_index_entrycount(index) {
            guard let entry = git_index_get_byindex(index, position)?.pointee else { continue }
            let hidden = UInt32(entry.flags) & GIT_INDEX_ENTRY_VALID.rawValue != 0
                || UInt32(entry.flags_extended) & GIT_INDEX_ENTRY_SKIP_WORKTREE.rawValue != 0
            if hidden, let path = entry.path { tree.hiddenByIndexFlags.add(String(cString: path)) }
        }
    }

    /// An untracked directory that git shows as one entry may hold nothing but excluded content
    /// (`tools/node_modules/…`): look inside before calling it untracked.
    private func onlyExcludedInside(_ path: String, excluded: (String) -> Bool) -> Bool {
        guard path.hasSuffix("/"), let root = workingDirectory else { return false }
        var stack = [path]
        var visited = 0
        while let directory = stack.popLast() {
            visited += 1
            if visited > 10_000 { return false }   // too big to prove: count it as untracked
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: root + directory) else { return false }
            // A repository inside is never "only excluded content": it must be searched.
            if names.contains(".git") { return false }
            for name in names {
                let relative = directory + name
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: root + relative, isDirectory: &isDirectory) else { continue }
                let candidate = isDirectory.boolValue ? relative + "/" : relative
                if excluded(candidate) { continue }
                var ignored: Int32 = 0
                if git_ignore_path_is_ignored(&ignored, raw, candidate) == 0, ignored == 1 { continue }
                if isDirectory.boolValue { stack.append(candidate) } else { return false }
            }
        }
        return true
    }

    func branches() throws(GitError) -> [RepositoryFacts.Branch] {
        var iterator: OpaquePointer?
        try GitError.check(git_branch_iterator_new(&iterator, raw, GIT_BRANCH_LOCAL), "list branches")
        defer { git_branch_iterator_free(iterator) }
        var result: [RepositoryFacts.Branch] = []
        while true {
            var reference: OpaquePointer?
            var type = GIT_BRANCH_LOCAL
            let next = git_branch_next(&reference, &type, iterator)
            if next == GIT_ITEROVER.rawValue { break }
            try GitError.check(next, "list branches")
            defer { git_reference_free(reference) }
            var name: UnsafePointer<CChar>?
            try GitError.check(git_branch_name(&name, reference), "read a branch name")
            var branch = RepositoryFacts.Branch(name: name.map { String(cString: $0) } ?? "")
            let fullName = "refs/heads/\(branch.name)"
            var upstreamName = git_buf()
            defer { git_buf_dispose(&upstreamName) }
            let configured = git_branch_upstream_name(&upstreamName, raw, fullName) == 0
            var upstream: OpaquePointer?
            let found = git_branch_upstream(&upstream, reference)
            defer { git_reference_free(upstream) }
            if found == 0, let upstream, let local = git_reference_target(reference), let remote = git_reference_target(upstream) {
                var ahead = 0, behind = 0
                try GitError.check(git_graph_ahead_behind(&ahead, &behind, raw, local, remote), "compare \(branch.name) with its upstream")
                branch.upstream = git_reference_shorthand(upstream).map { String(cString: $0) }
                branch.ahead = ahead
                branch.behind = behind
            } else {
                if configured, let pointer = upstreamName.ptr {
                    branch.upstream = String(cString: pointer).replacingOccurrences(of: "refs/remotes/", with: "")
                    branch.upstreamGone = true
                }
                branch.commitsOnNoRemote = try countCommits(push: [fullName], includeHead: false, hide: ["refs/remotes/*"])
            }
            result.append(branch)
        }
        return result.sorted { $0.name < $1.name }
    }

    /// Commits reachable from `push` globs (and HEAD) but from none of the `hide` globs.
    func countCommits(push: [String], includeHead: Bool, hide: [String]) throws(GitError) -> Int {
        if git_repository_head_unborn(raw) == 1 && push.isEmpty { return 0 }
        var walk: OpaquePointer?
        try GitError.check(git_revwalk_new(&walk, raw), "walk history")
        defer { git_revwalk_free(walk) }
        var pushed = false
        for glob in push {
            let result = glob.contains("*") ? git_revwalk_push_glob(walk, glob) : git_revwalk_push_ref(walk, glob)
            if result == GIT_ENOTFOUND.rawValue { continue }
            try GitError.check(result, "walk \(glob)")
            pushed = true
        }
        if includeHead, git_repository_head_unborn(raw) != 1 {
            try GitError.check(git_revwalk_push_head(walk), "walk HEAD")
            pushed = true
        }
        guard pushed else { return 0 }
        for glob in hide {
            try GitError.check(git_revwalk_hide_glob(walk, glob), "walk \(glob)")
        }
        var oid = git_oid()
        var count = 0
        while true {
            let next = git_revwalk_next(&oid, walk)
            if next == GIT_ITEROVER.rawValue { break }
            try GitError.check(next, "walk history")
            count += 1
        }
        return count
    }

    func stashes() throws(GitError) -> [String] {
        let box = StringCollector()
        let result = git_stash_foreach(raw, stashCallback, Unmanaged.passUnretained(box).toOpaque())
        // A repository without any stash ref answers 0 or GIT_ENOTFOUND depending on version.
        if result != GIT_ENOTFOUND.rawValue { try GitError.check(result, "list stashes") }
        return withExtendedLifetime(box) { box.values }
    }

    func submodules() throws(GitError) -> [RepositoryFacts.Submodule] {
        let box = StringCollector()
        try GitError.check(git_submodule_foreach(raw, submoduleCallback, Unmanaged.passUnretained(box).toOpaque()), "list submodules")
        var result: [RepositoryFacts.Submodule] = []
        for name in withExtendedLifetime(box, { box.values }) {
            var flags: UInt32 = 0
            try GitError.check(git_submodule_status(&flags, raw, name, GIT_SUBMODULE_IGNORE_UNSPECIFIED), "read submodule \(name)")
            var submodule: OpaquePointer?
            var path = name
            if git_submodule_lookup(&submodule, raw, name) == 0, let cPath = git_submodule_path(submodule) { path = String(cString: cPath) }
            git_submodule_free(submodule)
            let dirty = GIT_SUBMODULE_STATUS_WD_INDEX_MODIFIED.rawValue | GIT_SUBMODULE_STATUS_WD_WD_MODIFIED.rawValue
                | GIT_SUBMODULE_STATUS_WD_UNTRACKED.rawValue
            result.append(.init(
                name: name, path: path,
                commitDiffers: flags & (GIT_SUBMODULE_STATUS_WD_MODIFIED.rawValue | GIT_SUBMODULE_STATUS_INDEX_MODIFIED.rawValue) != 0,
                dirty: flags & dirty != 0,
                uninitialized: flags & GIT_SUBMODULE_STATUS_WD_UNINITIALIZED.rawValue != 0))
        }
        return result.sorted { $0.path < $1.path }
    }

    func remotes() throws(GitError) -> [String] {
        var names = git_strarray()
        try GitError.check(git_remote_list(&names, raw), "list remotes")
        defer { git_strarray_dispose(&names) }
        return (0..<names.count).compactMap { names.strings[$0].map { String(cString: $0) } }.sorted()
    }

    /// Every remote with its URLs as git uses them (`insteadOf` rewrites applied by libgit2).
    func remoteLocations() throws(GitError) -> [RepositoryFacts.Remote] {
        // git runs a fetch or push from the top of the working tree, so a relative path in a
        // remote URL starts there (at the repository itself when bare).
        let base = workingDirectory ?? gitDirectory
        var result: [RepositoryFacts.Remote] = []
        for name in try remotes() {
            var remote: OpaquePointer?
            try GitError.check(git_remote_lookup(&remote, raw, name), "read remote \(name)")
            defer { git_remote_free(remote) }
            let url = git_remote_url(remote).map { String(cString: $0) } ?? ""
            let pushURL = git_remote_pushurl(remote).map { String(cString: $0) }
            let local = ([url] + (pushURL.map { [$0] } ?? [])).compactMap { Self.localDirectory(ofURL: $0, relativeTo: base) }
            result.append(.init(name: name, url: url, pushURL: pushURL, localPaths: local))
        }
        return result
    }

    /// The directory a remote URL names when it is local, read as git reads it: a `file://` URL,
    /// or a path that is no scp-like `host:path` (a colon with no slash before it). Relative paths
    /// start at `base`. Symlinks and `..` are resolved as far as the path exists; nil for a
    /// network URL.
    static func localDirectory(ofURL url: String, relativeTo base: String) -> String? {
        var path: String
        if url.hasPrefix("file://") {
            var rest = url.dropFirst("file://".count)
            if !rest.hasPrefix("/") { rest = rest.drop { $0 != "/" } }   // file://localhost/path
            path = rest.removingPercentEncoding ?? String(rest)
        } else if url.contains("://") {
            return nil
        } else if let colon = url.firstIndex(of: ":"), !url[..<colon].contains("/") {
            return nil
        } else {
            path = url
        }
        guard !path.isEmpty else { return nil }
        if !path.hasPrefix("/") { path = (base.hasSuffix("/") ? base : base + "/") + path }
        return resolvingSymlinks(path)
    }

    /// `realpath` of the path, or of its longest existing ancestor with the rest appended (a
    /// remote may be gone; where it was still tells whether it was on the volume).
    static func resolvingSymlinks(_ path: String) -> String {
        var head = path
        var tail: [String] = []
        while !head.isEmpty {
            if let pointer = realpath(head, nil) {
                defer { free(pointer) }
                let real = String(cString: pointer)
                guard !tail.isEmpty else { return real }
                let joined = (real == "/" ? "" : real) + "/" + tail.reversed().joined(separator: "/")
                return URL(fileURLWithPath: joined).standardizedFileURL.path
            }
            let components = head.split(separator: "/", omittingEmptySubsequences: true)
            guard let last = components.last else { break }
            tail.append(String(last))
            head = "/" + components.dropLast().joined(separator: "/")
        }
        return URL(fileURLWithPath: path).standardizedFileURL.path
    }
}

/// Collects strings from a libgit2 foreach callback (through its payload).
final class StringCollector {
    var values: [String] = []
}

// C callbacks: capture nothing; the collector arrives through the payload.
let stashCallback: git_stash_cb = { _, message, _, payload in
    let box = Unmanaged<StringCollector>.fromOpaque(payload!).takeUnretainedValue()
    box.values.append(message.map { String(cString: $0) } ?? "")
    return 0
}

let submoduleCallback: git_submodule_cb = { _, name, payload in
    let box = Unmanaged<StringCollector>.fromOpaque(payload!).takeUnretainedValue()
    box.values.append(name.map { String(cString: $0) } ?? "")
    return 0
}

func hex(_ oid: UnsafePointer<git_oid>) -> String {
    var buffer = [CChar](repeating: 0, count: Int(GIT_OID_HEXSZ) + 1)
    git_oid_tostr(&buffer, buffer.count, oid)
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

extension Repository {
    /// Opens the repository at `path` and inspects it on a thread of its own, so the handle
    /// never moves between threads and the blocking walk stays off Swift's cooperative pool.
    public static func inspect(
        at path: String, excluded: @escaping @Sendable (String) -> Bool = { _ in false },
        discounting: @escaping @Sendable (RepositoryFacts.Remote) -> Bool = { _ in false }
    ) async throws(GitError) -> RepositoryFacts {
        try await offPool("git inspect") { () throws(GitError) -> RepositoryFacts in
            try Repository.open(at: path).inspect(excluded: excluded, discounting: discounting)
        }
    }
}
