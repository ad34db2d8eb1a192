import Foundation
import KubeAPI
import Logging

/// Plans as the commands meet them: a file the operator wrote, or the `plan.json` a run stored.
/// Both give the strategy the plan names.
public enum PlanFile {
    /// Reads and validates a plan file (nothing else happens first: a broken plan is reported
    /// before any kubeconfig is loaded or any cluster is touched).
    /// - Parameter windowStart: moves the plan's window to start then (`repave run --window-start`).
    public static func load(contentsOf path: String, windowStart: Date? = nil, logger: Logger = Logger(label: "repave")) throws(PlanError) -> any Strategy {
        try PlanSections.load(contentsOf: path, logger: logger) { data, file throws(PlanError) in try parse(data, file: file, windowStart: windowStart) }
    }

    /// The strategy a plan's text names, parsed by that strategy's plan.
    public static func parse(_ data: Data, file: String, windowStart: Date? = nil) throws(PlanError) -> any Strategy {
        let (strategy, _) = try PlanStrategy.read(try PlanReader.parse(data, file: file))
        func moved(_ window: PlanWindow?) -> PlanWindow? {
            windowStart.map { PlanWindow(start: $0, duration: window?.duration ?? PlanDuration(minutes: 45)) } ?? window
        }
        switch strategy {
        case .replicas:
            var plan = try ReplicasPlan.parse(data, file: file)
            plan.window = moved(plan.window)
            return ReplicasStrategy(plan: plan)
        case .migrate:
            var plan = try MigratePlan.parse(data, file: file)
            plan.window = moved(plan.window)
            return MigrateStrategy(plan: plan)
        case .recreate:
            var plan = try RecreatePlan.parse(data, file: file)
            plan.window = moved(plan.window)
            return RecreateStrategy(plan: plan)
        }
    }

    /// A run's stored plan: the current form, or the first one (`kind: RecreatePlan`, no
    /// `strategy`), which means recreate.
    public static func stored(_ data: Data) throws -> any Strategy {
        guard var object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "not a JSON object"))
        }
        if object["kind"] as? String == "RecreatePlan", object["strategy"] == nil {
            object["kind"] = "Plan"
            object["strategy"] = PlanStrategy.recreate.rawValue
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let normalised = try JSONSerialization.data(withJSONObject: object)
        switch object["strategy"] as? String {
        case PlanStrategy.recreate.rawValue?: return RecreateStrategy(plan: try decoder.decode(RecreatePlan.self, from: normalised))
        case PlanStrategy.replicas.rawValue?: return ReplicasStrategy(plan: try decoder.decode(ReplicasPlan.self, from: normalised))
        case PlanStrategy.migrate.rawValue?: return MigrateStrategy(plan: try decoder.decode(MigratePlan.self, from: normalised))
        default:
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "strategy '\(object["strategy"] ?? "none")' is not one this repave runs"))
        }
    }
}
