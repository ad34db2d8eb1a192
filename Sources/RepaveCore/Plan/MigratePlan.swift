import Foundation
import Logging

/// A migrate plan (`apiVersion: repave/v1`, `kind: Plan`, `strategy: migrate`) parsed and
/// validated, with every default explicit: the claim's data is copied by rsync pods onto a
/// staging claim of the new class, verified, and the claim's name moved onto it. It shares
/// recreate's sections (``PlanSections``) and adds `copy` and the copy timeouts. Encodes to the
/// canonical JSON whose SHA-256 is the plan digest.
public struct MigratePlan: Sendable, Codable, Equatable {
    public typealias Target = RecreatePlan.Target
    public typealias Reconciler = RecreatePlan.Reconciler
    public typealias StorageClassSpec = RecreatePlan.StorageClassSpec
    public typealias GitPreflight = RecreatePlan.GitPreflight
    public typealias LonghornCheck = RecreatePlan.LonghornCheck
    public typealias Window = PlanWindow

    /// How the copy pods run. Repave chooses rsync's flags; `extraArgs` may add options, not
    /// change what is copied or kept.
    public struct Copy: Sendable, Codable, Equatable {
        public enum Verification: String, Sendable, Codable, CaseIterable {
            /// `verify-copy` compares every file's content (rsync `-c`) and metadata.
            case checksum
            /// No verify pass: the copy's own exit code is all the proof.
            case none
        }

        public struct Toleration: Sendable, Codable, Equatable {
            public var key: String?
            public var `operator`: String
            public var value: String?
            public var effect: String?
            public var tolerationSeconds: Int?
        }

        /// Quantities as Kubernetes writes them (`500m`, `1Gi`), per resource name.
        public struct Resources: Sendable, Codable, Equatable {
            public var requests: [String: String]
            public var limits: [String: String]

            public var isEmpty: Bool { requests.isEmpty && limits.isEmpty }
        }

        /// Must provide `/bin/sh`, `tr` and rsync ≥ 3.1 with ACL and xattr support.
        public var image: String
        /// Copy once while the workload runs, so the final copy under the window is a delta.
        public var warm: Bool
        public var verify: Verification
        public var imagePullPolicy: String
        public var nodeSelector: [String: String]
        public var tolerations: [Toleration]
        public var resources: Resources
        /// Appended to rsync's options, shell-quoted, one option per item; only the options
        /// ``refusal(of:)`` lets through (`MigratePlan+ExtraArgs.swift`).
        public var extraArgs: [String]

        public static let pullPolicies = ["IfNotPresent", "Always", "Never"]
    }

    /// Migrate keeps the old volume until `repave finalize`: it has no other policy.
    public enum OldVolumePolicy: String, Sendable, Codable, CaseIterable {
        case retainUntilVerified = "retain-until-verified"
    }

    public struct Timeouts: Sendable, Codable, Equatable, ClaimTimeouts {
        public var scaleDown = PlanDuration(minutes: 5)
        public var claimDeletion = PlanDuration(minutes: 5)
        public var bind = PlanDuration(minutes: 5)
        public var rollout = PlanDuration(minutes: 10)
        public var verify = PlanDuration(minutes: 10)
        /// The first copy, while the workload runs (outside the window).
        public var warmCopy = PlanDuration(minutes: 6 * 60)
        /// The delta after scale-down.
        public var finalCopy = PlanDuration(minutes: 2 * 60)
        /// The checksum pass.
        public var verifyCopy = PlanDuration(minutes: 2 * 60)

        static func copyKeys() -> [(String, WritableKeyPath<Timeouts, PlanDuration>)] {
            [("warmCopy", \.warmCopy), ("finalCopy", \.finalCopy), ("verifyCopy", \.verifyCopy)]
        }
    }

    public var apiVersion = "repave/v1"
    public var kind = "Plan"
    public var strategy = PlanStrategy.migrate
    public var name: String
    /// kube context; nil means the kubeconfig's current-context.
    public var context: String?
    public var target: Target
    public var acknowledge: [Reconciler]
    public var storageClass: StorageClassSpec
    public var copy: Copy
    public var oldVolume: OldVolumePolicy
    public var gitPreflight: GitPreflight?
    public var window: Window?
    public var timeouts: Timeouts
    public var verify: LonghornCheck

    /// Canonical JSON: sorted keys, no insignificant whitespace, dates in RFC 3339 UTC.
    public func canonicalJSON() -> Data { PlanSections.canonicalJSON(self) }

    /// SHA-256 of the canonical JSON, lowercase hex: comments and formatting do not change it.
    public var digest: String { SHA256.hex(of: canonicalJSON()) }
}

extension MigratePlan {
    /// Reads and validates a plan file, as ``RecreatePlan/load(contentsOf:logger:)`` does.
    public static func load(contentsOf path: String, logger: Logger = Logger(label: "repave")) throws(PlanError) -> MigratePlan {
        try PlanSections.load(contentsOf: path, logger: logger, parse: parse)
    }

