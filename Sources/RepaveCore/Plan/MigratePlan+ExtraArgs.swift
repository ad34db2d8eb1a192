import Foundation

/// `copy.extraArgs` is an allow-list. rsync has well over a hundred options and many quietly
/// change what a copy copies or keeps (`--no-H`, `--size-only`, `--list-only`, a `--filter` that
/// merges rules from a file on the user's volume); with `copy.verify: none` such a copy would
/// "succeed" without the data. So only options that cannot do that pass, and the well-known
/// dangerous ones are refused with their own reason.
extension MigratePlan.Copy {
    /// What `extraArgs` may hold (plans/README.md lists the same).
    public static let allowedOptions = "--bwlimit=RATE, --whole-file (-W), --checksum-choice=ALGO (--cc=ALGO), --exclude=PATTERN and --include=PATTERN"

    /// The filters among `extraArgs`, in their order. The verify pass applies them too: without
    /// them it would report every excluded file as a difference, and a resumed run would copy
    /// and verify again forever.
    public var filterArgs: [String] { extraArgs.filter { $0.hasPrefix("--exclude=") || $0.hasPrefix("--include=") } }

    /// Why rsync option `argument` is refused in `extraArgs`, and what to do, or nil when it is
    /// allowed. A cluster of short options (`-avn`) is read the way rsync reads it, up to the
    /// first option that takes a value; the rest is that value.
    public static func refusal(of argument: String) -> (problem: String, hint: String)? {
        guard argument.hasPrefix("-"), argument != "-", argument != "--" else {
            return ("'\(argument)' is not an rsync option; each item of extraArgs is one option, and repave names the source and destination itself",
                    "write an option with its value in one item, e.g. --exclude=lost+found")
        }
        if argument.hasPrefix("--") {
            let name = String(argument.dropFirst(2).prefix { $0 != "=" })
            let value = argument.firstIndex(of: "=").map { String(argument[argument.index(after: $0)...]) }
            if allowedLongOptions.contains(name) { return refusal(ofValue: value, of: name, in: argument) }
            let why = reason(against: name) ?? notAllowed
            return ("--\(name) is refused: \(why.reason)", why.hint)
        }
        // In a cluster, the letter that would lose data is named before one that is merely
        // redundant or noisy (`-avn` is refused for its -n, not its -a).
        var refused: [Character] = []
        for letter in argument.dropFirst() {
            if letter != "W" { refused.append(letter) }
            if "BefMT@".contains(letter) { break }  // the rest is its value
        }
        let grave = refused.first { letter in shortOptions[letter].map { reason(against: $0) != nil && !minorOptions.contains($0) } ?? false }
        guard let letter = grave ?? refused.first else { return nil }
        let name = shortOptions[letter]
        let why = name.flatMap(reason(against:)) ?? notAllowed
        return ("\(label(letter, name, in: argument)): \(why.reason)", why.hint)
    }

    static let allowedLongOptions: Set<String> = ["bwlimit", "whole-file", "checksum-choice", "cc", "exclude", "include"]

    private static let notAllowed = (
        reason: "extraArgs takes only options that cannot change what is copied or kept",
        hint: "remove it; extraArgs allows \(allowedOptions) (plans/README.md)")

    /// `-n (--dry-run) is refused`, or `-n (--dry-run) is refused in '-avn'` for a letter of a cluster.
    private static func label(_ letter: Character, _ name: String?, in argument: String) -> String {
        "-\(letter)" + (name.map { " (--\($0))" } ?? "") + " is refused" + (argument == "-\(letter)" ? "" : " in '\(argument)'")
    }

    /// An allowed option's value: present, well formed, and not one that defeats the copy.
    private static func refusal(ofValue value: String?, of name: String, in argument: String) -> (problem: String, hint: String)? {
        if name == "whole-file" {
            return value == nil ? nil : ("--whole-file takes no value", "write --whole-file")
        }
        let example = ["bwlimit": "--bwlimit=50m", "checksum-choice": "--checksum-choice=xxh128", "cc": "--cc=xxh128",
                       "exclude": "--exclude=lost+found", "include": "--include=lost+found"][name, default: "--\(name)=VALUE"]
        guard let value, !value.isEmpty else {
            return ("--\(name) needs its value in the same item", "write it as one item, e.g. \(example)")
        }
        switch name {
        case "bwlimit":
            if value.wholeMatch(of: /[0-9]+(\.[0-9]+)?([bkmgtpBKMGTP]([iI]?[bB])?)?/) == nil {
                return ("'\(argument)': '\(value)' is not a rate", "write a number with an optional unit, e.g. \(example) for 50 MiB/s (a plain number is KiB/s)")
            }
        case "checksum-choice", "cc":
            let algorithms = value.split(separator: ",", omittingEmptySubsequences: false)
            if algorithms.contains("none") {
                return ("'\(argument)' is refused: rsync would not check the data it wrote", "remove it, or name an algorithm, e.g. \(example)")
            }
            if algorithms.contains(where: { $0.isEmpty || !$0.allSatisfy { $0.isLetter || $0.isNumber } }) {
                return ("'\(argument)': '\(value)' is not a checksum name", "name one of rsync's algorithms, e.g. \(example)")
            }
        default:
            // rsync reads `+ `, `- ` and a lone `!` at the start of --exclude/--include as a rule
            // prefix (include, exclude, clear the list), not as part of the pattern.
            if value.hasPrefix("+ ") || value.hasPrefix("- ") || value == "!" {
                return ("'\(argument)': rsync reads '\(value.prefix(2).trimmingCharacters(in: .whitespaces))' at the start as a rule, not a pattern",
                        "write the pattern alone; --include= and --exclude= say which rule it is")
            }
            let core = value.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            if name == "exclude", !core.isEmpty, core.allSatisfy({ $0 == "*" }) {
                return ("'\(argument)' is refused: it matches every entry of the volume, so the copy would copy nothing",
                        "name what to leave out, e.g. --exclude=lost+found")
            }
        }
        return nil
    }

