import Foundation
import KubeAPI
import Logging

extension RecreatePlan {
    /// Reads and validates a plan file. Nothing else happens first: a broken plan is reported
    /// before any kubeconfig is loaded or any cluster is touched. A file over 1 MiB is refused
    /// from its size, unread. A plan that others may write is warned about on `logger`: whoever
    /// can edit it chooses what is deleted.
    public static func load(contentsOf path: String, logger: Logger = Logger(label: "repave")) throws(PlanError) -> RecreatePlan {
        try PlanSections.load(contentsOf: path, logger: logger, parse: parse)
    }

    public static func parse(_ data: Data, file: String) throws(PlanError) -> RecreatePlan {
        let (_, top, sections) = try PlanSections.read(data, file: file, as: .recreate, refusal: PlanStrategy.notRecreate)
        let oldVolume = OldVolumePolicy(rawValue: try PlanSections.oneOf(top["oldVolume"], OldVolumePolicy.allCases.map(\.rawValue), default: "retain-until-verified"))!
        var timeouts = Timeouts()
        try PlanSections.durations(top["timeouts"], into: &timeouts, PlanSections.claimTimeouts())
        return RecreatePlan(
            name: sections.name, context: sections.context, target: sections.target, acknowledge: sections.acknowledge,
            storageClass: sections.storageClass, oldVolume: oldVolume, gitPreflight: sections.gitPreflight,
            window: sections.window, timeouts: timeouts, verify: sections.verify)
    }
}

/// The waits of every plan that replaces a claim.
protocol ClaimTimeouts {
    var scaleDown: PlanDuration { get set }
    var claimDeletion: PlanDuration { get set }
    var bind: PlanDuration { get set }
    var rollout: PlanDuration { get set }
    var verify: PlanDuration { get set }
}

extension RecreatePlan.Timeouts: ClaimTimeouts {}

/// The parts every plan that replaces a claim (recreate, migrate) shares, read the same way for
/// each, and the typed reads both use.
struct PlanSections {
    typealias Workload = RecreatePlan.Workload
    typealias Reconciler = RecreatePlan.Reconciler
    typealias GitPreflight = RecreatePlan.GitPreflight
    typealias Target = RecreatePlan.Target
    typealias StorageClassSpec = RecreatePlan.StorageClassSpec
    typealias LonghornCheck = RecreatePlan.LonghornCheck
    typealias Window = PlanWindow

    var name: String
    var context: String?
    var target: Target
    var acknowledge: [Reconciler]
    var storageClass: StorageClassSpec
    var gitPreflight: GitPreflight?
    var window: Window?
    var verify: LonghornCheck

    /// The `timeouts` keys of recreate, which migrate has too.
    static func claimTimeouts<T: ClaimTimeouts>() -> [(String, WritableKeyPath<T, PlanDuration>)] {
        [("scaleDown", \.scaleDown), ("claimDeletion", \.claimDeletion), ("bind", \.bind), ("rollout", \.rollout), ("verify", \.verify)]
    }

    /// Reads and validates a plan file (see ``RecreatePlan/load(contentsOf:logger:)``).
    static func load<Plan>(contentsOf path: String, logger: Logger, parse: (Data, String) throws(PlanError) -> Plan) throws(PlanError) -> Plan {
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
        let plan = try parse(data, path)
        // Plans hold no secrets and live in git checkouts (0644), so only writers are warned about.
        if let exposure = SmallFile.exposure(of: mode, readable: false) {
            logger.warning("\(path) is \(exposure) (mode \(String(format: "%04o", mode & 0o7777))); anyone who can edit a plan chooses what repave deletes: chmod go-w \(path)")
        }
        return plan
    }

