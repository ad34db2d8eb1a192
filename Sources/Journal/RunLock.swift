import Foundation

/// The local lock on a run directory: `flock` on `lock`, tried without blocking, so a second
/// process driving the same run is told at once who holds it. Released when the value goes away
/// (or the process dies: the kernel drops flock locks with the descriptor).
public final class RunLock: Sendable {
    public let path: String
    private let descriptor: Int32

    /// - Parameter retries: 10 ms retries while the lock reads as held (see below).
    public init(directory: String, retries: Int = 20) throws(JournalError) {
        path = directory + "/lock"
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .cannotCreate(path: path, problem: String(cString: strerror(errno))) }
        // Non-blocking, but retried for up to 0.2 s: a child process forked by another thread
        // holds a copy of a just-released lock's descriptor until it execs (O_CLOEXEC closes it
        // only then), which would otherwise read as "locked" for a moment.
        var locked = flock(fd, LOCK_EX | LOCK_NB) == 0
        var code = locked ? 0 : errno
        for _ in 0..<retries where !locked && code == EWOULDBLOCK {
            usleep(10_000)
            locked = flock(fd, LOCK_EX | LOCK_NB) == 0
            code = locked ? 0 : errno
        }
        guard locked else {
            let holder = Self.readHolder(fd)
            close(fd)
            if code == EWOULDBLOCK { throw .locked(path: directory, holder: holder) }
            throw .cannotCreate(path: path, problem: String(cString: strerror(code)))
        }
        descriptor = fd
        // Who holds it, for the message a second process prints.
        let info = "pid \(getpid()) on \(ProcessInfo.processInfo.hostName) since \(Date().formatted(.iso8601))\n"
        _ = ftruncate(fd, 0)
        _ = info.withCString { pwrite(fd, $0, strlen($0), 0) }
        _ = fchmod(fd, 0o600)
    }

    /// Who holds the run's lock right now, or nil when nobody does (checked without keeping it).
    public static func holder(of directory: String) -> String? {
        do {
            _ = try RunLock(directory: directory, retries: 0)
            return nil
        } catch .locked(_, let holder) {
            return holder
        } catch {
            return nil
        }
    }

    deinit {
        _ = ftruncate(descriptor, 0)
        close(descriptor)
    }

    /// The holder writes who it is right after taking the lock; give it a moment to do so.
    private static func readHolder(_ fd: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        for _ in 0..<20 {
            let count = pread(fd, &buffer, buffer.count, 0)
            let text = count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : ""
            if !text.isEmpty { return text }
            usleep(5_000)
        }
        return "another process"
    }
}
