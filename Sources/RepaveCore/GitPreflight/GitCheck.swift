import Blocking
import Foundation
import Git
import Synchronization

/// The git preflight: finds every repository below some paths, inspects them in parallel with
/// libgit2, judges each against the rules, and lists what lies outside any repository.
public struct GitCheck: Sendable {
    public var paths: [String]
    public var rules: [GitRule]
    public var ignore: [String]
    public var claim: String?
    /// Inspect repositories owned by other users (libgit2's safe.directory check off).
    public var allowOtherOwners: Bool
    /// Time allowed for sizing the inventory; past it, sizes are lower bounds.
    public var inventoryBudget: Duration
    public var parallelism: Int

    public init(
        paths: [String], rules: [GitRule] = GitRule.defaults, ignore: [String] = [], claim: String? = nil,
        allowOtherOwners: Bool = false, inventoryBudget: Duration = .seconds(10),
        parallelism: Int = ProcessInfo.processInfo.activeProcessorCount
    ) {
        self.paths = paths
        self.rules = rules
        self.ignore = ignore
        self.claim = claim
        self.allowOtherOwners = allowOtherOwners
        self.inventoryBudget = inventoryBudget
        self.parallelism = max(1, parallelism)
    }

    private enum LostKind: String {
        case ignored = "ignored-in-repository"
        case excluded = "excluded-by-glob"
    }

