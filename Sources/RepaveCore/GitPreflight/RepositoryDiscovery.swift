import Blocking
import Foundation

/// Finds repositories below some paths without git's help: normal repositories, bare ones,
/// linked worktrees and submodules (a `.git` file). Never descends into `.git`, into paths the
/// ignore globs match, or through symlinks; an unreadable directory is reported and skipped.
/// Directories outside every repository are measured on the way, for the inventory of what
/// recreating the volume loses.
struct RepositoryDiscovery: Sendable {
    enum Kind: String, Sendable, Codable {
        case normal
        case bare
        case worktree
        case submodule
    }

    struct Found: Sendable, Equatable {
        var path: String
        var kind: Kind
        /// The repository whose working tree contains this one (a submodule's superproject).
        var parent: String?
    }

    /// A path in no repository, with what it holds.
    struct Loose: Sendable {
        var path: String
        var bytes: Int64
        var files: Int
        var isDirectory: Bool
        /// An ignore glob matched it: not searched for repositories, sized only within budget.
        var excludedByGlob: Bool
        var complete: Bool
    }

    let ignore: GlobSet
    let sizer: Sizer

    private(set) var repositories: [Found] = []
    private(set) var unreadable: [(path: String, reason: String)] = []
    private(set) var loose: [Loose] = []

    mutating func appendRepository(_ found: Found) {
        repositories.append(found)
    }

    init(ignore: GlobSet, sizer: Sizer) {
        self.ignore = ignore
        self.sizer = sizer
    }

    /// What `walk` learnt about a subtree.
    private struct Subtree {
        var containsRepository = false
        var bytes: Int64 = 0
        var files = 0
        var complete = true
    }

    /// Walks `root` (a directory outside any known repository, or inside `parent`'s working tree
    /// when searching its untracked and ignored directories).
    mutating func search(_ root: String, parent: String? = nil, relativeTo base: String) {
        assertOffPool("git-check walk of \(root)")
        var info = stat()
        guard lstat(root, &info) == 0 else {
            unreadable.append((root, String(cString: strerror(errno))))
            return
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            if parent == nil { loose.append(Loose(path: root, bytes: Int64(info.st_size), files: 1, isDirectory: false, excludedByGlob: false, complete: true)) }
            return
        }
        let summary = walk(root, relative: relative(root, to: base), parent: parent, base: base)
        if parent == nil && !summary.containsRepository {
            loose.append(Loose(path: root, bytes: summary.bytes, files: summary.files, isDirectory: true, excludedByGlob: false, complete: summary.complete))
        }
    }

    private func relative(_ path: String, to base: String) -> String {
        path == base ? "" : path.hasPrefix(base + "/") ? String(path.dropFirst(base.count + 1)) : path
    }

    private mutating func walk(_ directory: String, relative: String, parent: String?, base: String) -> Subtree {
        guard let entries = readDirectory(directory) else { return Subtree(complete: false) }
        if let kind = repositoryKind(directory, entries: entries) {
            if !repositories.contains(where: { $0.path == directory }) {
                repositories.append(Found(path: directory, kind: kind, parent: parent))
            }
            // What lies inside a repository is judged by the repository's status; nested
            // repositories in its untracked or ignored directories are searched from there.
            return Subtree(containsRepository: true)
        }
        var summary = Subtree()
        var children: [(entry: Entry, subtree: Subtree)] = []
        for entry in entries {
            let path = directory + "/" + entry.name
            let childRelative = relative.isEmpty ? entry.name : relative + "/" + entry.name
            switch entry.type {
            case .symlink:
                continue   // never followed: a link may leave the tree or loop
            case .directory:
                if ignore.matches(relative: childRelative + "/", absolute: path + "/") {
                    let size = sizer.measure(path)
                    let subtree = Subtree(bytes: size.bytes, files: size.files, complete: size.complete)
                    if parent == nil {
                        children.append((entry, subtree))
                        summary.bytes += size.bytes
                        summary.files += size.files
                        summary.complete = summary.complete && size.complete
                    }
                    continue
                }
                let subtree = walk(path, relative: childRelative, parent: parent, base: base)
                children.append((entry, subtree))
                summary.containsRepository = summary.containsRepository || subtree.containsRepository
                summary.bytes += subtree.bytes
                summary.files += subtree.files
                summary.complete = summary.complete && subtree.complete
            case .file, .other:
                let subtree = Subtree(bytes: entry.size, files: 1)
                children.append((entry, subtree))
                summary.bytes += entry.size
                summary.files += 1
            }
        }
        // Where repositories and other things sit side by side, the other things are listed
        // one by one: they are what the operator loses.
        if summary.containsRepository && parent == nil {
            for (entry, subtree) in children where !subtree.containsRepository {
                let path = directory + "/" + entry.name
                loose.append(Loose(path: path, bytes: subtree.bytes, files: subtree.files, isDirectory: entry.type == .directory,
                                   excludedByGlob: entry.type == .directory && ignore.matches(relative: (relative.isEmpty ? "" : relative + "/") + entry.name + "/", absolute: path + "/"),
                                   complete: subtree.complete))
            }
        }
        return summary
    }

