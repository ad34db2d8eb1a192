import Blocking
import Foundation
import Synchronization

/// One journal line's record. `data` is the raw JSON its writer gave, decoded on demand.
public struct JournalRecord: Sendable, Equatable {
    public var version: Int
    public var sequence: Int
    /// The checksum of the previous line ("00000000" for the first): a chain that detects
    /// dropped, reordered or spliced lines.
    public var previous: String
    public var run: String
    public var time: String
    public var kind: String
    public var step: String?
    /// A reader that does not know `kind` must refuse the journal when this is true.
    public var critical: Bool
    public var data: Data
    /// CRC-32C of this record's bytes.
    public var checksum: String

    public init(version: Int, sequence: Int, previous: String, run: String, time: String, kind: String,
                step: String?, critical: Bool, data: Data, checksum: String) {
        self.version = version
        self.sequence = sequence
        self.previous = previous
        self.run = run
        self.time = time
        self.kind = kind
        self.step = step
        self.critical = critical
        self.data = data
        self.checksum = checksum
    }

    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(type, from: data)
    }
}

/// An append-only, checksummed, fsynced journal of one run (`journal.jsonl`), framed as JSON
/// Lines `{"c":"<crc32c>","n":<length>,"r":<record>}` so that `jq .r` reads it and a reader can
/// find exactly where it was torn.
///
/// Every append is one `write` followed by `fdatasync`; the record is durable when `append`
/// returns. A failed write or sync closes the journal for good: the run must stop before its next
/// API write, and never retries an fsync. Appends are serialized, so the Lease renewal may journal
/// from its own task while a step waits.
public final class Journal: Sendable {
    public static let formatVersion = 1
    public static let fileName = "journal.jsonl"
    static let genesis = "00000000"
    static let maxRecordBytes = 1 << 20
    /// A run writes tens of records, each at most 1 MiB (manifests live in files beside the
    /// journal); anything bigger is not a journal of ours and is refused before it is read.
    public static let maxJournalBytes = 64 << 20

    public let directory: String
    public var path: String { directory + "/" + Self.fileName }
    public var records: [JournalRecord] { state.withLock { $0.records } }
    /// Set when opening repaired a torn last record: where the damaged file was copied.
    public let repairedCopy: String?
    private let descriptor: Int32
    private let lock: RunLock
    private let sync: @Sendable (Int32) -> Int32
    private let state: Mutex<(records: [JournalRecord], failed: Bool)>

    private init(directory: String, records: [JournalRecord], descriptor: Int32, lock: RunLock, repairedCopy: String? = nil,
                 sync: @escaping @Sendable (Int32) -> Int32) {
        self.directory = directory
        self.state = Mutex((records, false))
        self.descriptor = descriptor
        self.lock = lock
        self.repairedCopy = repairedCopy
        self.sync = sync
    }

    deinit {
        close(descriptor)
    }

    public var run: String { records.first?.run ?? "" }

    // MARK: - create