    /// Sorted keys, no insignificant whitespace, dates in RFC 3339 UTC.
    static func canonicalJSON(_ plan: some Encodable) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        // Every field of a plan is a string, number, bool, list or map: encoding cannot fail.
        return (try? encoder.encode(plan)) ?? Data()
    }

    /// Reads `keys` of the `timeouts` mapping into `value`; absent keys keep their defaults.
    static func durations<T>(_ reader: PlanReader?, into value: inout T, _ keys: [(String, WritableKeyPath<T, PlanDuration>)]) throws(PlanError) {
        guard let reader, !reader.isNull else { return }
        let fields = try reader.mapping(keys.map(\.0))
        for (key, path) in keys {
            if let field = fields[key] { value[keyPath: path] = try duration(field) }
        }
    }

    /// The plan in `data`, once it names `strategy` (else `refusal` says what to say where it
    /// names another): its root, its top-level keys as `strategy` has them, and the sections.
    static func read(
        _ data: Data, file: String, as strategy: PlanStrategy, refusal: (PlanStrategy) -> (problem: String, hint: String)
    ) throws(PlanError) -> (root: PlanReader, top: [String: PlanReader], sections: PlanSections) {
        let root = try PlanReader.parse(data, file: file)
        let (named, at) = try PlanStrategy.read(root)
        guard named == strategy else {
            let (problem, hint) = refusal(named)
            throw (at ?? root).fail(problem, hint: hint)
        }
        let top = try root.mapping(PlanStrategy.keys(of: strategy), elsewhere: PlanStrategy.owners(outside: strategy))
        return (root, top, try read(top, root: root))
    }

    static func read(_ top: [String: PlanReader], root: PlanReader) throws(PlanError) -> PlanSections {
        let name = try planName(top, in: root)
        let context = try Self.context(top)

        let targetReader = try required(top, "target", in: root)
        let targetMap = try targetReader.mapping(["namespace", "claim", "workloads"])
        var workloads: [Workload] = []
        for item in try targetMap["workloads"]?.list() ?? [] {
            let fields = try item.mapping(["kind", "name"])
            let kindReader = try required(fields, "kind", in: item)
            let kindText = try kindReader.string()
            guard let kind = Workload.Kind(rawValue: kindText) else {
                let suggestion = nearest(kindText, in: Workload.Kind.allCases.map(\.rawValue)).map { " (did you mean '\($0)'?)" } ?? ""
                throw kindReader.fail("unsupported workload kind '\(kindText)'\(suggestion)", hint: "use Deployment or StatefulSet")
            }
            workloads.append(Workload(kind: kind, name: try dnsSubdomain(try required(fields, "name", in: item))))
        }
        let target = Target(
            namespace: try dnsLabel(try required(targetMap, "namespace", in: targetReader)),
            claim: try dnsSubdomain(try required(targetMap, "claim", in: targetReader)),
            workloads: workloads)

        var acknowledge: [Reconciler] = []
        for item in try top["acknowledge"]?.list() ?? [] {
            let text = try item.string()
            guard let reconciler = Reconciler(rawValue: text) else {
                let suggestion = nearest(text, in: Reconciler.allCases.map(\.rawValue)).map { " (did you mean '\($0)'?)" } ?? ""
                throw item.fail("unknown reconciler '\(text)'\(suggestion)", hint: "acknowledge any of: \(Reconciler.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            acknowledge.append(reconciler)
        }

        let classReader = try required(top, "storageClass", in: root)
        let classMap = try classReader.mapping(["name", "ensure", "provisioner", "parameters", "reclaimPolicy", "volumeBindingMode", "allowVolumeExpansion"])
        let parameters = try classMap["parameters"]?.stringMap() ?? [:]
        let storageClass = StorageClassSpec(
            name: try dnsSubdomain(try required(classMap, "name", in: classReader)),
            ensure: try classMap["ensure"]?.bool() ?? true,
            provisioner: try required(classMap, "provisioner", in: classReader).string(),
            parameters: parameters,
            reclaimPolicy: try oneOf(classMap["reclaimPolicy"], ["Delete", "Retain"], default: "Delete"),
            volumeBindingMode: try oneOf(classMap["volumeBindingMode"], ["Immediate", "WaitForFirstConsumer"], default: "Immediate"),
            allowVolumeExpansion: try classMap["allowVolumeExpansion"]?.bool() ?? true)

        var gitPreflight: GitPreflight?
        if let reader = top["gitPreflight"], !reader.isNull {
            let fields = try reader.mapping(["paths", "report", "maxReportAge", "require", "ignore"])
            var rules: [GitRule] = []
            for item in try fields["require"]?.list() ?? [] {
                let text = try item.string()
                guard let rule = GitRule(rawValue: text) else {
                    let suggestion = nearest(text, in: GitRule.allCases.map(\.rawValue)).map { " (did you mean '\($0)'?)" } ?? ""
                    throw item.fail("unknown rule '\(text)'\(suggestion)", hint: "rules: \(GitRule.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                rules.append(rule)
            }
            let ignore = try fields["ignore"]?.strings() ?? []
            do {
                _ = try GlobSet(ignore)
            } catch {
                throw (fields["ignore"] ?? reader).fail("\(error)")
            }
            let preflight = GitPreflight(
                paths: try fields["paths"]?.strings() ?? [],
                report: try fields["report"]?.string(),
                maxReportAge: try fields["maxReportAge"].map(duration) ?? PlanDuration(minutes: 30),
                require: rules.isEmpty ? GitRule.defaults : rules,
                ignore: ignore)
            if preflight.paths.isEmpty && preflight.report == nil {
                throw reader.fail("gitPreflight needs paths to scan or a report to check", hint: "add paths: [/home/coder] or report: git-report.json")
            }
            gitPreflight = preflight
        }

        let window = try Self.window(top)
        let verify = try longhornCheck(top, replicas: Int(parameters["numberOfReplicas"] ?? "") ?? 3)
        if let value = parameters["numberOfReplicas"], !(Int(value).map { (1...10).contains($0) } ?? false) {
            throw classMap["parameters"]!.fail("numberOfReplicas '\(value)' is not a whole number from 1 to 10")
        }

        return PlanSections(
            name: name, context: context, target: target, acknowledge: acknowledge, storageClass: storageClass,
            gitPreflight: gitPreflight, window: window, verify: verify)
    }

    // MARK: what every strategy's plan has (replicas too, which replaces no claim)

    /// `metadata.name`.
    static func planName(_ top: [String: PlanReader], in root: PlanReader) throws(PlanError) -> String {
        let metadataReader = try required(top, "metadata", in: root)
        let metadata = try metadataReader.mapping(["name"])
        return try dnsLabel(try required(metadata, "name", in: metadataReader))
    }

    /// `cluster.context`.
    static func context(_ top: [String: PlanReader]) throws(PlanError) -> String? {
        guard let cluster = top["cluster"], !cluster.isNull else { return nil }
        return try cluster.mapping(["context"])["context"]?.string()
    }

    /// `window: {start, duration}`.
    static func window(_ top: [String: PlanReader]) throws(PlanError) -> PlanWindow? {
        guard let reader = top["window"], !reader.isNull else { return nil }
        let fields = try reader.mapping(["start", "duration"])
        let startReader = try required(fields, "start", in: reader)
        let startText = try startReader.string()
        guard let start = try? Date(startText, strategy: .iso8601) else {
            throw startReader.fail("'\(startText)' is not an RFC 3339 UTC timestamp", hint: "write it like 2026-11-28T02:00:00Z")
        }
        return PlanWindow(start: start, duration: try duration(try required(fields, "duration", in: reader)))
    }

    /// `verify.longhorn`, its replica count defaulting to `replicas`.
    static func longhornCheck(_ top: [String: PlanReader], replicas: Int) throws(PlanError) -> LonghornCheck {
        var verify = LonghornCheck(replicas: replicas)
        guard let reader = top["verify"], !reader.isNull else { return verify }
        let outer = try reader.mapping(["longhorn"])
        if let longhorn = outer["longhorn"], !longhorn.isNull {
            let fields = try longhorn.mapping(["namespace", "replicas", "robustness"])
            if let value = fields["namespace"] { verify.namespace = try dnsLabel(value) }
            if let value = fields["replicas"] { verify.replicas = try value.int(in: 1...10) }
            verify.robustness = try oneOf(fields["robustness"], ["healthy", "degraded"], default: "healthy")
        }
        return verify
    }

    static func required(_ fields: [String: PlanReader], _ key: String, in parent: PlanReader, hint: String? = nil) throws(PlanError) -> PlanReader {
        guard let value = fields[key], !value.isNull else {
            throw PlanError(file: parent.file, line: parent.node.mark?.line, column: parent.node.mark?.column,
                            key: parent.path.isEmpty ? key : parent.path + "." + key, problem: "required key is missing", hint: hint)
        }
        return value
    }

    static func oneOf(_ reader: PlanReader?, _ allowed: [String], default value: String) throws(PlanError) -> String {
        guard let reader, !reader.isNull else { return value }
        let text = try reader.string()
        guard allowed.contains(text) else {
            let suggestion = nearest(text, in: allowed).map { " (did you mean '\($0)'?)" } ?? ""
            throw reader.fail("'\(text)' is not allowed\(suggestion)", hint: "use one of: \(allowed.joined(separator: ", "))")
        }
        return text
    }

    static func duration(_ reader: PlanReader) throws(PlanError) -> PlanDuration {
        let text = try reader.string()
        guard let value = PlanDuration(parsing: text), value.milliseconds > 0 else {
            throw reader.fail("'\(text)' is not a duration", hint: "write durations like 90s, 5m or 1h30m (whole milliseconds, at most 168h)")
        }
        return value
    }

    /// DNS-1123 label: namespaces and plan names.
    static func dnsLabel(_ reader: PlanReader) throws(PlanError) -> String {
        let text = try reader.string()
        guard text.count <= 63, isDNSLabel(text) else {
            throw reader.fail("'\(text)' is not a valid name", hint: "use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit")
        }
        return text
    }

    /// DNS-1123 subdomain: claims, workloads, storage classes.
    static func dnsSubdomain(_ reader: PlanReader) throws(PlanError) -> String {
        let text = try reader.string()
        guard text.count <= 253, text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy({ isDNSLabel(String($0)) }) else {
            throw reader.fail("'\(text)' is not a valid object name", hint: "use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit")
        }
        return text
    }

    static func isDNSLabel(_ text: String) -> Bool {
        guard let first = text.first, let last = text.last, text.count <= 63 else { return false }
        let allowed = text.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" }
        return allowed && first != "-" && last != "-"
    }
}
