import Foundation

/// Path globs as a plan's `ignore` list writes them: `**` spans directories, `*` and `?` stay
/// within one, a pattern without a slash matches a name at any depth (`*.log`). A directory is
/// given with a trailing slash, so `**/node_modules/**` matches `web/node_modules/` itself.
public struct GlobSet: Sendable {
    public let patterns: [String]
    private let expressions: [NSRegularExpression]

    public struct InvalidPattern: Error, CustomStringConvertible {
        public let pattern: String
        public var description: String { "invalid glob '\(pattern)'" }
    }

    public init(_ patterns: [String]) throws {
        self.patterns = patterns
        expressions = try patterns.map { pattern in
            do {
                return try NSRegularExpression(pattern: Self.regex(for: pattern))
            } catch {
                throw InvalidPattern(pattern: pattern)
            }
        }
    }

    public var isEmpty: Bool { patterns.isEmpty }

    /// Whether `path` (relative or absolute; a leading slash is ignored) matches any pattern.
    public func matches(_ path: String) -> Bool {
        guard !expressions.isEmpty else { return false }
        let subject = path.hasPrefix("/") ? String(path.dropFirst()) : path
        let range = NSRange(subject.startIndex..., in: subject)
        return expressions.contains { $0.firstMatch(in: subject, range: range) != nil }
    }

    static func regex(for glob: String) -> String {
        var pattern = glob.hasPrefix("/") ? String(glob.dropFirst()) : glob
        if !pattern.contains("/") { pattern = "**/" + pattern }
        var regex = "^"
        var characters = Array(pattern)[...]
        while let character = characters.first {
            characters = characters.dropFirst()
            switch character {
            case "*" where characters.first == "*":
                characters = characters.dropFirst()
                if characters.first == "/" {
                    characters = characters.dropFirst()
                    regex += "(?:.*/)?"          // `**/`: any directories, or none
                } else {
                    regex += ".*"                // `**` at the end: everything below
                }
            case "*": regex += "[^/]*"
            case "?": regex += "[^/]"
            case ".", "^", "$", "+", "(", ")", "[", "]", "{", "}", "|", "\\": regex += "\\" + String(character)
            default: regex += String(character)
            }
        }
        // A pattern naming a directory also matches what lies below it, and the directory
        // itself when written with its trailing slash.
        if regex.hasSuffix("/.*") { regex = String(regex.dropLast(3)) + "(?:/.*)?" } else { regex += "/?" }
        return regex + "$"
    }
}
