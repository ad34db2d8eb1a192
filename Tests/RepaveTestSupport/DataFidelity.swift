import Foundation

/// Proof that a copy kept a volume's data: a tree that holds every kind of thing rsync can lose
/// (``DataFidelity/treeScript``), a manifest of a tree taken inside a `lab/mover:1` pod
/// (``DataFidelity/manifestScript``, busybox plus getfattr and getfacl), and a comparison of two
/// manifests (``FidelityManifest/differences(from:)``).
public enum DataFidelity {
    /// Writes the test tree into `$1` (an empty directory), with a large file of `$2` MB (default
    /// 20): random files in nested directories, an empty file, a hard-link pair (in two
    /// directories), a symlink and a dangling one, a sparse file (16 MiB hole, then 4 KiB), user
    /// xattrs (one binary) on a file and a directory, ACLs (access and default), a 0700
    /// directory owned by uid 1001 with a 0600 file inside, an empty directory, a UTF-8 name, a
    /// FIFO and old mtimes (set last, on a file and a directory). Runs as root.
    public static let treeScript = #"""
        set -eu
        cd "$1"
        big_mb=${2:-20}
        mkdir -p files/nested/deeper
        i=1
        while [ "$i" -le 24 ]; do
            case $((i % 3)) in 0) d=files ;; 1) d=files/nested ;; *) d=files/nested/deeper ;; esac
            dd if=/dev/urandom of="$d/random-$i" bs=$((i * 37 + 1)) count=$((i % 7 + 1)) 2>/dev/null
            i=$((i + 1))
        done
        : > files/empty-file
        dd if=/dev/urandom of=large bs=1048576 count="$big_mb" 2>/dev/null
        mkdir links
        printf 'linked\n' > links/first
        ln links/first files/second-name
        ln -s ../files/random-3 links/symlink
        ln -s does-not-exist links/dangling
        dd if=/dev/urandom of=sparse bs=4096 count=1 seek=4096 2>/dev/null
        printf 'with xattrs\n' > xattr-file
        setfattr -n user.repave -v migrate xattr-file
        setfattr -n user.binary -v 0x00ff10 xattr-file
        setfattr -n user.on-a-directory -v yes files
        printf 'acl\n' > acl-file
        setfacl -m u:1001:rw-,g:2002:r-- acl-file
        mkdir acl-dir
        setfacl -m u:1001:r-x acl-dir
        setfacl -d -m u:1001:rwx acl-dir
        mkdir private
        printf 'secret\n' > private/secret
        chmod 0600 private/secret
        chown -R 1001:1001 private
        chmod 0700 private
        mkdir empty-dir
        printf 'unicode\n' > 'naïve café 日本語.txt'
        mkfifo fifo
        printf 'old\n' > old-file
        touch -d '2001-02-03 04:05:06' old-file
        touch -d '1999-12-31 23:59:59' files/nested/deeper
        sync
        """#

    /// Prints the manifest of the tree at `$1`, one record a line, `|`-separated with the path
    /// last (names with `|` or a newline are not supported; the test tree has none):
    /// `S|type|mode|uid|gid|size|mtime|links|inode|blocks|block size|path` for every entry,
    /// `H|sha256  path` for regular files, `L|path|target` for symlinks, `X|path|name=0xhex` for
    /// `user.*` xattrs and `A|path|entry` for extended ACL entries. Ends with `END`, so a
    /// truncated log is not a manifest.
    public static let manifestScript = #"""
        set -eu
        cd "$1"
        find . -exec stat -c 'S|%F|%a|%u|%g|%s|%Y|%h|%i|%b|%B|%n' {} +
        find . -type f -exec sha256sum {} + | sed 's/^/H|/'
        find . -type l -exec sh -c 'for f; do printf "L|%s|%s\n" "$f" "$(readlink "$f")"; done' sh {} +
        find . ! -type l -exec getfattr -h -d -m '^user\.' -e hex --absolute-names {} + 2>/dev/null \
            | awk '/^# file: /{f=substr($0, 9); next} /=/{print "X|" f "|" $0}'
        find . ! -type l -exec getfacl -s -n -p {} + 2>/dev/null \
            | awk '/^# file: /{f=substr($0, 9); next} /^#/{next} NF{print "A|" f "|" $0}'
        echo END
        """#
}

/// A tree's manifest, parsed from ``DataFidelity/manifestScript``'s output.
public struct FidelityManifest: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var type: String
        public var mode: String
        public var uid: String
        public var gid: String
        public var size: Int64
        public var mtime: Int64
        public var links: Int
        public var inode: String
        /// Allocated bytes (blocks × block size).
        public var allocated: Int64
        public var sha256: String?
        public var target: String?
        public var xattrs: [String] = []
        public var acl: [String] = []

        public var isSparse: Bool { type == "regular file" && allocated < size }
    }

    public var entries: [String: Entry]

    /// Parses the log of a manifest pod; throws when a line is not a record or `END` is missing.
    public init(log: String) throws {
        var entries: [String: Entry] = [:]
        var complete = false
        for line in log.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) {
            if line == "END" { complete = true; continue }
            let fields = line.split(separator: "|", maxSplits: 11, omittingEmptySubsequences: false).map(String.init)
            switch fields.first {
            case "S" where fields.count == 12:
                guard let size = Int64(fields[5]), let mtime = Int64(fields[6]), let links = Int(fields[7]),
                      let blocks = Int64(fields[9]), let blockSize = Int64(fields[10]) else { throw ManifestError(line: line) }
                entries[fields[11]] = Entry(type: fields[1], mode: fields[2], uid: fields[3], gid: fields[4], size: size, mtime: mtime,
                                            links: links, inode: fields[8], allocated: blocks * blockSize)
            case "H":
                let rest = line.dropFirst(2)
                guard let split = rest.range(of: "  ") else { throw ManifestError(line: line) }
                try Self.update(&entries, String(rest[split.upperBound...]), line) { $0.sha256 = String(rest[..<split.lowerBound]) }
            case "L", "X", "A":
                let parts = line.dropFirst(2).split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                guard parts.count == 2 else { throw ManifestError(line: line) }
                try Self.update(&entries, parts[0], line) { entry in
                    switch fields[0] {
                    case "L": entry.target = parts[1]
                    case "X": entry.xattrs.append(parts[1])
                    default: entry.acl.append(parts[1])
                    }
                }
            default:
                throw ManifestError(line: line)
            }
        }
        guard complete else { throw ManifestError(line: "(no END: the manifest is truncated)") }
        self.entries = entries
    }

    private static func update(_ entries: inout [String: Entry], _ path: String, _ line: String, _ change: (inout Entry) -> Void) throws {
        guard entries[path] != nil else { throw ManifestError(line: line) }
        change(&entries[path]!)
    }

    public struct ManifestError: Error, CustomStringConvertible {
        public let line: String
        public var description: String { "not a manifest line: \(line.debugDescription)" }
    }

    /// Hard-link groups: the paths of each inode with more than one link, as sorted lists.
    public var hardLinkGroups: Set<[String]> {
        let linked = entries.filter { $0.value.type == "regular file" && $0.value.links > 1 }
        return Set(Dictionary(grouping: linked.keys) { linked[$0]!.inode }.values.map { $0.sorted() })
    }

    /// How `self` (a copy) differs from `source`, one line per difference; empty when the copy
    /// kept everything. Sizes are compared for files and symlinks only (a directory's size is
    /// its filesystem's business); a sparse source file's copy must not take more space than it.
    public func differences(from source: FidelityManifest) -> [String] {
        var found: [String] = []
        for path in Set(source.entries.keys).union(entries.keys).sorted() {
            guard let a = source.entries[path] else { found.append("\(path): only in the copy"); continue }
            guard let b = entries[path] else { found.append("\(path): missing from the copy"); continue }
            func check<T: Equatable>(_ what: String, _ x: T, _ y: T) {
                if x != y { found.append("\(path): \(what) \(x) became \(y)") }
            }
            check("type", a.type, b.type)
            check("mode", a.mode, b.mode)
            check("owner", "\(a.uid):\(a.gid)", "\(b.uid):\(b.gid)")
            check("mtime", a.mtime, b.mtime)
            check("sha256", a.sha256 ?? "-", b.sha256 ?? "-")
            check("symlink target", a.target ?? "-", b.target ?? "-")
            check("xattrs", a.xattrs.sorted(), b.xattrs.sorted())
            check("ACL", a.acl.sorted(), b.acl.sorted())
            if a.type != "directory" {
                check("size", a.size, b.size)
                check("link count", a.links, b.links)
            }
            if a.isSparse, b.allocated > a.allocated {
                found.append("\(path): sparse file takes \(b.allocated) bytes, \(a.allocated) on the source")
            }
        }
        let (groupsA, groupsB) = (source.hardLinkGroups, hardLinkGroups)
        for group in groupsA.subtracting(groupsB).sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            found.append("hard links \(group.joined(separator: " = ")) are not one file in the copy")
        }
        for group in groupsB.subtracting(groupsA).sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            found.append("hard links \(group.joined(separator: " = ")) are one file only in the copy")
        }
        return found
    }
}
