import Foundation
import enum KubeAPI.YAMLAliasLimit
import Yams

/// Strict typed reads from a plan's YAML tree: unknown and duplicate keys and wrong types are
/// errors that carry file, line, column and key path.
///
/// Alias bombs cost little: the composer shares aliased nodes instead of expanding them, the
/// reader only descends into the shapes a plan has, so a bomb fails at its first unexpected node
/// (or as an unknown key), and the one costly case, aliases as mapping keys, is bounded by
/// ``YAMLAliasLimit`` before composing; files over 1 MiB are refused before parsing.
struct PlanReader {
    let file: String
    let node: Node
    let path: String

    /// Plans are small; anything bigger is not a plan (and is refused before parsing).
    static let maxBytes = 1 << 20

    static func parse(_ data: Data, file: String) throws(PlanError) -> PlanReader {
        guard data.count <= maxBytes else {
            throw PlanError(file: file, problem: "the file is \(data.count) bytes; a plan is at most \(maxBytes) bytes", hint: "check that this is a plan file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw PlanError(file: file, problem: "the file is not UTF-8 text")
        }
        if let (line, column) = YAMLAliasLimit.firstExcess(in: text) {
            throw PlanError(file: file, line: line, column: column,
                            problem: "more than \(YAMLAliasLimit.maximum) YAML aliases (a '*' after a space, bracket, comma or colon may start one)",
                            hint: "write the values out instead of aliasing them; quote-free globs such as **/x must be quoted anyway")
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let YamlError.duplicatedKeysInMapping(duplicates, context) {
            // Yams refuses duplicate keys itself, marking the mapping that holds them.
            throw PlanError(file: file, line: context.mark.line, column: context.mark.column, key: duplicates.first,
                            problem: "duplicate key (set here and again later in the same mapping)")
        } catch let error as YamlError {
            throw PlanError(file: file, line: error.mark?.line, column: error.mark?.column, problem: "not valid YAML: \(error.problem)")
        } catch {
            throw PlanError(file: file, problem: "not valid YAML: \(error)")
        }
        guard let root else { throw PlanError(file: file, problem: "the file is empty", hint: "start from plans/devpod-home.yaml") }
        return PlanReader(file: file, node: root, path: "")
    }

    func fail(_ problem: String, hint: String? = nil) -> PlanError {
        PlanError(file: file, line: node.mark?.line, column: node.mark?.column, key: path.isEmpty ? nil : path, problem: problem, hint: hint)
    }

    private func child(_ node: Node, _ component: String) -> PlanReader {
        PlanReader(file: file, node: node, path: path.isEmpty ? component : component.hasPrefix("[") ? path + component : path + "." + component)
    }

    /// The mapping's entries, refusing keys outside `allowed` (with the nearest valid key) and
    /// duplicates.
    /// - Parameter elsewhere: keys valid in another kind of plan, each with its owner, named in
    ///   the error instead of a suggestion ("belongs to strategy migrate").
    func mapping(_ allowed: [String], elsewhere: [String: String] = [:]) throws(PlanError) -> [String: PlanReader] {
        guard let mapping = node.mapping else { throw fail("expected a mapping with keys \(allowed.joined(separator: ", "))") }
        var entries: [String: PlanReader] = [:]
        for (keyNode, value) in mapping {
            let keyReader = PlanReader(file: file, node: keyNode, path: path)
            guard case .scalar(let scalar) = keyNode else { throw keyReader.fail("keys must be plain strings") }
            let key = scalar.string
            let located = PlanReader(file: file, node: keyNode, path: path.isEmpty ? key : path + "." + key)
            if !allowed.contains(key), let owner = elsewhere[key] {
                throw located.fail("this key belongs to \(owner)", hint: "remove it, or change the plan's strategy")
            }
            guard allowed.contains(key) else {
                let suggestion = nearest(key, in: allowed).map { " (did you mean '\($0)'?)" } ?? ""
                throw located.fail("unknown key\(suggestion)", hint: "valid keys here: \(allowed.joined(separator: ", "))")
            }
            guard entries[key] == nil else { throw located.fail("duplicate key") }
            entries[key] = child(value, key)
        }
        return entries
    }

    var isNull: Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    func string() throws(PlanError) -> String {
        guard case .scalar(let scalar) = node, !isNull else { throw fail("expected a string") }
        if scalar.style == .plain, ["yes", "no", "on", "off", "y", "n", "true", "false"].contains(scalar.string.lowercased()) {
            throw fail("expected a string, found the unquoted '\(scalar.string)', which YAML reads as a boolean", hint: "quote it: \"\(scalar.string)\"")
        }
        return scalar.string
    }

    func bool() throws(PlanError) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { throw fail("expected true or false") }
        switch scalar.string {
        case "true": return true
        case "false": return false
        default: throw fail("expected true or false, found '\(scalar.string)'")
        }
    }

    func int(in range: ClosedRange<Int>) throws(PlanError) -> Int {
        guard case .scalar(let scalar) = node, scalar.style == .plain, let value = Int(scalar.string) else {
            throw fail("expected a whole number")
        }
        guard range.contains(value) else { throw fail("\(value) is out of range \(range.lowerBound)…\(range.upperBound)") }
        return value
    }

    func list() throws(PlanError) -> [PlanReader] {
        guard let sequence = node.sequence else { throw fail("expected a list") }
        return sequence.enumerated().map { child($0.element, "[\($0.offset)]") }
    }

    func strings() throws(PlanError) -> [String] {
        var result: [String] = []
        for item in try list() { result.append(try item.string()) }
        return result
    }

    /// A mapping of string keys to string values (StorageClass parameters, a node selector).
    func stringMap(of what: String = "StorageClass parameters") throws(PlanError) -> [String: String] {
        guard let mapping = node.mapping else { throw fail("expected a mapping of strings") }
        var result: [String: String] = [:]
        for (keyNode, value) in mapping {
            guard case .scalar(let key) = keyNode else { throw fail("keys must be plain strings") }
            let reader = child(value, key.string)
            guard result[key.string] == nil else { throw PlanReader(file: file, node: keyNode, path: reader.path).fail("duplicate key") }
            guard case .scalar(let scalar) = value, !reader.isNull else { throw reader.fail("expected a string value (an empty or null parameter is not allowed)") }
            if scalar.style == .plain && (Int(scalar.string) != nil || ["true", "false"].contains(scalar.string)) {
                throw reader.fail("\(what) are strings; '\(scalar.string)' must be quoted", hint: "write \(key.string): \"\(scalar.string)\"")
            }
            result[key.string] = scalar.string
        }
        return result
    }
}

/// The closest candidate by edit distance, if close enough to be a likely typo.
func nearest(_ word: String, in candidates: [String]) -> String? {
    let limit = max(2, word.count / 3)
    // The length difference bounds the distance from below, so candidates it rules out are
    // skipped: a megabyte-long unknown key costs no megabyte-squared edit distance.
    let scored = candidates.filter { abs($0.count - word.count) <= limit }.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
    guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
    return best.1 <= limit ? best.0 : nil
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    var previous = Array(0...b.count)
    for (i, x) in a.enumerated() {
        var current = [i + 1]
        for (j, y) in b.enumerated() {
            current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1)))
        }
        previous = current
    }
    return previous[b.count]
}

extension YamlError {
    var mark: Mark? {
        switch self {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): mark
        default: nil
        }
    }

    var problem: String {
        switch self {
        case .scanner(_, let problem, _, _), .parser(_, let problem, _, _), .composer(_, let problem, _, _): problem
        default: "\(self)"
        }
    }
}
