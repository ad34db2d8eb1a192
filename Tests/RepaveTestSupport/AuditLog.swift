import Foundation

/// The lab API server's audit log (`AUDIT_LOG`, metadata level, one JSON event per line): what
/// the server itself saw, independent of what the client believes it sent. The crash and fault
/// tests count the writes that reached the server with it.
public struct AuditEvent: Decodable, Sendable {
    public struct ObjectRef: Decodable, Sendable {
        public let resource: String?
        public let namespace: String?
        public let name: String?
        public let apiGroup: String?
    }
    public struct ResponseStatus: Decodable, Sendable {
        public let code: Int?
    }
    public struct User: Decodable, Sendable {
        public let username: String?
    }

    public let stage: String
    public let verb: String
    public let requestURI: String
    public let userAgent: String?
    public let user: User?
    public let objectRef: ObjectRef?
    public let responseStatus: ResponseStatus?
    public let requestReceivedTimestamp: String?

    public var code: Int { responseStatus?.code ?? 0 }
    /// A request that changed (or tried to change) something.
    public var isWrite: Bool { ["create", "update", "patch", "delete", "deletecollection"].contains(verb) }
}

extension Lab {
    public var auditLog: String { (try? value("AUDIT_LOG")) ?? "" }

    /// Every completed request in the audit log so far (watches count once, when they end).
    public func auditEvents() throws -> [AuditEvent] {
        let data = try Data(contentsOf: URL(fileURLWithPath: try value("AUDIT_LOG")))
        let decoder = JSONDecoder()
        return data.split(separator: UInt8(ascii: "\n")).compactMap { line in
            guard let event = try? decoder.decode(AuditEvent.self, from: Data(line)), event.stage == "ResponseComplete" else { return nil }
            return event
        }
    }

    /// The writes the server answered for objects in `namespace`, or for the cluster-scoped
    /// objects named in `names`, in the order they completed.
    public func auditedWrites(namespace: String, clusterScoped names: Set<String> = []) throws -> [AuditEvent] {
        try auditEvents().filter { event in
            guard event.isWrite, let object = event.objectRef else { return false }
            if object.namespace == namespace { return true }
            return object.namespace == nil && names.contains(object.name ?? "")
        }
    }
}
