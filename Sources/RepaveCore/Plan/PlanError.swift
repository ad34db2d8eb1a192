/// A plan file that cannot be used: where (file:line:column), which key, what is wrong, and
/// what to do. Reported before any kubeconfig is loaded or any cluster is touched (exit 2).
public struct PlanError: UserFacingError, Sendable, Equatable, CustomStringConvertible {
    public let file: String
    public let line: Int?
    public let column: Int?
    /// The key path at fault: `timeouts.scaleDown`, `target.workloads[0].kind`.
    public let key: String?
    public let problem: String
    public let hint: String?

    public init(file: String, line: Int? = nil, column: Int? = nil, key: String? = nil, problem: String, hint: String? = nil) {
        self.file = file
        self.line = line
        self.column = column
        self.key = key
        self.problem = problem
        self.hint = hint
    }

    public var code: String { ErrorCode.planInvalid.name }
    public var causes: [String] { [] }
    public var exitStatus: ExitStatus { .refused }

    /// `plans/devpod-home.yaml:12:5: timeouts.scaleDwn: unknown key (did you mean 'scaleDown'?)`
    public var message: String {
        var place = file
        if let line { place += ":\(line)" + (column.map { ":\($0)" } ?? "") }
        return [place, key, problem].compactMap { $0 }.joined(separator: ": ")
    }

    public var description: String { message }
}