    /// `.git` directory → normal; `.git` file → linked worktree or submodule (by its gitdir);
    /// HEAD + objects/ + refs/ → bare.
    private func repositoryKind(_ directory: String, entries: [Entry]) -> Kind? {
        if let git = entries.first(where: { $0.name == ".git" }) {
            switch git.type {
            // git accepts a symlinked .git directory; libgit2 opens it, so inspect it.
            case .directory, .symlink: return .normal
            case .file:
                let pointer = (try? String(contentsOfFile: directory + "/.git", encoding: .utf8)) ?? ""
                if pointer.contains("/worktrees/") { return .worktree }
                if pointer.contains("/modules/") { return .submodule }
                return pointer.hasPrefix("gitdir:") ? .normal : nil
            default: return nil
            }
        }
        let names = Dictionary(entries.map { ($0.name, $0.type) }, uniquingKeysWith: { a, _ in a })
        if names["HEAD"] == .file, names["objects"] == .directory, names["refs"] == .directory, !directory.hasSuffix("/.git") {
            return .bare
        }
        return nil
    }

    enum EntryType: Equatable {
        case file, directory, symlink, other
    }

    struct Entry {
        var name: String
        var type: EntryType
        var size: Int64
    }

    /// The directory's entries (lstat, so symlinks stay links), or nil when it cannot be read.
    /// An entry that cannot be examined is reported as unreadable, never silently dropped: the
    /// check then fails instead of passing over what it could not see.
    private mutating func readDirectory(_ path: String) -> [Entry]? {
        var entries: [Entry] = []
        var problems: [(String, String)] = []
        let readable = forEachEntry(of: path) { name, info in
            let type: EntryType = switch info.st_mode & S_IFMT {
            case S_IFDIR: .directory
            case S_IFREG: .file
            case S_IFLNK: .symlink
            default: .other
            }
            entries.append(Entry(name: name, type: type, size: Int64(info.st_size)))
        } failed: { name, reason in
            problems.append((path + "/" + name, reason))
        }
        unreadable += problems
        guard readable else {
            unreadable.append((path, String(cString: strerror(errno))))
            return nil
        }
        return entries.sorted { $0.name < $1.name }
    }
}

/// Calls `body` with each entry of `directory` (not `.` or `..`) and its `lstat` (relative to
/// the open directory, so links stay links), and `failed` with each entry that cannot be
/// examined or whose name is not UTF-8. False when the directory cannot be opened or read
/// (errno says why).
func forEachEntry(of directory: String, _ body: (String, stat) -> Void, failed: (String, String) -> Void = { _, _ in }) -> Bool {
    guard let handle = opendir(directory) else { return false }
    defer { closedir(handle) }
    let fd = dirfd(handle)
    while true {
        errno = 0
        guard let pointer = readdir(handle) else {
            return errno == 0   // NULL with errno set is a read error, not the end
        }
        let bytes = withUnsafeBytes(of: pointer.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
        if bytes == [46] || bytes == [46, 46] { continue }
        guard let name = String(validating: bytes, as: UTF8.self) else {
            failed(String(decoding: bytes, as: UTF8.self), "the name is not UTF-8; its contents cannot be checked")
            continue
        }
        var info = stat()
        let result = withUnsafeBytes(of: pointer.pointee.d_name) { raw in
            fstatat(fd, raw.baseAddress!.assumingMemoryBound(to: CChar.self), &info, AT_SYMLINK_NOFOLLOW)
        }
        if result == 0 { body(name, info) } else { failed(name, String(cString: strerror(errno))) }
    }
}

/// Measures directory trees within one shared time budget; past it, sizes are estimates.
final class Sizer: Sendable {
    let deadline: ContinuousClock.Instant

    init(budget: Duration) {
        deadline = ContinuousClock.now + budget
    }

    var expired: Bool { ContinuousClock.now >= deadline }

    func measure(_ root: String) -> (bytes: Int64, files: Int, complete: Bool) {
        assertOffPool("git-check sizing of \(root)")
        var bytes: Int64 = 0
        var files = 0
        var stack = [root]
        while let directory = stack.popLast() {
            if expired { return (bytes, files, false) }
            _ = forEachEntry(of: directory) { name, info in
                if info.st_mode & S_IFMT == S_IFDIR {
                    stack.append(directory + "/" + name)
                } else {
                    bytes += Int64(info.st_size)
                    files += 1
                }
            }
        }
        return (bytes, files, true)
    }
}
