import Blocking
import Testing

/// For tests that call the journal's blocking API straight from the test's task (the journal's
/// own tests, a runner fed a failing fsync): the debug check that blocking work stays off the
/// cooperative pool (`assertOffPool`) does not stop them. Product code goes through `offPool`.
public struct BlockingCallsAllowed: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        try await CooperativePoolCheck.$reportViolation.withValue({ _ in }) { try await function() }
    }
}

extension Trait where Self == BlockingCallsAllowed {
    public static var blockingCallsAllowed: Self { BlockingCallsAllowed() }
}
