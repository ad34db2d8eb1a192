import Blocking
import Foundation
import RepaveCore

/// The one question `run` asks before its first change: the operator types the target's
/// `namespace/name`. Only on a terminal; without one, `--yes` is required (refused otherwise).
public enum Confirmation {
    public static var isInteractive: Bool { isatty(STDIN_FILENO) == 1 && isatty(STDERR_FILENO) == 1 }

    /// Shows the steps and the point of no return on stderr, then reads one line from stdin on a
    /// thread of its own: an operator pausing at the prompt must not hold a thread of the
    /// cooperative pool the Lease renewal needs.
    /// - Parameter gone: what is lost past the point of no return.
    public static func askTypedName(_ expected: String, steps: [(id: String, summary: String)], pointOfNoReturn: String?,
                                    gone: String = "the claim's data") async -> Bool {
        var text = "\nRepave will now change the cluster:\n"
        for step in steps {
            let marker = step.id == pointOfNoReturn ? "  <- point of no return: \(gone) is gone after this" : ""
            text += "  \(step.id): \(step.summary)\(marker)\n"
        }
        text += "Type \(expected) to continue: "
        FileHandle.standardError.write(Data(text.utf8))
        let answer = await offPool("confirmation") { () -> String? in readLine(strippingNewline: true) }
        guard let answer else { return false }
        return answer.trimmingCharacters(in: .whitespaces) == expected
    }
}
