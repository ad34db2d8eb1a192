import Foundation

/// The one question `run` asks before its first change: the operator types the target's
/// `namespace/claim`. Only on a terminal; without one, `--yes` is required (refused otherwise).
public enum Confirmation {
    public static var isInteractive: Bool { isatty(STDIN_FILENO) == 1 && isatty(STDERR_FILENO) == 1 }

    /// Shows the steps and the point of no return on stderr, then reads one line from stdin.
    public static func askTypedName(_ expected: String, steps: [(id: String, summary: String)], pointOfNoReturn: String?) -> Bool {
        var text = "\nRepave will now change the cluster:\n"
        for step in steps {
            let marker = step.id == pointOfNoReturn ? "  <- point of no return: the claim's data is gone after this" : ""
            text += "  \(step.id): \(step.summary)\(marker)\n"
        }
        text += "Type \(expected) to continue: "
        FileHandle.standardError.write(Data(text.utf8))
        guard let answer = readLine(strippingNewline: true) else { return false }
        return answer.trimmingCharacters(in: .whitespaces) == expected
    }
}
