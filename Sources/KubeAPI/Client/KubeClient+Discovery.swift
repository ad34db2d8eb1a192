import Foundation

extension KubeClient {
    /// Whether the server serves `type` (e.g. is `longhorn.io/v1beta2 volumes` installed).
    public func serves(_ type: ResourceType) async throws -> Bool {
        let document: JSON
        do {
            document = try await decode(send(Request(.get, type.groupVersionPath)))
        } catch let error as KubeAPIError where error.reason == .notFound {
            return false
        }
        return (document["resources"]?.arrayValue ?? []).contains { $0["name"]?.stringValue == type.plural }
    }

    /// The server's version (`GET /version`): gitVersion such as `v1.20.2`.
    public func serverVersion() async throws -> String {
        try await decode(send(Request(.get, "/version")))["gitVersion"]?.stringValue ?? "unknown"
    }

    /// One question to the authorizer: may I `verb` this resource?
    public struct AccessQuestion: Sendable, Hashable {
        public var verb: String
        public var type: ResourceType
        public var namespace: String?
        public var name: String?
        public var subresource: String?

        public init(_ verb: String, _ type: ResourceType, namespace: String? = nil, name: String? = nil, subresource: String? = nil) {
            self.verb = verb
            self.type = type
            self.namespace = namespace
            self.name = name
            self.subresource = subresource
        }
    }

    public struct AccessAnswer: Sendable {
        public var allowed: Bool
        public var reason: String
    }

    /// SelfSubjectAccessReview: asks the API server whether the current user may do `question`.
    public func accessReview(_ question: AccessQuestion) async throws -> AccessAnswer {
        var attributes: JSON = [
            "verb": .string(question.verb), "group": .string(question.type.group), "version": .string(question.type.version),
            "resource": .string(question.type.plural),
        ]
        if let namespace = question.namespace { attributes["namespace"] = .string(namespace) }
        if let name = question.name { attributes["name"] = .string(name) }
        if let subresource = question.subresource { attributes["subresource"] = .string(subresource) }
        let review: JSON = [
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": ["resourceAttributes": attributes],
        ]
        let answer = try await decode(send(Request(.post, ResourceType.selfSubjectAccessReviews.path(), body: review.encoded(), readOnly: true)))
        return AccessAnswer(
            allowed: answer[path: "status", "allowed"]?.boolValue ?? false,
            reason: answer[path: "status", "reason"]?.stringValue ?? "")
    }
}

extension KubeClient {
    /// SelfSubjectRulesReview: the rules the current user has in `namespace`, or nil when the
    /// authorizer cannot list them completely (then ask question by question).
    public func rulesReview(in namespace: String) async throws -> [AccessRule]? {
        let review: JSON = [
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
            "spec": ["namespace": .string(namespace)],
        ]
        let answer = try await decode(send(Request(.post, ResourceType.selfSubjectRulesReviews.path(), body: review.encoded(), readOnly: true)))
        if answer[path: "status", "incomplete"]?.boolValue == true { return nil }
        return (answer[path: "status", "resourceRules"]?.arrayValue ?? []).map { rule in
            func strings(_ key: String) -> [String] { rule[key]?.arrayValue?.compactMap(\.stringValue) ?? [] }
            return AccessRule(verbs: strings("verbs"), apiGroups: strings("apiGroups"), resources: strings("resources"), resourceNames: strings("resourceNames"))
        }
    }

    public struct AccessRule: Sendable, Equatable {
        public var verbs: [String]
        public var apiGroups: [String]
        public var resources: [String]
        public var resourceNames: [String]

        /// Whether this rule grants `question` (wildcards as RBAC reads them).
        public func allows(_ question: AccessQuestion) -> Bool {
            let resource = question.subresource.map { "\(question.type.plural)/\($0)" } ?? question.type.plural
            return (verbs.contains("*") || verbs.contains(question.verb))
                && (apiGroups.contains("*") || apiGroups.contains(question.type.group))
                && (resources.contains("*") || resources.contains(resource))
                && (resourceNames.isEmpty || question.name.map(resourceNames.contains) == true)
        }
    }
}
