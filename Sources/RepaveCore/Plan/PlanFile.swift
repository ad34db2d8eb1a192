import Foundation
import Logging

/// Plans as the commands meet them: a file the operator wrote, or the `plan.json` a run stored.
/// Both give the strategy the plan names.
public enum PlanFile {
    /// Reads and validates a plan file (nothing else happens first: a broken plan is reported
    /// before any kubeconfig is loaded or any cluster is touched).
    public static func load(contentsOf path: String, logger: Logger = Logger(label: "repave")) throws(PlanError) -> any Strategy {
        RecreateStrategy(plan: try RecreatePlan.load(contentsOf: path, logger: logger))
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
        default:
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "strategy '\(object["strategy"] ?? "none")' is not one this repave runs"))
        }
    }
}
