import Foundation

/// Path globs as a plan's `ignore` list writes them: `**` spans directories, `*` and `?` stay
/// within one, a pattern without a slash matches a name at any depth (`*.log`). A directory is
/// given with a trailing slash, so `**/node_modules/**` matches `web/node_modules/` itself.
///
/// Patterns match paths relative to the scanned root (or the repository); only a pattern that
/// starts with `/` matches absolute paths. (Matching `**/tmp/**` against absolute paths would
/// exclude everything under a root that happens to live in /tmp.)
public struct GlobSet: Sendable {
    public let patterns: [String]
    private let expressions: [(regex: NSRegularExpression, absolute: Bool)]

    public struct InvalidPattern: Error, CustomStringConvertible {
        public let pattern: String
        public var description: String { "invalid glob '\(pattern)'" }
    }

    public init(_ patterns: [String]) throws {
        self.patterns = patterns
        expressions = try patterns.map { pattern in
            do {
                return (try NSRegularExpression(pattern: Self.regex(for: pattern)), pattern.hasPrefix("/"))
            } catch {
                throw InvalidPattern(pattern: pattern)
            }
        }
    }

    public var isEmpty: Bool { patterns.isEmpty }

    /// Whether a path matches: `relative` (to the scanned root or the repository) against the
    /// relative patterns, `absolute` against the patterns that start with `/`.
    public func matches(relative: String, absolute: String? = nil) -> Bool {
        guard !expressions.isEmpty else { return false }
        return expressions.contains { expression in
            let subject = expression.absolute ? (absolute.map { String($0.drop { $0 == "/" }) } ?? "") : relative
            guard !subject.isEmpty else { return false }
            return expression.regex.firstMatch(in: subject, range: NSRange(subject.startIndex..., in: subject)) != nil
        }
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
