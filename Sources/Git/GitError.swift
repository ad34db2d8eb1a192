import CGit2

/// A failed libgit2 call: its return code, libgit2's error class and message (read from
/// `git_error_last()` on the failing thread, before anything else can overwrite it) and what we
/// were doing.
public struct GitError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: RawRepresentable, Sendable, Hashable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }

        public static let notFound = Code(rawValue: GIT_ENOTFOUND.rawValue)
        public static let exists = Code(rawValue: GIT_EEXISTS.rawValue)
        public static let ambiguous = Code(rawValue: GIT_EAMBIGUOUS.rawValue)
        public static let unbornBranch = Code(rawValue: GIT_EUNBORNBRANCH.rawValue)
        public static let bareRepository = Code(rawValue: GIT_EBAREREPO.rawValue)
        public static let locked = Code(rawValue: GIT_ELOCKED.rawValue)
        public static let owner = Code(rawValue: GIT_EOWNER.rawValue)
        public static let generic = Code(rawValue: GIT_ERROR.rawValue)
    }

    public let code: Code
    /// libgit2's `git_error_t` class (e.g. GIT_ERROR_REPOSITORY = 6), 0 when none was set.
    public let errorClass: Int32
    public let message: String
    /// What was being done: `open repository at /home/coder/Research/api`.
    public let operation: String

    public init(code: Code, errorClass: Int32, message: String, operation: String) {
        self.code = code
        self.errorClass = errorClass
        self.message = message
        self.operation = operation
    }

    public var description: String {
        "failed to \(operation): \(message) (libgit2 error \(code.rawValue))"
    }

    /// Throws when `result` is negative, with libgit2's last error for this thread. Must be
    /// called in the same synchronous stretch as the failing call: libgit2's error state is
    /// thread-local, and a task may resume on another thread after an `await`.
    static func check(_ result: Int32, _ operation: @autoclosure () -> String) throws(GitError) {
        guard result < 0 else { return }
        var errorClass: Int32 = 0
        var message = "unknown libgit2 error"
        if let last = git_error_last() {
            errorClass = last.pointee.klass
            if let text = last.pointee.message { message = String(cString: text) }
        }
        throw GitError(code: Code(rawValue: result), errorClass: errorClass, message: message, operation: operation())
    }
}
