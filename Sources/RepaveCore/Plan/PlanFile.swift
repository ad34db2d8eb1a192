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
        try read(path, logger: logger) { data throws(PlanError) in try parse(data, file: path, windowStart: windowStart) }
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
        case .recreate, .migrate:
            var plan = try RecreatePlan.parse(data, file: file)
            plan.window = moved(plan.window)
            return RecreateStrategy(plan: plan)
        }
    }

    /// A plan file's bytes, given to `parse`. A file over 1 MiB is refused from its size, unread.
    /// A plan that others may write is warned about on `logger` (after it parsed): whoever can
    /// edit it chooses what is changed.
    static func read<Plan>(_ path: String, logger: Logger, _ parse: (Data) throws(PlanError) -> Plan) throws(PlanError) -> Plan {
        let data: Data
        let mode: mode_t
        do {
            (data, mode) = try SmallFile.read(path, limit: PlanReader.maxBytes)
        } catch {
            switch error {
            case .tooLarge(let size):
                throw PlanError(file: path, problem: "the file is \(size.map { "\($0) bytes" } ?? "over \(PlanReader.maxBytes) bytes"); a plan is at most \(PlanReader.maxBytes) bytes (1 MiB)",
                                hint: "check that this is a plan file")
            case .missing:
                throw PlanError(file: path, problem: "no such file", hint: "give the path of a plan file, e.g. plans/devpod-home.yaml")
            case .unreadable(let reason):
                throw PlanError(file: path, problem: "cannot read the file: \(reason)")
            }
        }
        let plan = try parse(data)
        // Plans hold no secrets and live in git checkouts (0644), so only writers are warned about.
        if let exposure = SmallFile.exposure(of: mode, readable: false) {
            logger.warning("\(path) is \(exposure) (mode \(String(format: "%04o", mode & 0o7777))); anyone who can edit a plan chooses what repave deletes: chmod go-w \(path)")
        }
        return plan
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
        default:
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "strategy '\(object["strategy"] ?? "none")' is not one this repave runs"))
        }
    }
}
