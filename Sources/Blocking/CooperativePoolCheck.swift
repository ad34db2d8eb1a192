/// Debug builds check that blocking functions are never called from a Swift task: such a call
/// holds one of the cooperative pool's two threads (see ``offPool(_:_:)``). A blocking function
/// calls ``assertOffPool(_:)`` first; release builds compile the check to nothing.
///
/// "From a task" is what the runtime itself knows: code running as part of a task (directly, or
/// in a synchronous function an async one called) has a current task; a thread that
/// ``offPool(_:_:)``, Foundation or libdispatch started outside any task has none. Tasks run on
/// the cooperative pool unless an actor or executor of ours says otherwise, and we have none that
/// does, so "in a task" is "on the pool" here.
public enum CooperativePoolCheck {
    /// Called with the blocking function's description when it runs inside a task. The default
    /// stops the program with a message naming the function; a test binds its own recorder with
    /// `CooperativePoolCheck.$reportViolation.withValue(…)`, which reaches only its own task tree.
    @TaskLocal public static var reportViolation: @Sendable (_ what: String) -> Void = stop

    /// Whether the calling code is running inside a Swift task.
    public static var isInTask: Bool {
        withUnsafeCurrentTask { $0 != nil }
    }

    @Sendable static func stop(_ what: String) {
        preconditionFailure("\(what) blocks its thread and was called from a Swift task, on the cooperative pool; run it through offPool(_:_:)")
    }
}

/// Reports a violation through ``CooperativePoolCheck/reportViolation`` when a blocking function
/// is called from a Swift task. Debug builds only: in a release build this is an empty function.
///
/// - Parameter what: the blocking function, as a reader of the message needs it
///   (`git-check walk of /home/coder`).
@inlinable
public func assertOffPool(_ what: @autoclosure () -> String) {
    #if DEBUG
    if CooperativePoolCheck.isInTask { CooperativePoolCheck.reportViolation(what()) }
    #endif
}