    /// Options repave passes itself (`-aHAXS` spelled out, and the rest of `CopyPod.copyOptions`).
    static let passedOptions: Set<String> = [
        "archive", "recursive", "links", "perms", "times", "group", "owner", "devices", "specials",
        "hard-links", "acls", "xattrs", "sparse", "numeric-ids", "partial", "stats", "no-inc-recursive",
    ]

    /// Options that would only change rsync's output or its CPU use.
    static let outputOptions: Set<String> = [
        "info", "debug", "verbose", "quiet", "human-readable", "itemize-changes", "out-format", "progress", "8-bit-output",
        "log-file", "log-file-format", "stderr", "msgs2stderr",
    ]
    static let compressOptions: Set<String> = ["compress", "compress-level", "compress-choice", "zc", "zl", "skip-compress", "new-compress", "old-compress"]
    /// Refused, but not because they would lose data: named last in a cluster.
    static let minorOptions = passedOptions.union(outputOptions).union(compressOptions)

    /// rsync's short options, by their long names.
    static let shortOptions: [Character: String] = [
        "a": "archive", "r": "recursive", "l": "links", "p": "perms", "t": "times", "g": "group", "o": "owner", "D": "devices",
        "H": "hard-links", "A": "acls", "X": "xattrs", "S": "sparse", "W": "whole-file", "n": "dry-run", "e": "rsh",
        "f": "filter", "F": "filter", "C": "cvs-exclude", "u": "update", "@": "modify-window", "z": "compress", "v": "verbose",
        "q": "quiet", "h": "human-readable", "i": "itemize-changes", "P": "progress", "c": "checksum", "I": "ignore-times",
        "x": "one-file-system", "b": "backup", "R": "relative", "L": "copy-links", "k": "copy-dirlinks", "K": "keep-dirlinks",
        "E": "executability", "O": "omit-dir-times", "J": "omit-link-times", "m": "prune-empty-dirs", "d": "dirs",
        "B": "block-size", "M": "remote-option", "T": "temp-dir", "y": "fuzzy", "U": "atimes", "N": "crtimes", "8": "8-bit-output",
    ]

    /// Why the options known to defeat a copy are refused; nil for the rest, which are simply not
    /// on the allow-list.
    private static func reason(against name: String) -> (reason: String, hint: String)? {
        switch name {
        case "inplace":
            ("an interrupted copy would leave a half-written file in place", "remove it; repave passes --partial, which keeps a partial file aside")
        case "remove-source-files", "remove-sent-files":
            ("it deletes files from the old volume", "remove it; the old volume is kept, whole, until 'repave finalize'")
        case "dry-run", "list-only", "only-write-batch":
            ("the copy would copy nothing", "remove it; 'repave plan --server-dry-run' rehearses a run without changing anything")
        case "write-batch", "read-batch":
            ("it writes or replays a batch file in the pod's own filesystem", "remove it")
        case "rsh":
            ("the copy runs inside one pod, with no remote shell", "remove it")
        case "files-from":
            ("the copy must be the whole volume", "remove it")
        case _ where name == "del" || name.hasPrefix("delete"):
            ("repave passes --delete itself, so that every pass converges on the source", "remove it")
        case "max-delete":
            ("it stops deletions, so the copy could keep files the source no longer has", "remove it")
        case _ where passedOptions.contains(name):
            ("repave passes it already (\(CopyPod.copyOptions.joined(separator: " ")))", "remove it")
        case _ where name.hasPrefix("no-"):
            ("it turns off part of what repave passes (-aHAXS --numeric-ids): hard links, ACLs, xattrs, holes, owners, modes, times or ids would be lost",
             "remove it")
        case "size-only", "ignore-existing", "existing", "ignore-non-existing", "max-size", "min-size", "modify-window", "update",
             "append", "append-verify", "prune-empty-dirs":
            ("it leaves out files, or parts of files, that differ, so a copy could succeed without their data", "remove it; every pass copies whatever differs")
        case "compare-dest", "copy-dest", "link-dest":
            ("it takes files from another directory than the source", "remove it")
        case "filter", "cvs-exclude", "exclude-from", "include-from":
            ("it reads filter rules from files, on the volume or in the image, that the verify pass would not apply",
             "write each pattern as --exclude=PATTERN or --include=PATTERN: the verify pass applies those too")
        case _ where compressOptions.contains(name):
            ("the copy runs inside one pod, so compression would only cost CPU", "remove it")
        case _ where outputOptions.contains(name):
            ("it changes the log repave reads (progress, the --stats block, the files rsync names)",
             "remove it; 'kubectl logs' of the copy pod shows rsync's progress and --stats already")
        case "preallocate":
            ("it allocates the holes that -S keeps, so sparse files would no longer be sparse", "remove it")
        case "chmod", "chown", "usermap", "groupmap", "copy-links", "copy-unsafe-links", "safe-links", "munge-links", "copy-dirlinks",
             "keep-dirlinks", "fake-super", "executability", "omit-dir-times", "omit-link-times", "copy-devices", "write-devices":
            ("it changes what is kept: modes, owners, links or times would differ from the source", "remove it")
        default:
            nil
        }
    }
}
