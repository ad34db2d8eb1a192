import Blocking
import Foundation
import Synchronization
import Testing

/// Stands for a blocking function: it checks first, as the real ones do.
func blockingWork(_ what: String) -> Bool {
    assertOffPool(what)
    return CooperativePoolCheck.isInTask
}

struct Refused: Error, Equatable {
    let code: Int
}

@Suite("blocking work off the cooperative pool")
struct OffPoolTests {
    @Test("the debug check fires when a blocking function runs in a task, and not when it runs through offPool")
    func check() async {
        let violations = Mutex<[String]>([])
        let inTask = await CooperativePoolCheck.$reportViolation.withValue({ what in violations.withLock { $0.append(what) } }) {
            let direct = blockingWork("called from the test's task")
            let child = await Task { blockingWork("called from a child task") }.value
            let helped = await offPool("through the helper") { blockingWork("called through offPool") }
            return [direct, child, helped]
        }
        #expect(inTask == [true, true, false])
        #if DEBUG
        #expect(violations.withLock { $0 } == ["called from the test's task", "called from a child task"])
        #else
        #expect(violations.withLock { $0 }.isEmpty, "release builds check nothing")
        #endif
    }

    @Test("offPool runs the body on a thread of its own, named, outside any task, and keeps the body's error type")
    func helper() async throws {
        let (name, inTask) = await offPool("git-check walk") {
            // The name the system shows (`top -H`, a debugger), not only Foundation's copy.
            let comm = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
            return (comm.trimmingCharacters(in: .newlines), CooperativePoolCheck.isInTask)
        }
        #expect(name == "git-check walk")
        #expect(!inTask)
        let error = await #expect(throws: Refused.self) {
            try await offPool("refusing") { () throws(Refused) -> Int in throw Refused(code: 7) }
        }
        #expect(error == Refused(code: 7))
        #expect(await offPool("answering") { 42 } == 42, "a body that cannot throw needs no try")
    }
}
