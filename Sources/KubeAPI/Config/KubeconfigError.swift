/// A kubeconfig that cannot be used: which file, where in it, which key, what is wrong, and
/// what to do. Never answered by silently trying another configuration.
public struct KubeconfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file at fault; nil when no file is involved (no configuration found at all).
    public let file: String?
    public let line: Int?
    public let column: Int?
    /// The key at fault, as a path: `users[jeda].user.client-certificate`.
    public let key: String?
    public let problem: String
    public let hint: String?

    public init(file: String?, line: Int? = nil, column: Int? = nil, key: String? = nil, problem: String, hint: String? = nil) {
        self.file = file
        self.line = line
        self.column = column
        self.key = key
        self.problem = problem
        self.hint = hint
    }

    /// `/home/op/.kube/config:12:5: users[jeda].user.client-certificate: no such file ...`
    public var location: String {
        var parts: [String] = []
        if let file {
            var place = file
            if let line { place += ":\(line)" + (column.map { ":\($0)" } ?? "") }
            parts.append(place)
        }
        if let key { parts.append(key) }
        return parts.joined(separator: ": ")
    }

    public var description: String {
        location.isEmpty ? problem : "\(location): \(problem)"
    }
}
