import Foundation
import Journal

/// Blocking work (fdatasync, reading the operator's answer) on a thread of its own: Swift's
/// cooperative pool has two threads on these machines, and one blocked in a system call halves
/// the program — the Lease renewal among it.
public enum Blocking {
    public static func run<T: Sendable, E: Error>(_ name: String, _ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
        let result: Result<T, E> = await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: Result(catching: body)) }
            thread.name = name
            thread.start()
        }
        return try result.get()
    }

    /// A journal append: write and fdatasync.
    static func journal<T: Sendable>(_ body: @escaping @Sendable () throws(JournalError) -> T) async throws(JournalError) -> T {
        try await run("journal", body)
    }
}