    /// Creates the run directory (0700) and its journal (0600) with `header` as the first
    /// record: written to a temporary file, synced, renamed into place, directory synced, so the
    /// journal never exists empty or half-written.
    public static func create<Header: Encodable>(
        directory: String, run: String, header: Header,
        sync: @escaping @Sendable (Int32) -> Int32 = { fdatasync($0) }
    ) throws(JournalError) -> Journal {
        try makeDirectory(directory)
        let lock = try RunLock(directory: directory)
        let path = directory + "/" + fileName
        guard access(path, F_OK) != 0 else { throw .cannotCreate(path: path, problem: "a journal already exists there") }
        let record = try frame(sequence: 1, previous: genesis, run: run, kind: "header", step: nil, critical: true,
                               data: encode(header, path: path))
        let temporary = path + ".tmp"
        unlink(temporary)
        let fd = Glibc.open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .cannotCreate(path: temporary, problem: String(cString: strerror(errno))) }
        defer { close(fd) }
        _ = fchmod(fd, 0o600)
        try writeAll(fd, record.line, path: temporary, sync: sync)
        guard rename(temporary, path) == 0 else { throw .writeFailed(path: path, operation: "rename", errno: errno) }
        try syncDirectory(directory)
        let appendFD = Glibc.open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC)
        guard appendFD >= 0 else { throw .cannotCreate(path: path, problem: String(cString: strerror(errno))) }
        Failpoints.hit("after-header:run")
        return Journal(directory: directory, records: [record.record], descriptor: appendFD, lock: lock, sync: sync)
    }

    // MARK: - append

    /// Appends one record and makes it durable before returning.
    @discardableResult
    public func append<Payload: Encodable>(kind: String, step: String? = nil, critical: Bool = true, data: Payload) throws(JournalError) -> JournalRecord {
        guard !state.withLock({ $0.failed }) else { throw .closed(path: path) }
        let point = "\(kind):\(step ?? "run")"
        Failpoints.hit("before-" + point)
        let encoded = try Self.encode(data, path: path)
        let record = try state.withLock { (state) throws(JournalError) -> JournalRecord in
            guard !state.failed else { throw .closed(path: path) }
            let last = state.records[state.records.count - 1]
            let framed = try Self.frame(sequence: last.sequence + 1, previous: last.checksum, run: last.run, kind: kind, step: step,
                                        critical: critical, data: encoded)
            do throws(JournalError) {
                try Self.writeAll(descriptor, framed.line, path: path, sync: sync)
            } catch {
                state.failed = true
                throw error
            }
            state.records.append(framed.record)
            return framed.record
        }
        Failpoints.hit("after-" + point)
        return record
    }

    // MARK: - open

    /// Opens an existing run for resuming: takes its lock, verifies every record and the chain,
    /// repairs a torn last record (copied aside first, then truncated, and a `repair` record
    /// appended), and refuses any other damage.
    public static func open(directory: String, sync: @escaping @Sendable (Int32) -> Int32 = { fdatasync($0) }) throws(JournalError) -> Journal {
        try checkOwnership(directory)
        let lock = try RunLock(directory: directory)
        let path = directory + "/" + fileName
        guard let contents = try readContents(path) else {
            throw access(path, F_OK) == 0 ? .cannotCreate(path: path, problem: "cannot read it") : .missing(path: path)
        }
        let scan = try Self.scan(contents, path: path)
        // The header is written by rename, so it cannot be torn: damage there is corruption, and
        // nothing is truncated.
        guard !scan.records.isEmpty else { throw .corrupt(path: path, offset: 0, sequence: 0, problem: "no valid header record") }
        var repairedCopy: String?
        if scan.validBytes < contents.count {
            // A torn tail: keep the evidence durably first, then cut back to the last good record.
            let copy = path + ".broken-" + compactTimestamp()
            let copyFD = Glibc.open(copy, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard copyFD >= 0 else { throw .writeFailed(path: copy, operation: "create the copy of the torn journal", errno: errno) }
            do {
                defer { close(copyFD) }
                try writeAll(copyFD, [UInt8](contents), path: copy, sync: { fsync($0) })
            }
            try syncDirectory(directory)
            let journalFD = Glibc.open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)
            guard journalFD >= 0 else { throw .writeFailed(path: path, operation: "open for truncation", errno: errno) }
            defer { close(journalFD) }
            guard ftruncate(journalFD, off_t(scan.validBytes)) == 0 else { throw .writeFailed(path: path, operation: "truncate", errno: errno) }
            guard fsync(journalFD) == 0 else { throw .writeFailed(path: path, operation: "fsync after truncation", errno: errno) }
            repairedCopy = copy
        }
        let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw .cannotCreate(path: path, problem: String(cString: strerror(errno))) }
        let journal = Journal(directory: directory, records: scan.records, descriptor: fd, lock: lock, repairedCopy: repairedCopy, sync: sync)
        if let repairedCopy {
            try journal.append(kind: "repair", data: ["truncatedAt": String(scan.validBytes), "originalBytes": String(contents.count), "copy": repairedCopy])
        }
        return journal
    }

    /// Reads a journal without locking or repairing it (`repave journal show`, `status`).
    public static func read(directory: String) throws(JournalError) -> (records: [JournalRecord], tornBytes: Int) {
        let path = directory + "/" + fileName
        guard let contents = try readContents(path) else { throw .missing(path: path) }
        let scan = try scan(contents, path: path)
        return (scan.records, contents.count - scan.validBytes)
    }

    /// The journal's bytes, nil when it cannot be opened. One bounded read: a file over
    /// ``maxJournalBytes`` is refused from its size, and memory never exceeds the limit.
    private static func readContents(_ path: String) throws(JournalError) -> Data? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        if Int(info.st_size) > maxJournalBytes { throw .tooLarge(path: path, bytes: Int(info.st_size), limit: maxJournalBytes) }
        var contents = Data()
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if count == 0 { return contents }
            contents.append(contentsOf: buffer[..<count])
            if contents.count > maxJournalBytes { throw .tooLarge(path: path, bytes: contents.count, limit: maxJournalBytes) }
        }
    }

    /// What a scan of a journal's bytes found: the valid records, and how many bytes they take
    /// (anything after them is a torn tail).
    public struct Scan: Sendable {
        public var records: [JournalRecord]
        public var validBytes: Int
    }

    /// Verifies framing, checksums, sequence and chain. Damage in the last line is a torn tail
    /// (reported through `validBytes`); damage followed by any valid line is corruption.
    ///
    /// Pure: no file is read or written (`path` only names the journal in errors), so the fuzz
    /// target `fuzz/Sources/FuzzJournal` drives it directly.
    public static func scan(_ contents: Data, path: String) throws(JournalError) -> Scan {
        let bytes = [UInt8](contents)
        var records: [JournalRecord] = []
        var offset = 0
        while offset < bytes.count {
            switch parseLine(bytes, at: offset) {
            case .success(let (record, end)):
                let expected = records.last
                if record.version > formatVersion { throw .unsupportedVersion(path: path, version: record.version) }
                let problem: String? =
                    record.sequence != (expected?.sequence ?? 0) + 1 ? "record \(record.sequence) where \((expected?.sequence ?? 0) + 1) belongs"
                    : record.previous != (expected?.checksum ?? genesis) ? "record \(record.sequence) does not chain to the record before it"
                    : (expected != nil && record.run != expected!.run) ? "record \(record.sequence) belongs to another run"
                    : (expected == nil && record.kind != "header") ? "the first record is not a header" : nil
                if let problem { throw .corrupt(path: path, offset: offset, sequence: expected?.sequence ?? 0, problem: problem) }
                records.append(record)
                offset = end
            case .failure(let problem):
                // Torn only if nothing valid follows: otherwise the middle of the journal is damaged.
                if validLineExists(in: bytes, after: offset) {
                    throw .corrupt(path: path, offset: offset, sequence: records.last?.sequence ?? 0, problem: problem)
                }
                return Scan(records: records, validBytes: offset)
            }
        }
        return Scan(records: records, validBytes: offset)
    }

    /// Whether a valid record starts anywhere after `offset` — not only after a newline, since
    /// the damage may be the newline itself.
    private static func validLineExists(in bytes: [UInt8], after offset: Int) -> Bool {
        var index = offset + 1
        while index + prefix.count <= bytes.count {
            if bytes[index] == prefix[0], Array(bytes[index..<index + prefix.count]) == prefix,
               case .success = parseLine(bytes, at: index) { return true }
            index += 1
        }
        return false
    }

    private enum LineResult {
        case success((JournalRecord, Int))
        case failure(String)
    }

    private static let prefix = Array(#"{"c":""#.utf8)

    /// `{"c":"<8 hex>","n":<digits>,"r":<n bytes>}\n`, with the CRC of those n bytes.
    private static func parseLine(_ bytes: [UInt8], at start: Int) -> LineResult {
        var index = start
        func expect(_ literal: String) -> Bool {
            let expected = Array(literal.utf8)
            guard index + expected.count <= bytes.count, Array(bytes[index..<index + expected.count]) == expected else { return false }
            index += expected.count
            return true
        }
        guard expect(#"{"c":""#) else { return .failure("a line does not start like a journal record") }
        guard index + 8 <= bytes.count else { return .failure("the line ends early") }
        let checksum = String(decoding: bytes[index..<index + 8], as: UTF8.self)
        guard checksum.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { return .failure("the checksum is not 8 hex digits") }
        index += 8
        guard expect(#"","n":"#) else { return .failure("the line ends early or is malformed") }
        var length = 0
        var digits = 0
        while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57, digits < 8 {
            length = length * 10 + Int(bytes[index] - 48)
            index += 1
            digits += 1
        }
        guard digits > 0, length <= maxRecordBytes else { return .failure("the record length is missing or too large") }
        guard expect(#","r":"#) else { return .failure("the line ends early or is malformed") }
        guard index + length + 2 <= bytes.count else { return .failure("the record is cut short") }
        let body = bytes[index..<index + length]
        index += length
        guard expect("}\n") else { return .failure("the record does not end where its length says") }
        guard CRC32C.hex(body) == checksum else { return .failure("checksum mismatch") }
        guard let record = decodeRecord(Data(body), checksum: checksum) else { return .failure("the record is not a valid journal record") }
        return .success((record, index))
    }

    private struct Fields: Decodable {
        var v: Int
        var seq: Int
        var prev: String
        var run: String
        var t: String
        var kind: String
        var step: String?
        var crit: Bool
    }

    private static func decodeRecord(_ body: Data, checksum: String) -> JournalRecord? {
        // Foundation's JSONDecoder lets invalid UTF-8 through inside strings; our writer never
        // produces it, and `jq .r` must read every line we accept (found by fuzz/FuzzJournal).
        guard String(validating: body, as: UTF8.self) != nil,
              let fields = try? JSONDecoder().decode(Fields.self, from: body) else { return nil }
        let record = { (data: Data) in
            JournalRecord(version: fields.v, sequence: fields.seq, previous: fields.prev, run: fields.run, time: fields.t,
                          kind: fields.kind, step: fields.step, critical: fields.crit, data: data, checksum: checksum)
        }
        // A newer format may lay records out differently: `scan` refuses it by its version.
        guard fields.v <= formatVersion else { return record(Data()) }
        // Only what the writer writes is accepted: the fixed fields in its order and form, then
        // `data`, last, one JSON value. A duplicated or reordered key (`"step":"S3",…,"step":null`)
        // or a second "data" would otherwise read one way here and another in jq or a later
        // Repave (found by fuzz/FuzzJournal).
        let bytes = [UInt8](body)
        let head = fixedFields(version: fields.v, sequence: fields.seq, previous: fields.prev, run: fields.run, time: fields.t,
                               kind: fields.kind, step: fields.step, critical: fields.crit)
        guard bytes.count > head.count, bytes.starts(with: head), bytes.last == UInt8(ascii: "}") else { return nil }
        let data = Data(bytes[head.count..<(bytes.count - 1)])
        guard (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) != nil else { return nil }
        return record(data)
    }

    /// The record's bytes up to its payload: `{"v":1,"seq":…,"prev":…,"run":…,"t":…,"kind":…,"step":…,"crit":…,"data":`.
    private static func fixedFields(version: Int, sequence: Int, previous: String, run: String, time: String, kind: String,
                                    step: String?, critical: Bool) -> [UInt8] {
        var body = #"{"v":\#(version),"seq":\#(sequence),"prev":\#(string(previous)),"run":\#(string(run)),"t":\#(string(time)),"#
        body += #""kind":\#(string(kind)),"step":\#(step.map(string) ?? "null"),"crit":\#(critical),"data":"#
        return Array(body.utf8)
    }

    // MARK: - framing and I/O

    private static func encode<Payload: Encodable>(_ value: Payload, path: String) throws(JournalError) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return try encoder.encode(value)
        } catch {
            throw .cannotCreate(path: path, problem: "a record's data cannot be encoded: \(error)")
        }
    }

    private static func string(_ text: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return (try? encoder.encode(text)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
    }

    static func frame(sequence: Int, previous: String, run: String, kind: String, step: String?, critical: Bool, data: Data)
        throws(JournalError) -> (record: JournalRecord, line: [UInt8])
    {
        let time = Date().formatted(.iso8601)
        var bytes = fixedFields(version: formatVersion, sequence: sequence, previous: previous, run: run, time: time,
                                kind: kind, step: step, critical: critical)
        bytes += data
        bytes.append(UInt8(ascii: "}"))
        guard bytes.count <= maxRecordBytes else { throw .cannotCreate(path: kind, problem: "a record is larger than 1 MiB") }
        let checksum = CRC32C.hex(bytes)
        let line = Array(#"{"c":"\#(checksum)","n":\#(bytes.count),"r":"#.utf8) + bytes + Array("}\n".utf8)
        let record = JournalRecord(version: formatVersion, sequence: sequence, previous: previous, run: run, time: time,
                                   kind: kind, step: step, critical: critical, data: data, checksum: checksum)
        return (record, line)
    }

    /// One logical write (looping on short writes), then the sync.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String, sync: (Int32) -> Int32) throws(JournalError) {
        // write and fdatasync block: callers in Swift tasks go through `offPool`.
        assertOffPool("journal write and fdatasync")
        var written = 0
        while written < bytes.count {
            let result = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if result < 0 {
                if errno == EINTR { continue }
                throw .writeFailed(path: path, operation: "write", errno: errno)
            }
            written += result
        }
        guard sync(fd) == 0 else { throw .writeFailed(path: path, operation: "fsync", errno: errno) }
    }

    static func makeDirectory(_ directory: String) throws(JournalError) {
        let parent = (directory as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw .cannotCreate(path: parent, problem: "\(error)")
        }
        guard mkdir(directory, 0o700) == 0 else {
            throw .cannotCreate(path: directory, problem: errno == EEXIST ? "it already exists" : String(cString: strerror(errno)))
        }
        _ = chmod(directory, 0o700)
        try syncDirectory(parent)
    }

    static func syncDirectory(_ directory: String) throws(JournalError) {
        let fd = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .writeFailed(path: directory, operation: "open directory for fsync", errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw .writeFailed(path: directory, operation: "fsync directory", errno: errno) }
    }

    /// Refuses a run directory that another user owns or that others may write.
    static func checkOwnership(_ directory: String) throws(JournalError) {
        var info = stat()
        guard lstat(directory, &info) == 0 else { throw .missing(path: directory) }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw .unsafe(path: directory, problem: "not a directory") }
        guard info.st_uid == getuid() else { throw .unsafe(path: directory, problem: "owned by uid \(info.st_uid), not by you (uid \(getuid()))") }
        guard info.st_mode & 0o022 == 0 else { throw .unsafe(path: directory, problem: "writable by group or others (mode \(String(info.st_mode & 0o777, radix: 8)))") }
    }

    /// `20261128T020000Z`: UTC, sortable, safe in file names.
    static func compactTimestamp(_ date: Date = Date()) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func two(_ value: Int?) -> String { String(format: "%02d", value ?? 0) }
        return "\(c.year ?? 0)\(two(c.month))\(two(c.day))T\(two(c.hour))\(two(c.minute))\(two(c.second))Z"
    }

}
