import Foundation

/// One `--info=progress2` line: `  30,000,000  90%   19.67MB/s    0:00:01 (xfr#1, to-chk=34/36)`.
/// The percentage is of the whole transfer (the file list is complete up front, with
/// `--no-inc-recursive`); bytes are those transferred so far.
public struct RsyncProgress: Sendable, Equatable {
    public var bytes: Int64
    public var percent: Int
    /// Bytes per second (rsync's kB, MB and GB are 1024-based).
    public var bytesPerSecond: Double
    /// Seconds left, as rsync estimates them; nil when it prints `??:??:??`. On the lines that
    /// end a file (with `xfr#`), rsync prints the time elapsed instead: read it as the ETA only
    /// when `transferred` is nil.
    public var eta: Int?
    /// Files transferred so far (`xfr#`), on the line that ends a file.
    public var transferred: Int?
    /// Files still to check and the list's size (`to-chk=34/36`).
    public var toCheck: ToCheck?

    public struct ToCheck: Sendable, Equatable {
        public var remaining: Int
        public var total: Int
    }

    /// Nil for any line that is not a progress line.
    public init?(line: String) {
        let words = line.split(separator: " ", omittingEmptySubsequences: true)
        guard words.count >= 4, words[1].hasSuffix("%"),
              let bytes = Int64(words[0].replacingOccurrences(of: ",", with: "")),
              let percent = Int(words[1].dropLast()),
              let rate = Self.rate(words[2]) else { return nil }
        self.bytes = bytes
        self.percent = percent
        self.bytesPerSecond = rate
        let clock = words[3].split(separator: ":").map { Int($0) }
        if clock.count == 3, clock.allSatisfy({ $0 != nil }) {
            eta = clock[0]! * 3600 + clock[1]! * 60 + clock[2]!
        } else if words[3] == "??:??:??" {
            eta = nil
        } else {
            return nil
        }
        // "(xfr#1," "to-chk=34/36)"
        let tail = words.dropFirst(4).joined(separator: " ")
        if let range = tail.range(of: "xfr#") {
            transferred = Int(tail[range.upperBound...].prefix { $0.isNumber })
        }
        if let range = tail.range(of: "-chk=") {
            let numbers = tail[range.upperBound...].prefix { $0.isNumber || $0 == "/" }.split(separator: "/").compactMap { Int($0) }
            if numbers.count == 2 { toCheck = ToCheck(remaining: numbers[0], total: numbers[1]) }
        }
    }

    private static func rate(_ word: Substring) -> Double? {
        let units: [(String, Double)] = [("GB/s", 1_073_741_824), ("MB/s", 1_048_576), ("kB/s", 1024), ("B/s", 1)]
        for (unit, scale) in units where word.hasSuffix(unit) {
            return Double(word.dropLast(unit.count)).map { $0 * scale }
        }
        return nil
    }
}

/// The `--stats` block rsync prints at the end of a copy.
public struct RsyncStats: Sendable, Equatable, Codable {
    /// Entries in the file list: files, directories, symlinks, devices and specials.
    public var files: Int
    public var regularFiles: Int
    public var createdFiles: Int
    public var deletedFiles: Int
    public var transferredFiles: Int
    /// The source's regular files' size.
    public var totalSize: Int64
    /// The size of the files that were sent.
    public var transferredSize: Int64
}

/// Reads a copy pod's log line by line: the rsync version and its capabilities, progress, the
/// `--stats` block, and the problems rsync names (the files of a 23 or 24).
public struct RsyncLog: Sendable {
    /// The line the script prints when the image lacks a tool.
    public static let missingToolPrefix = "repave: the image has no "

    /// `3.5.0`, from `rsync  version 3.5.0  protocol version 32` (or `version v3.2.7`).
    public private(set) var version: String?
    public private(set) var capabilities: Set<String> = []
    public private(set) var missingTool: String?
    public private(set) var lastProgress: RsyncProgress?
    /// rsync's own error and warning lines, naming a file where it did (`send_files failed to
    /// open "/source/d/locked": Permission denied (13)`, `file has vanished: "/source/x"`).
    public private(set) var problems: [String] = []
    /// Every other line: for the verify pass, each is an itemized difference.
    public private(set) var itemized: [String] = []
    public private(set) var stats: RsyncStats?

    private var section: Section = .transfer
    private var inCapabilities = false
    private var statsFields: [String: String] = [:]

    private enum Section { case versionBlock, transfer }
    /// The headed lists of `rsync --version` (3.1 to 3.5) and its prose lines.
    static let versionHeaders: Set<String> = ["Capabilities:", "Optimizations:", "Checksum list:", "Compress list:", "Daemon auth list:"]
    static let versionProse = ["Copyright ", "Web site: ", "rsync comes with ", "are welcome to ", "General Public Licence", "<http"]

    public init() {}

    /// What a line meant, for a caller that shows progress as it comes.
    public enum Event: Sendable, Equatable {
        case progress(RsyncProgress)
        case other
    }

