import Foundation
import Journal
import KubeAPI
import RepaveTestSupport
import Synchronization
import Testing

@testable import RepaveCore

/// The runner with steps that touch no cluster, so journal failures can be injected.
@Suite("runner and a failing journal", .blockingCallsAllowed)
struct RunnerJournalFailureTests {
    final class Sent: Sendable {
        let names = Mutex<[String]>([])
    }

    struct Touch: Step {
        let id: String
        let sent: Sent
        var mutates: Bool { true }
        var summary: String { "touch \(id)" }
        var estimate: Duration { .seconds(1) }
        var permissions: [KubeClient.AccessQuestion] { [] }
        func observe(_ context: StepContext) async throws -> Bool { false }
        func apply(_ context: StepContext) async throws {
            try await context.mutate("PATCH", "/fake/\(id)") { sent.names.withLock { $0.append(id) } }
        }
    }

    /// A wait that fails for a passing reason after `failAfter` on its first try, and records
    /// what it had left of its timeout on every try.
    final class TimeLeft: Sendable {
        let values = Mutex<[Duration]>([])
    }

    struct SlowWait: Step {
        let left: TimeLeft
        let failAfter: Duration
        var id: String { "wait" }
        var mutates: Bool { false }
        var summary: String { "wait" }
        var estimate: Duration { .seconds(5) }
        var permissions: [KubeClient.AccessQuestion] { [] }
        func observe(_ context: StepContext) async throws -> Bool { false }
        func apply(_ context: StepContext) async throws {}
        func await(_ context: StepContext) async throws {
            let tries = left.values.withLock { $0.append(context.timeLeft(of: estimate)); return $0.count }
            if tries == 1 {
                try await Task.sleep(for: failAfter)
                // A failure the engine tries again (a read's 5xx is the client's to retry).
                throw KubeAPIError(reason: .conflict, httpStatus: 409, verb: "GET", path: "/fake", message: "the object has been modified")
            }
        }
    }

    func client(_ scratch: ScratchDirectory) throws -> KubeClient {
        try KubeClient(connection: try scratch.unreachableConnection(), userAgent: "repave-test")
    }

    let header = RunHeader(strategy: "test", plan: "t", planDigest: "d", cluster: .init(server: "s", kubeSystemUID: "u"), targets: [:], tlsVerified: true)

    @Test("an fsync failure stops the run before its next request is sent")
    func syncFailureStopsTheRun() async throws {
        let scratch = try ScratchDirectory()
        let syncs = Mutex(0)
        // Header (1), then: intent a (2), outcome a (3), applied a (4), step_done a (5), intent b (6) fails.
        let journal = try Journal.create(directory: scratch.file("run"), run: "r", header: header) { fd in
            let count = syncs.withLock { $0 += 1; return $0 }
            if count == 6 { errno = EIO; return -1 }
            return fdatasync(fd)
        }
        let sent = Sent()
        let runner = Runner(steps: [Touch(id: "a", sent: sent), Touch(id: "b", sent: sent), Touch(id: "c", sent: sent)],
                            journal: journal, facts: Facts(), client: try client(scratch), confirm: { _ in true })
        let outcome = await runner.run(resuming: false, state: RunState(), confirmationRequired: false)
        guard case .stopped(let reason, _) = outcome else { Issue.record("expected stopped, got \(outcome)"); return }
        #expect(reason.contains("fsync failed"))
        // b's intent never became durable, so b's request was never sent; c never started.
        #expect(sent.names.withLock { $0 } == ["a"])
        let records = try Journal.read(directory: scratch.file("run")).records
        // b's intent was written but its sync failed: the run stopped there, and a resume settles
        // it by reading the cluster (here: nothing was sent).
        #expect(records.map(\.kind) == ["header", "intent", "outcome", "applied", "step_done", "intent"])
        #expect(records.last?.step == "b")
    }

    @Test("a wait tried again after a passing failure keeps its deadline: the retry gets what is left of the timeout, not all of it")
    func retriedWaitKeepsItsDeadline() async throws {
        let scratch = try ScratchDirectory()
        let journal = try Journal.create(directory: scratch.file("run"), run: "r", header: header)
        let step = SlowWait(left: TimeLeft(), failAfter: .milliseconds(1500))
        let runner = Runner(steps: [step], journal: journal, facts: Facts(), client: try client(scratch), confirm: { _ in true })
        let outcome = await runner.run(resuming: false, state: RunState(), confirmationRequired: false)
        guard case .finished = outcome else { Issue.record("expected finished, got \(outcome)"); return }
        let left = step.left.values.withLock { $0 }
        #expect(left.count == 2)
        #expect(left.first.map { $0 > .milliseconds(4900) } == true, "\(left)")
        // 1.5 s spent in the first try (and the pause before the retry) are gone from the second.
        #expect(left.last.map { $0 <= .milliseconds(3500) } == true, "\(left)")
        #expect(try Journal.read(directory: scratch.file("run")).records.contains { $0.kind == "note" && $0.step == "wait" })
    }
}
