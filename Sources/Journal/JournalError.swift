/// Why a journal cannot be written or trusted.
public enum JournalError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Another process drives this run.
    case locked(path: String, holder: String)
    /// A write or fsync failed: the run must stop before its next API write.
    case writeFailed(path: String, operation: String, errno: Int32)
    /// A record other than the last is damaged, or the chain is broken: never resumed automatically.
    case corrupt(path: String, offset: Int, sequence: Int, problem: String)
    /// The journal was written by a newer, incompatible Repave.
    case unsupportedVersion(path: String, version: Int)
    /// Files or directories with the wrong owner or permissions.
    case unsafe(path: String, problem: String)
    case cannotCreate(path: String, problem: String)
    /// No journal where one was expected.
    case missing(path: String)
    /// Larger than any journal Repave writes: refused from its size, unread.
    case tooLarge(path: String, bytes: Int, limit: Int)
    /// A writer that already failed refuses every later append.
    case closed(path: String)

    public var description: String {
        switch self {
        case .locked(let path, let holder): "run \(path) is locked by \(holder)"
        case .writeFailed(let path, let operation, let code): "journal \(path): \(operation) failed: \(String(cString: strerror(code)))"
        case .corrupt(let path, let offset, let sequence, let problem): "journal \(path) is corrupt at byte \(offset) (after record \(sequence)): \(problem)"
        case .unsupportedVersion(let path, let version): "journal \(path) has format version \(version), newer than this repave understands"
        case .unsafe(let path, let problem): "\(path): \(problem)"
        case .cannotCreate(let path, let problem): "cannot create \(path): \(problem)"
        case .missing(let path): "no journal at \(path)"
        case .tooLarge(let path, let bytes, let limit): "journal \(path) is \(bytes) bytes; a journal is at most \(limit) bytes (\(limit >> 20) MiB)"
        case .closed(let path): "journal \(path) stopped accepting records after an earlier write failure"
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
