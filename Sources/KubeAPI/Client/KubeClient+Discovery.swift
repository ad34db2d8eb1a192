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
        let answer = try await create(.selfSubjectAccessReviews, review)
        return AccessAnswer(
            allowed: answer[path: "status", "allowed"]?.boolValue ?? false,
            reason: answer[path: "status", "reason"]?.stringValue ?? "")
    }
}
