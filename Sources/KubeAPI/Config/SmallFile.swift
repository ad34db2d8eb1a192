import Foundation

/// Reads a small configuration file (a kubeconfig, a plan) whole, with a bound: a regular file
/// over the limit is refused from its size before any byte is read, and anything else (a pipe,
/// a device such as /dev/zero) is read no further than one byte past the limit. Memory stays
/// bounded by the limit whatever the path names.
public enum SmallFile {
    public enum Failure: Error, Sendable, Equatable {
        /// Larger than the limit; the size when the file system knows it (not for a pipe).
        case tooLarge(bytes: Int?)
        /// Nothing at that path.
        case missing
        /// Cannot be opened or read: `permission denied`, `is a directory`.
        case unreadable(String)
    }

    /// The file's bytes and its mode (for ``exposure(of:)``).
    public static func read(_ path: String, limit: Int) throws(Failure) -> (data: Data, mode: mode_t) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw errno == ENOENT ? .missing : .unreadable(reason(errno)) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .unreadable(reason(errno)) }
        let isRegular = info.st_mode & S_IFMT == S_IFREG
        if info.st_mode & S_IFMT == S_IFDIR { throw .unreadable(reason(EISDIR)) }
        if isRegular, Int(info.st_size) > limit { throw .tooLarge(bytes: Int(info.st_size)) }

        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while data.count <= limit {
            let wanted = min(buffer.count, limit + 1 - data.count)
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, wanted) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .unreadable(reason(errno))
            }
            if count == 0 { break }
            data.append(contentsOf: buffer[..<count])
        }
        // A regular file that grew after fstat is reported without a size: the one read is stale.
        guard data.count <= limit else { throw .tooLarge(bytes: nil) }
        return (data, info.st_mode)
    }

    /// Who besides the owner may read or write a file of this mode, as words for a warning
    /// ("readable by group and others"); nil when only the owner may.
    public static func exposure(of mode: mode_t, readable: Bool = true) -> String? {
        // A pipe, a terminal or /dev/null is no file anyone could chmod.
        guard mode & S_IFMT == S_IFREG else { return nil }
        var parts: [String] = []
        let readers = [mode & 0o040 != 0 ? "group" : nil, mode & 0o004 != 0 ? "others" : nil].compactMap { $0 }
        let writers = [mode & 0o020 != 0 ? "group" : nil, mode & 0o002 != 0 ? "others" : nil].compactMap { $0 }
        if readable, !readers.isEmpty { parts.append("readable by " + readers.joined(separator: " and ")) }
        if !writers.isEmpty { parts.append("writable by " + writers.joined(separator: " and ")) }
        return parts.isEmpty ? nil : parts.joined(separator: " and ")
    }

    private static func reason(_ code: Int32) -> String {
        switch code {
        case EACCES: "permission denied"
        default: String(cString: strerror(code)).lowercased()
        }
    }
}
