/// An error the user reads: what failed, why (a chain of causes), what to do, and the exit status.
///
/// Messages are lowercase without a trailing period, in Kubernetes' words:
/// `failed to delete persistentvolumeclaim 'devpod/home'` / caused by `conflict: the object has
/// been modified` / hint `run 'repave resume …'; the step re-reads the claim first`.
public protocol UserFacingError: Error {
    /// A stable identifier for scripts, from ``ErrorCode``: `plan.invalid`, `preflight.no-claim`.
    var code: String { get }
    var message: String { get }
    /// Underlying reasons, outermost first.
    var causes: [String] { get }
    var hint: String? { get }
    var exitStatus: ExitStatus { get }
}

/// The common concrete ``UserFacingError``: a code from the catalog, and the error that caused it
/// kept as an error (not only its text).
public struct RepaveError: UserFacingError, Sendable, CustomStringConvertible {
    public var errorCode: ErrorCode
    public var message: String
    public var causes: [String]
    /// The error underneath, when there is one: its text is the last of `causes`.
    public var cause: (any Error)?
    public var hint: String?
    public var exitStatus: ExitStatus

    /// - Parameter exitStatus: the code's own unless given (the session's rule: a run that changed
    ///   nothing yet is refused, exit 2, whatever stopped it).
    public init(_ code: ErrorCode, _ message: String, causes: [String] = [], cause: (any Error)? = nil,
                hint: String? = nil, exitStatus: ExitStatus? = nil) {
        errorCode = code
        self.message = message
        self.causes = causes + (cause.map { ["\($0)"] } ?? [])
        self.cause = cause
        self.hint = hint
        self.exitStatus = exitStatus ?? code.exitStatus
    }

    public var code: String { errorCode.name }

    public var description: String {
        ([message] + causes).joined(separator: ": ")
    }
}
