/// The strategy a plan names, and the keys each strategy owns. `kind: Plan` names it with
/// `strategy:`; `kind: RecreatePlan` (the first spelling) means `strategy: recreate`.
public enum PlanStrategy: String, CaseIterable, Sendable, Codable {
    case recreate, migrate, replicas

    /// Keys every plan may have.
    static let commonKeys = ["apiVersion", "kind", "strategy", "metadata", "cluster", "target", "window", "timeouts", "verify"]

    /// Keys that only some strategies have.
    static func ownKeys(of strategy: PlanStrategy) -> [String] {
        switch strategy {
        case .recreate: ["acknowledge", "storageClass", "oldVolume", "gitPreflight"]
        case .migrate: ["acknowledge", "storageClass", "oldVolume", "gitPreflight", "copy"]
        case .replicas: ["replicas", "whenDetached"]
        }
    }

    static func keys(of strategy: PlanStrategy) -> [String] { commonKeys + ownKeys(of: strategy) }

    /// Keys of other strategies that `strategy` lacks, each with who owns it.
    static func owners(outside strategy: PlanStrategy) -> [String: String] {
        var owners: [String: [String]] = [:]
        for other in allCases where other != strategy {
            for key in ownKeys(of: other) where !keys(of: strategy).contains(key) { owners[key, default: []].append(other.rawValue) }
        }
        return owners.mapValues { names in
            (names.count == 1 ? "strategy " : "strategies ") + names.joined(separator: " and ") + ", not \(strategy.rawValue)"
        }
    }

    /// `apiVersion`, `kind` and `strategy`, read before anything else: they decide which keys the
    /// rest of the plan may have.
    /// Returns the strategy and where the plan names it (nil for `kind: RecreatePlan` without it).
    static func read(_ root: PlanReader) throws(PlanError) -> (PlanStrategy, PlanReader?) {
        let everyKey = commonKeys + allCases.flatMap(ownKeys).filter { !commonKeys.contains($0) }
        let top = try root.mapping(Array(Set(everyKey)).sorted())
        guard let apiVersionReader = top["apiVersion"], !apiVersionReader.isNull else {
            throw root.fail("required key is missing", hint: "start the plan with apiVersion: repave/v1").at("apiVersion")
        }
        let apiVersion = try apiVersionReader.string()
        guard apiVersion == "repave/v1" else {
            throw apiVersionReader.fail("unsupported apiVersion '\(apiVersion)'", hint: "use apiVersion: repave/v1")
        }
        guard let kindReader = top["kind"], !kindReader.isNull else {
            throw root.fail("required key is missing", hint: "use kind: Plan with strategy: recreate").at("kind")
        }
        let kind = try kindReader.string()
        let strategyReader = top["strategy"].flatMap { $0.isNull ? nil : $0 }
        switch kind {
        case "RecreatePlan":
            if let strategyReader, try strategyReader.string() != PlanStrategy.recreate.rawValue {
                throw strategyReader.fail("kind RecreatePlan is always strategy recreate", hint: "write kind: Plan to name another strategy")
            }
            return (.recreate, strategyReader)
        case "Plan":
            guard let strategyReader else {
                throw root.fail("required key is missing", hint: "name the strategy: \(allCases.map(\.rawValue).joined(separator: ", "))").at("strategy")
            }
            let text = try strategyReader.string()
            guard let strategy = PlanStrategy(rawValue: text) else {
                let suggestion = nearest(text, in: allCases.map(\.rawValue)).map { " (did you mean '\($0)'?)" } ?? ""
                throw strategyReader.fail("unknown strategy '\(text)'\(suggestion)", hint: "use one of: \(allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return (strategy, strategyReader)
        default:
            let suggestion = nearest(kind, in: ["Plan", "RecreatePlan"]).map { " (did you mean '\($0)'?)" } ?? ""
            throw kindReader.fail("unknown kind '\(kind)'\(suggestion)", hint: "use kind: Plan with strategy: recreate")
        }
    }
}

extension PlanStrategy {
    /// Recreate's parser met another strategy's plan: what to say, and what to do (migrate and
    /// replicas have their own parsers; ``PlanFile/load(contentsOf:windowStart:logger:)`` picks them).
    static func notRecreate(_ strategy: PlanStrategy) -> (problem: String, hint: String) {
        ("strategy '\(strategy.rawValue)' is not a recreate plan", "load it with PlanFile.load, which reads every strategy")
    }
}

extension PlanError {
    /// The same error about a key that is missing from the mapping it was raised for.
    func at(_ key: String) -> PlanError {
        PlanError(file: file, line: line, column: column, key: self.key.map { $0 + "." + key } ?? key, problem: problem, hint: hint)
    }
}
