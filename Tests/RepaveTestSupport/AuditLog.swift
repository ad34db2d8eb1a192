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

    /// Where the audit log ends now: pass it to `auditEvents(since:)` to read only what follows.
    public func auditMark() throws -> UInt64 {
        let attributes = try FileManager.default.attributesOfItem(atPath: try value("AUDIT_LOG"))
        return (attributes[.size] as? NSNumber)?.uint64Value ?? 0
    }

    /// Every completed request in the audit log since `mark` (watches count once, when they end).
    public func auditEvents(since mark: UInt64 = 0) throws -> [AuditEvent] {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: try value("AUDIT_LOG")))
        defer { try? handle.close() }
        // A log shorter than the mark was rotated away under the reader: say so, never read nothing.
        guard try handle.seekToEnd() >= mark else { throw NotRunning(detail: "the audit log was rotated; restart the lab with this checkout's scripts/lab") }
        try handle.seek(toOffset: mark)
        let data = try handle.readToEnd() ?? Data()
        let decoder = JSONDecoder()
        return data.split(separator: UInt8(ascii: "\n")).compactMap { line in
            guard let event = try? decoder.decode(AuditEvent.self, from: Data(line)), event.stage == "ResponseComplete" else { return nil }
            return event
        }
    }

    /// The writes Repave (its user agent) sent that the server answered, for objects in
    /// `namespace` or the cluster-scoped objects named in `names`, in the order they completed.
    public func repaveWrites(since mark: UInt64, namespace: String, clusterScoped names: Set<String> = []) throws -> [AuditEvent] {
        try auditEvents(since: mark).filter { event in
            guard event.isWrite, event.userAgent?.hasPrefix("repave/") == true, let object = event.objectRef else { return false }
            if object.namespace == namespace { return true }
            return object.namespace == nil && names.contains(object.name ?? "")
        }
    }
}
