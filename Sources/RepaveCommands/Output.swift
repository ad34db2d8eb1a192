import KubeAPI
import Foundation

/// A command's result: one value, shown as text or (`-o json`) as one JSON document with sorted
/// keys on stdout. The one place the output format is matched.
protocol CommandResult: Encodable {
    /// The text form, lines without a trailing newline.
    var textLines: [String] { get }
}

enum Output {
    /// Text printed with its own line ends, as lines (no empty last one).
    static func lines(_ text: String) -> [String] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        return lines
    }

    static func render(_ result: some CommandResult, _ format: OutputFormat, pretty: Bool = false) {
        switch format {
        case .text:
            for line in result.textLines { print(line) }
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = pretty ? [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted] : [.sortedKeys, .withoutEscapingSlashes]
            // Strings, numbers, lists and maps: encoding cannot fail.
            let data = (try? encoder.encode(result)) ?? Data("{}".utf8)
            print(String(decoding: data, as: UTF8.self))
        }
    }
}

extension JSON {
    /// A document as it was read (a plan, a journal record's payload); `null` when it is not JSON.
    init(document data: Data) { self = (try? JSON.decode(data)) ?? .null }
}