    public static func parse(_ data: Data, file: String) throws(PlanError) -> MigratePlan {
        let (root, top, sections) = try PlanSections.read(data, file: file, as: .migrate) { other in
            ("this is a \(other.rawValue) plan, not a migrate plan", "write strategy: migrate")
        }
        let copy = try readCopy(try PlanSections.required(top, "copy", in: root,
                                                          hint: "add copy: {image: IMAGE}, an image with /bin/sh, tr and rsync ≥ 3.1 (ACL and xattr support)"))

        if let reader = top["oldVolume"], !reader.isNull, try reader.string() != OldVolumePolicy.retainUntilVerified.rawValue {
            throw reader.fail("migrate keeps the old volume until 'repave finalize'; '\(try reader.string())' is not allowed",
                              hint: "write oldVolume: retain-until-verified, or leave it out")
        }
        var timeouts = Timeouts()
        try PlanSections.durations(top["timeouts"], into: &timeouts, PlanSections.claimTimeouts() + Timeouts.copyKeys())
        return MigratePlan(
            name: sections.name, context: sections.context, target: sections.target, acknowledge: sections.acknowledge,
            storageClass: sections.storageClass, copy: copy, oldVolume: .retainUntilVerified, gitPreflight: sections.gitPreflight,
            window: sections.window, timeouts: timeouts, verify: sections.verify)
    }

    private static func readCopy(_ reader: PlanReader) throws(PlanError) -> Copy {
        let fields = try reader.mapping(["image", "warm", "verify", "imagePullPolicy", "nodeSelector", "tolerations", "resources", "extraArgs"])
        let imageReader = try PlanSections.required(fields, "image", in: reader,
                                                    hint: "name an image with /bin/sh, tr and rsync ≥ 3.1 (ACL and xattr support), e.g. lab/mover:1 in the lab")
        let image = try imageReader.string()
        guard !image.isEmpty, !image.contains(where: \.isWhitespace) else {
            throw imageReader.fail("'\(image)' is not an image reference", hint: "write it like registry.example/mover:1 or with a digest, @sha256:…")
        }

        var nodeSelector: [String: String] = [:]
        if let selector = fields["nodeSelector"], !selector.isNull {
            nodeSelector = try selector.stringMap(of: "node selector values")
        }

        var tolerations: [Copy.Toleration] = []
        for item in try fields["tolerations"].map({ reader throws(PlanError) in reader.isNull ? [] : try reader.list() }) ?? [] {
            tolerations.append(try toleration(item))
        }

        var resources = Copy.Resources(requests: [:], limits: [:])
        if let reader = fields["resources"], !reader.isNull {
            let parts = try reader.mapping(["requests", "limits"])
            resources.requests = try quantities(parts["requests"])
            resources.limits = try quantities(parts["limits"])
        }

        var extraArgs: [String] = []
        for item in try fields["extraArgs"].map({ reader throws(PlanError) in reader.isNull ? [] : try reader.list() }) ?? [] {
            let argument = try item.string()
            if let (problem, hint) = Copy.refusal(of: argument) { throw item.fail(problem, hint: hint) }
            extraArgs.append(argument)
        }

        return Copy(
            image: image,
            warm: try fields["warm"].map { reader throws(PlanError) in reader.isNull ? true : try reader.bool() } ?? true,
            verify: Copy.Verification(rawValue: try PlanSections.oneOf(fields["verify"], Copy.Verification.allCases.map(\.rawValue), default: "checksum"))!,
            imagePullPolicy: try PlanSections.oneOf(fields["imagePullPolicy"], Copy.pullPolicies, default: "IfNotPresent"),
            nodeSelector: nodeSelector, tolerations: tolerations, resources: resources, extraArgs: extraArgs)
    }

    private static func toleration(_ item: PlanReader) throws(PlanError) -> Copy.Toleration {
        let fields = try item.mapping(["key", "operator", "value", "effect", "tolerationSeconds"])
        let toleration = Copy.Toleration(
            key: try fields["key"].flatMap { $0.isNull ? nil : $0 }?.string(),
            operator: try PlanSections.oneOf(fields["operator"], ["Equal", "Exists"], default: "Equal"),
            value: try fields["value"].flatMap { $0.isNull ? nil : $0 }?.string(),
            effect: try fields["effect"].flatMap { $0.isNull ? nil : $0 }.map { reader throws(PlanError) in
                try PlanSections.oneOf(reader, ["NoSchedule", "PreferNoSchedule", "NoExecute"], default: "NoSchedule")
            },
            tolerationSeconds: try fields["tolerationSeconds"].flatMap { $0.isNull ? nil : $0 }?.int(in: 0...Int(Int32.max)))
        if toleration.operator == "Exists", toleration.value != nil {
            throw fields["value"]!.fail("a toleration with operator Exists takes no value", hint: "remove value, or write operator: Equal")
        }
        if toleration.key == nil, toleration.operator != "Exists" {
            throw item.fail("a toleration without a key must have operator Exists (it then tolerates every taint)", hint: "add key: or operator: Exists")
        }
        if toleration.tolerationSeconds != nil, toleration.effect != "NoExecute" {
            throw fields["tolerationSeconds"]!.fail("tolerationSeconds applies only to effect NoExecute", hint: "remove it, or write effect: NoExecute")
        }
        return toleration
    }

    private static func quantities(_ reader: PlanReader?) throws(PlanError) -> [String: String] {
        guard let reader, !reader.isNull else { return [:] }
        var result: [String: String] = [:]
        for (key, value) in try reader.mapping(["cpu", "memory", "ephemeral-storage"]) {
            let text = try value.string()
            guard text.wholeMatch(of: /\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?/) != nil else {
                throw value.fail("'\(text)' is not a quantity", hint: "write quantities as Kubernetes does: cpu: 500m, memory: 256Mi")
            }
            result[key] = text
        }
        return result
    }
}
