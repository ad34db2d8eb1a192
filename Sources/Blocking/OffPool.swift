import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs blocking work on a thread of its own and resumes the caller with its result.
///
/// Swift's cooperative pool has one thread per core, two on our machines. A task that blocks
/// (in `curl_easy_perform`, a libgit2 walk, `readLine`, `fsync`) holds one of them for as long as
/// the call lasts, and every other task, the Lease renewal included, shares what is left. A thread
/// per call costs tens of microseconds, nothing next to the calls it carries, and keeps each
/// libgit2 or curl handle on the one thread that made it.
///
///     let facts = try await offPool("git inspect") { try Repository.open(at: path).inspect() }
///     try await offPool("journal fsync") { try journal.sync() }
///     let answer = await offPool("confirmation prompt") { readLine() }
///
/// The body's error type is kept (`throws(GitError)` stays `GitError`; a body that cannot throw
/// needs no `try`). Cancelling the caller does not stop the body: work that must stop early takes
/// its own flag, as Curl's transfers do.
///
/// The caller's ``CooperativePoolCheck/reportViolation`` travels with the body, so a test that
/// records violations also sees any the body would commit.
///
/// - Parameter what: the thread's name (shown by debuggers and `top -H`), in a few words.
public func offPool<Value: Sendable, Failure: Error>(
    _ what: String, _ body: @escaping @Sendable () throws(Failure) -> Value
) async throws(Failure) -> Value {
    let report = CooperativePoolCheck.reportViolation
    let result: Result<Value, Failure> = await withCheckedContinuation { continuation in
        let thread = Thread {
            nameCurrentThread(what)
            let result = CooperativePoolCheck.$reportViolation.withValue(report) {
                Result { () throws(Failure) -> Value in try body() }
            }
            continuation.resume(returning: result)
        }
        thread.start()
    }
    return try result.get()
}

/// Names the calling thread for the system (`top -H`, gdb), at most 15 bytes as Linux allows.
/// Foundation's `Thread.name`, set before `start()`, races the new thread on Linux and often never
/// reaches it (the thread keeps the creating pool thread's `…oot.default-qos`; OffPoolTests caught
/// it). Glibc's `pthread_setname_np` is not visible to Swift, so the name is written where it
/// writes it: the thread's `comm` in /proc.
func nameCurrentThread(_ name: String) {
    var short = name
    while short.utf8.count > 15 { short.removeLast() }
    #if os(Linux)
    let fd = open("/proc/thread-self/comm", O_WRONLY)
    guard fd >= 0 else { return }
    defer { close(fd) }
    _ = short.withCString { write(fd, $0, strlen($0)) }
    #elseif canImport(Darwin)
    _ = pthread_setname_np(short)
    #endif
}
