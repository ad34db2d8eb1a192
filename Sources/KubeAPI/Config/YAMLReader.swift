import Yams

/// Typed reads from a composed YAML tree that fail with the file, line, column and key path.
struct YAMLReader {
    let file: String
    let node: Yams.Node
    let path: String

    static func parse(_ text: String, file: String) throws(KubeconfigError) -> YAMLReader? {
        if let (line, column) = YAMLAliasLimit.firstExcess(in: text) {
            throw KubeconfigError(file: file, line: line, column: column,
                                  problem: "more than \(YAMLAliasLimit.maximum) YAML aliases (a '*' after a space, bracket, comma or colon may start one)",
                                  hint: "kubeconfigs need no aliases: write the values out")
        }
        let root: Yams.Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            var line: Int?, column: Int?
            if case .scanner(_, _, let mark, _) = error { line = mark.line; column = mark.column }
            if case .parser(_, _, let mark, _) = error { line = mark.line; column = mark.column }
            throw KubeconfigError(file: file, line: line, column: column, problem: "not valid YAML: \(error)")
        } catch {
            throw KubeconfigError(file: file, problem: "not valid YAML: \(error)")
        }
        return root.map { YAMLReader(file: file, node: $0, path: "") }
    }

    func fail(_ problem: String, hint: String? = nil) -> KubeconfigError {
        KubeconfigError(file: file, line: node.mark?.line, column: node.mark?.column,
                        key: path.isEmpty ? nil : path, problem: problem, hint: hint)
    }

    private func child(_ node: Yams.Node, _ component: String) -> YAMLReader {
        YAMLReader(file: file, node: node, path: path.isEmpty ? component : (component.hasPrefix("[") ? path + component : path + "." + component))
    }

    var isNull: Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    /// The value of `key` in this mapping, nil when absent or null.
    func optional(_ key: String) throws(KubeconfigError) -> YAMLReader? {
        if isNull { return nil }
        guard let mapping = node.mapping else { throw fail("expected a mapping") }
        for (keyNode, value) in mapping where keyNode.string == key {
            let reader = child(value, key)
            return reader.isNull ? nil : reader
        }
        return nil
    }

    /// Plain scalars that YAML 1.1 (and so kubectl's decoder) reads as booleans, not strings.
    static let yaml11Booleans: Set<String> = [
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE",
        "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
    ]

    func string(_ key: String) throws(KubeconfigError) -> String? {
        guard let value = try optional(key) else { return nil }
        guard case .scalar(let scalar) = value.node else { throw value.fail("expected a string") }
        // kubectl refuses `name: no` or `namespace: 1234` (a boolean or number where a string
        // belongs); reading them as strings here would make repave and kubectl disagree.
        if scalar.style == .plain, Self.yaml11Booleans.contains(scalar.string) || Int(scalar.string) != nil {
            // Never echo a credential's value into an error.
            let secret = ["token", "password", "client-key-data", "client-certificate-data", "certificate-authority-data"].contains(key)
            let shown = secret ? "value" : "'\(scalar.string)'"
            throw value.fail("expected a string, found an unquoted \(shown), which YAML reads as a boolean or number",
                             hint: secret ? "quote the value" : "quote it: \"\(scalar.string)\"")
        }
        return scalar.string
    }

    func bool(_ key: String) throws(KubeconfigError) -> Bool? {
        guard let value = try optional(key) else { return nil }
        guard case .scalar(let scalar) = value.node else { throw value.fail("expected true or false") }
        switch scalar.string.lowercased() {
        case "true": return true
        case "false": return false
        default: throw value.fail("expected true or false, found '\(scalar.string)'")
        }
    }

    func sequence(_ key: String) throws(KubeconfigError) -> [YAMLReader] {
        guard let value = try optional(key) else { return [] }
        guard let sequence = value.node.sequence else { throw value.fail("expected a list") }
        return sequence.enumerated().map { value.child($0.element, "[\($0.offset)]") }
    }

    func strings(_ key: String) throws(KubeconfigError) -> [String] {
        var result: [String] = []
        for item in try sequence(key) {
            guard case .scalar(let scalar) = item.node else { throw item.fail("expected a string") }
            result.append(scalar.string)
        }
        return result
    }

    /// Renames the last path component (`users[0]` → `users[jeda]`) once the name is known.
    func named(_ name: String) -> YAMLReader {
        guard let bracket = path.lastIndex(of: "[") else { return self }
        return YAMLReader(file: file, node: node, path: path[..<bracket] + "[\(name)]")
    }
}