    public func run() async throws -> GitReport {
        let globs = try GlobSet(ignore)
        try Self.useOwnerValidation(!allowOtherOwners)
        let sizer = Sizer(budget: inventoryBudget)
        // The walk stats every directory and libgit2's discovery reads the disk: both block, so
        // they run on a thread of their own, as each inspection does.
        let (roots, start, broken) = await offPool("git-check walk") { [self] in
            self.searchRoots(globs: globs, sizer: sizer)
        }
        var discovery = start
        // A remote that is a local path under a checked path is deleted with the volume: it is no
        // copy, even when the bare repository itself is excluded by a glob.
        let discounting: @Sendable (RepositoryFacts.Remote) -> Bool = { remote in
            remote.localPaths.contains { path in roots.contains { root in path == root || path.hasPrefix(root == "/" ? "/" : root + "/") } }
        }

        var reports = Dictionary(broken.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        var lostInRepositories: [(path: String, kind: LostKind)] = []
        var pending = discovery.repositories
        while !pending.isEmpty {
            let batch = pending.filter { reports[$0.path] == nil }
            pending = []
            let inspected = await inspectAll(batch, globs: globs, discounting: discounting)
            var searches: [(directory: String, parent: String, base: String)] = []
            for (found, result) in inspected {
                switch result {
                case .success(let facts):
                    let reasons = rules.flatMap { $0.failures(facts) }
                    reports[found.path] = .init(path: found.path, kind: found.kind.rawValue, parent: found.parent,
                                                head: Self.describe(facts), passed: reasons.isEmpty, reasons: reasons, facts: facts)
                    // Nested repositories hide in untracked and ignored directories, and
                    // submodules in their paths: search there too.
                    let base = facts.path.hasSuffix("/") ? facts.path : facts.path + "/"
                    let nested = (facts.workingTree?.untrackedDirectories ?? [])
                        + facts.ignored.filter { $0.hasSuffix("/") && !globs.matches(relative: $0, absolute: base + $0) }
                        + facts.submodules.map { $0.path + "/" }
                    for directory in nested {
                        searches.append((base + String(directory.dropLast()), found.path, String(base.dropLast())))
                    }
                    let trim = { (path: String) in base + (path.hasSuffix("/") ? String(path.dropLast()) : path) }
                    lostInRepositories += facts.ignored.map { (trim($0), .ignored) }
                    lostInRepositories += (facts.workingTree?.untrackedExcludedByGlob ?? []).map { (trim($0), .excluded) }
                case .failure(let error):
                    reports[found.path] = .init(path: found.path, kind: found.kind.rawValue, parent: found.parent, head: "unknown",
                                                passed: false, reasons: [explain(error, path: found.path)], facts: nil)
                }
            }
            guard !searches.isEmpty else { continue }
            let before = discovery.repositories.count
            discovery = await offPool("git-check walk") { [discovery, searches] in
                var discovery = discovery
                for search in searches { discovery.search(search.directory, parent: search.parent, relativeTo: search.base) }
                return discovery
            }
            pending += discovery.repositories[before...].filter { reports[$0.path] == nil }
        }

        let lost = lostInRepositories
        let lostEntries = await offPool("git-check sizing") {
            lost.compactMap { (lost) -> GitReport.Inventory.Entry? in
                let (path, kind) = lost
                var info = stat()
                guard lstat(path, &info) == 0 else { return nil }
                let size = info.st_mode & S_IFMT == S_IFDIR ? sizer.measure(path) : (Int64(info.st_size), 1, true)
                return .init(path: path, bytes: size.0, files: size.1, kind: kind.rawValue, complete: size.2)
            }
        }
        var entries = discovery.loose.map {
            GitReport.Inventory.Entry(path: $0.path, bytes: $0.bytes, files: $0.files,
                                      kind: $0.excludedByGlob ? "excluded-by-glob" : "outside-repositories", complete: $0.complete)
        }
        entries += lostEntries
        entries.sort { $0.path < $1.path }
        let repositories = reports.values.sorted { $0.path < $1.path }
        let unreadable = discovery.unreadable.map { GitReport.UnreadablePath(path: $0.path, reason: $0.reason) }
        return GitReport(
            createdAt: Date().formatted(.iso8601), host: ProcessInfo.processInfo.hostName,
            toolVersion: RepaveVersion.current, paths: roots, rules: rules.map(\.rawValue), ignore: ignore, claim: claim,
            ownerValidation: !allowOtherOwners,
            passed: repositories.allSatisfy(\.passed) && unreadable.isEmpty,
            repositories: repositories, unreadable: unreadable,
            inventory: .init(entries: entries, totalBytes: entries.reduce(0) { $0 + $1.bytes },
                             complete: entries.allSatisfy(\.complete),
                             budgetSeconds: Int(inventoryBudget.components.seconds)))
    }

    /// The checked paths as real paths, what the walk below them found, and the paths inside
    /// something git-like that libgit2 refuses. Blocking: runs on the walk's own thread.
    private func searchRoots(globs: GlobSet, sizer: Sizer) -> (roots: [String], discovery: RepositoryDiscovery, broken: [GitReport.RepositoryReport]) {
        var discovery = RepositoryDiscovery(ignore: globs, sizer: sizer)
        // Real paths: a root given through a symlink is searched where it points (lstat would
        // otherwise see one small link and find nothing).
        let roots = paths.map { path in
            realpath(path, nil).map { pointer in defer { free(pointer) }; return String(cString: pointer) }
                ?? URL(fileURLWithPath: path).standardizedFileURL.path
        }
        var broken: [GitReport.RepositoryReport] = []
        for root in roots {
            switch enclosingRepository(of: root) {
            case .none:
                discovery.search(root, relativeTo: root)
            case .found(let enclosing):
                discovery.adopt(enclosing)
            case .failed(let reason):
                // Inside something git-like that libgit2 refuses: never walk it as plain files.
                broken.append(.init(path: root, kind: "unknown", parent: nil, head: "unknown", passed: false,
                                    reasons: [explain(reason, path: root)], facts: nil))
            }
        }
        return (roots, discovery, broken)
    }

    /// libgit2's owner check is one switch for the whole process. The first check sets it; a
    /// later check that wants the other setting is refused, not allowed to flip it under a check
    /// that may still be inspecting (one process runs one check: `git-check`, or a run's preflight).
    private static let ownerValidation = Mutex<Bool?>(nil)

    static func useOwnerValidation(_ enabled: Bool) throws {
        try ownerValidation.withLock { current in
            if current == enabled { return }
            if let current {
                throw RepaveError(
                    .gitOwnerValidationConflict,
                    "libgit2's owner check is already \(current ? "on" : "off") in this process; this check needs it \(enabled ? "on" : "off")",
                    hint: "run a check with --allow-other-owners in a process of its own")
            }
            try GitLibrary.setOwnerValidation(enabled)
            current = enabled
        }
    }

    /// Inspects repositories in parallel, at most `parallelism` at a time, each on its own thread.
    private func inspectAll(
        _ repositories: [RepositoryDiscovery.Found], globs: GlobSet, discounting: @escaping @Sendable (RepositoryFacts.Remote) -> Bool
    ) async -> [(RepositoryDiscovery.Found, Result<RepositoryFacts, any Error>)] {
        await withTaskGroup(of: (Int, Result<RepositoryFacts, any Error>).self) { group in
            var results: [(RepositoryDiscovery.Found, Result<RepositoryFacts, any Error>)?] = Array(repeating: nil, count: repositories.count)
            var next = 0
            func add(_ index: Int) {
                let found = repositories[index]
                let base = found.path.hasSuffix("/") ? found.path : found.path + "/"
                group.addTask {
                    do {
                        let facts = try await Repository.inspect(at: found.path, excluded: { relative in
                            globs.matches(relative: relative, absolute: base + relative)
                        }, discounting: discounting)
                        return (index, .success(facts))
                    } catch {
                        return (index, .failure(error))
                    }
                }
            }
            while next < min(parallelism, repositories.count) { add(next); next += 1 }
            while let (index, result) = await group.next() {
                results[index] = (repositories[index], result)
                if next < repositories.count { add(next); next += 1 }
            }
            return results.compactMap { $0 }
        }
    }

    enum Enclosing {
        case none
        case found(RepositoryDiscovery.Found)
        case failed(any Error)
    }

    /// The repository containing `path` when `path` is inside one (not its top). Only "not a
    /// repository" means none; any other failure (owner check, a broken repository) is reported.
    private func enclosingRepository(of path: String) -> Enclosing {
        assertOffPool("libgit2 discovery from \(path)")
        if FileManager.default.fileExists(atPath: path + "/.git") { return .none }
        do {
            let repository = try Repository.discover(from: path)
            let top = repository.workingDirectory.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 } ?? repository.gitDirectory
            return .found(RepositoryDiscovery.Found(path: top, kind: repository.isBare ? .bare : .normal, parent: nil))
        } catch where error.code == .notFound && !error.message.contains("safe.directory") {
            return .none
        } catch {
            return .failed(error)
        }
    }

