/// An error the user reads: what failed, why (a chain of causes), what to do, and the exit status.
///
/// Messages are lowercase without a trailing period, in Kubernetes' words:
/// `failed to delete persistentvolumeclaim 'devpod/home'` / caused by `conflict: the object has
/// been modified` / hint `run 'repave resume …'; the step re-reads the claim first`.
public protocol UserFacingError: Error {
    /// A stable identifier for scripts: `plan.invalid`, `kubeconfig.missing-context`.
    var code: String { get }
    var message: String { get }
    /// Underlying reasons, outermost first.
    var causes: [String] { get }
    var hint: String? { get }
    var exitStatus: ExitStatus { get }
}

/// The common concrete ``UserFacingError``.
public struct RepaveError: UserFacingError, Sendable, Equatable, CustomStringConvertible {
    public var code: String
    public var message: String
    public var causes: [String]
    public var hint: String?
    public var exitStatus: ExitStatus

    public init(code: String, _ message: String, causes: [String] = [], hint: String? = nil, exitStatus: ExitStatus) {
        self.code = code
        self.message = message
        self.causes = causes
        self.hint = hint
        self.exitStatus = exitStatus
    }

    public var description: String {
        ([message] + causes).joined(separator: ": ")
    }
}