    /// Reads one line of the log.
    @discardableResult
    public mutating func read(_ line: String) -> Event {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { return .other }
        if line.hasPrefix(Self.missingToolPrefix) {
            missingTool = String(line.dropFirst(Self.missingToolPrefix.count))
            return .other
        }
        // `rsync --version` comes first: its version line, then headed lists of words.
        if version == nil, line.hasPrefix("rsync  version ") || line.hasPrefix("rsync version ") {
            // Builds from a git tag print `version v3.2.7`; the number is what matters.
            version = line.split(separator: " ").dropFirst(2).first.map { String($0.hasPrefix("v") ? $0.dropFirst() : $0) }
            section = .versionBlock
            return .other
        }
        if section == .versionBlock {
            if Self.versionHeaders.contains(line) {
                inCapabilities = line == "Capabilities:"
                return .other
            }
            if line.hasPrefix(" ") && RsyncProgress(line: line) == nil {
                if inCapabilities {
                    for word in trimmed.split(separator: ",") { capabilities.insert(word.trimmingCharacters(in: .whitespaces)) }
                }
                return .other
            }
            if Self.versionProse.contains(where: line.hasPrefix) { return .other }
            section = .transfer
        }
        if let progress = RsyncProgress(line: line) {
            lastProgress = progress
            return .progress(progress)
        }
        if line.hasPrefix("rsync: ") || line.hasPrefix("file has vanished: ") || line.hasPrefix("rsync warning: ") || line.hasPrefix("rsync error: ") {
            problems.append(line)
            return .other
        }
        if let colon = line.firstIndex(of: ":"), Self.statsKeys.contains(String(line[..<colon])) {
            statsFields[String(line[..<colon])] = String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
            if statsFields.count == Self.statsKeys.count { stats = Self.stats(statsFields) }
            return .other
        }
        if line.hasPrefix("sent ") || line.hasPrefix("total size is ") || line.hasPrefix("File list ")
            || line.hasPrefix("Literal data:") || line.hasPrefix("Matched data:") || line.hasPrefix("Total bytes ") {
            return .other
        }
        itemized.append(line)
        return .other
    }

    /// Whether the image's rsync can keep everything migrate promises: ≥ 3.1 (progress2),
    /// with ACLs and xattrs. Nil when it can; else what is missing.
    public var unsuitable: String? { unsuitable(versionRecorded: false) }

    /// As ``unsuitable``, for a log whose `rsync --version` lines may be gone: the kubelet keeps
    /// about 10 MiB of a container's log, so a non-following re-read of a long copy's finished pod
    /// starts mid-copy. When the run has already recorded this image's version
    /// (`versionRecorded`), a log without one is not held against it; a version it does print is
    /// still checked.
    public func unsuitable(versionRecorded: Bool) -> String? {
        if let missingTool { return "the copy image has no \(missingTool)" }
        guard let version else { return versionRecorded ? nil : "the copy image's rsync printed no version" }
        let parts = version.split(separator: ".").map { Int($0.prefix { $0.isNumber }) ?? 0 }
        if (parts.first ?? 0, parts.dropFirst().first ?? 0) < (3, 1) { return "the copy image's rsync is \(version); migrate needs 3.1 or later" }
        let lacking = ["ACLs", "xattrs"].filter { !capabilities.contains($0) }
        if !lacking.isEmpty { return "the copy image's rsync \(version) was built without \(lacking.joined(separator: " and "))" }
        return nil
    }

    /// The log lacks its first lines (`rsync --version` and its capabilities) or, for a copy
    /// pass, rsync's closing `--stats` block: it was cut, or rsync did not finish (the verify
    /// pass prints no stats).
    public func isCut(for pass: CopyPod.Pass) -> Bool {
        version == nil || capabilities.isEmpty || (pass != .verify && stats == nil)
    }

    /// The files rsync named in its problems: the first quoted path of each line.
    public var namedFiles: [String] {
        problems.compactMap { line in
            guard let open = line.firstIndex(of: "\""), let close = line[line.index(after: open)...].firstIndex(of: "\"") else { return nil }
            return String(line[line.index(after: open)..<close])
        }
    }

    static let statsKeys: Set<String> = [
        "Number of files", "Number of created files", "Number of deleted files", "Number of regular files transferred",
        "Total file size", "Total transferred file size",
    ]

    private static func stats(_ fields: [String: String]) -> RsyncStats? {
        // "36 (reg: 32, dir: 3, link: 1)", "33,262,004 bytes"
        func number(_ key: String) -> Int64? {
            fields[key].flatMap { Int64($0.prefix { $0.isNumber || $0 == "," }.replacingOccurrences(of: ",", with: "")) }
        }
        func count(_ key: String, _ kind: String) -> Int {
            guard let text = fields[key], let range = text.range(of: kind + ": ") else { return 0 }
            return Int(text[range.upperBound...].prefix { $0.isNumber || $0 == "," }.replacingOccurrences(of: ",", with: "")) ?? 0
        }
        guard let files = number("Number of files"), let created = number("Number of created files"),
              let deleted = number("Number of deleted files"), let transferred = number("Number of regular files transferred"),
              let total = number("Total file size"), let sent = number("Total transferred file size") else { return nil }
        return RsyncStats(files: Int(files), regularFiles: count("Number of files", "reg"), createdFiles: Int(created),
                          deletedFiles: Int(deleted), transferredFiles: Int(transferred), totalSize: total, transferredSize: sent)
    }
}