    /// The libgit2 error in the operator's words; the owner check gets its own explanation.
    private func explain(_ error: any Error, path: String) -> String {
        guard let error = error as? GitError else { return "cannot inspect: \(error)" }
        if error.message.contains("safe.directory") || error.code == .owner || error.message.contains("not owned by current user") {
            var info = stat()
            let owner = lstat(path, &info) == 0 ? "uid \(info.st_uid)" : "another user"
            return "cannot inspect: the repository is owned by \(owner), not by the user running repave (uid \(getuid())), "
                + "and libgit2 refuses such repositories like git's safe.directory check; run as the owner, "
                + "run 'git config --global --add safe.directory \(path)', or pass --allow-other-owners"
        }
        return "cannot inspect: \(error.message)"
    }

    static func describe(_ facts: RepositoryFacts) -> String {
        if facts.isBare { return "bare" }
        switch facts.head {
        case .branch(let name): return name
        case .detached(let commit): return "detached at \(commit.prefix(12))"
        case .unborn(let name): return "unborn \(name)"
        }
    }
}

extension RepositoryDiscovery {
    /// Records a repository found by libgit2's upward search (a path inside its working tree).
    mutating func adopt(_ found: Found) {
        if !repositories.contains(found) { appendRepository(found) }
    }
}
