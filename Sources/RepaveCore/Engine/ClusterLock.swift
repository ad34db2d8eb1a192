import Curl
import Foundation
import Journal
import KubeAPI
import Logging
import Synchronization

/// The run's lock in the cluster: Lease `repave-<claim>` (coordination.k8s.io/v1) in the target
/// namespace, held by the run id, renewed while the run lives, taken over only once expired.
/// Every write carries the Lease's resourceVersion (or uid, for the release), so two runs can
/// never both believe they hold it.
public struct ClusterLock: Sendable {
    public let client: KubeClient
    public let namespace: String
    public let name: String
    public let holder: String
    public let duration: Duration
    /// The Lease as this lock last wrote it, so that the release needs no read first. Forgotten
    /// before every write: after an answer that was lost, the next write reads first again.
    private let written = Written()

    public init(client: KubeClient, namespace: String, claim: String, holder: String, duration: Duration = .seconds(60)) {
        self.client = client
        self.namespace = namespace
        // Object names stop at 253 characters; a long claim keeps its start and a hash.
        let full = "repave-\(claim)"
        name = full.count <= 253 ? full : String(full.prefix(236)) + "-" + String(SHA256.hex(of: Data(full.utf8)).prefix(16))
        self.holder = holder
        self.duration = duration
    }

    public enum Acquired: Sendable, Equatable {
        /// No Lease existed: created.
        case created
        /// This run already held it (a resume): renewed.
        case renewed
        /// Another holder's Lease had expired: taken over (the caller journals it).
        case tookOver(previousHolder: String)
    }

    public struct Held: Error, Sendable, CustomStringConvertible, UserFacingError {
        public let lease: String
        public let holder: String
        public let renewedAgo: Int
        public let expiresIn: Int
        public var code: String { ErrorCode.lockHeld.name }
        public var message: String { "another run holds the lock \(lease): \(holder)" }
        public var causes: [String] { ["renewed \(renewedAgo)s ago; it expires in \(expiresIn)s unless renewed"] }
        public var hint: String? { "wait for that run to finish, or check it with 'repave status'; the lock is taken over only once expired" }
        public var exitStatus: ExitStatus { .journalRefused }
        public var description: String { message }
    }

    /// Takes the lock, or throws ``Held`` naming the current holder.
    /// - Parameter createFirst: create the Lease without reading it first (a new run: it is
    ///   normally absent, and an existing one makes the create fail, then it is read). Only for a
    ///   first try: a try after a failure reads before it writes.
    @discardableResult
    public func acquire(now: Date = Date(), createFirst: Bool = false) async throws -> Acquired {
        if createFirst {
            do {
                try await write("POST") { try await client.create(.leases, in: namespace, lease(resourceVersion: nil, acquired: now, renewed: now)) }
                return .created
            } catch let error as KubeAPIError where error.reason == .alreadyExists {}
        }
        guard let existing = try await client.getIfPresent(.leases, named: name, in: namespace) else {
            do {
                try await write("POST") { try await client.create(.leases, in: namespace, lease(resourceVersion: nil, acquired: now, renewed: now)) }
                return .created
            } catch let error as KubeAPIError where error.reason == .alreadyExists {
                return try await acquire(now: now)   // raced with another run: look again
            }
        }
        let current = Lease(existing)
        let renewed = current.renewTime.flatMap(Self.parse) ?? .distantPast
        let expiry = renewed.addingTimeInterval(Double(current.leaseDurationSeconds))
        if current.holderIdentity == holder {
            try await write("PUT") { try await client.update(.leases, lease(resourceVersion: current.resourceVersion, acquired: current.acquireTime.flatMap(Self.parse) ?? now, renewed: now)) }
            return .renewed
        }
        guard expiry <= now || current.holderIdentity == nil else {
            throw Held(lease: "\(namespace)/\(name)", holder: current.holderIdentity ?? "?",
                       renewedAgo: Int(now.timeIntervalSince(renewed)), expiresIn: Int(expiry.timeIntervalSince(now)))
        }
        // Expired: take it over, guarded by the resourceVersion we read (409 if it moved).
        try await write("PUT") { try await client.update(.leases, lease(resourceVersion: current.resourceVersion, acquired: now, renewed: now)) }
        return .tookOver(previousHolder: current.holderIdentity ?? "")
    }

    /// Renews the lock; throws if another run took it (a conflict or a different holder).
    public func renew(now: Date = Date()) async throws {
        let current = Lease(try await client.get(.leases, named: name, in: namespace))
        guard current.holderIdentity == holder else {
            throw Held(lease: "\(namespace)/\(name)", holder: current.holderIdentity ?? "?", renewedAgo: 0, expiresIn: 0)
        }
        try await write("PUT") { try await client.update(.leases, lease(resourceVersion: current.resourceVersion, acquired: current.acquireTime.flatMap(Self.parse) ?? now, renewed: now)) }
    }

    /// Renews every third of the lease duration until cancelled; `lost` is called (once) when a
    /// renewal finds the lease taken, fails until the lease would have expired, or cannot be
    /// journaled. Each renewal is journaled like any change: a `lock` intent before the update,
    /// its result after (a renewal whose intent cannot be written is not sent).
    public func keepRenewed(journal: Journal? = nil, lost: @escaping @Sendable (String) -> Void) -> Task<Void, Never> {
        Task {
            var lastSuccess = ContinuousClock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: duration / 3)
                if Task.isCancelled { return }
                do {
                    try await journal?.appendLock(self, intent: "renew", renewal: true)
                } catch {
                    lost("the lock's renewal could not be journaled: \(error)")
                    return
                }
                do {
                    try await renew()
                    lastSuccess = .now
                    try? await journal?.appendLock(self, result: "renewed", renewal: true)
                } catch let error as Held {
                    try? await journal?.appendLock(self, result: "taken by \(error.holder)", renewal: true)
                    lost("the cluster lock was taken by \(error.holder)")
                    return
                } catch {
                    // The error's kind only: a failing credential plugin's error quotes its stderr.
                    // Cancelled mid-request (the run is ending), the update may have landed.
                    let result = Task.isCancelled ? "unknown: the run ended during the renewal" : "not renewed: \(Self.kind(of: error))"
                    try? await journal?.appendLock(self, result: result, renewal: true)
                    if ContinuousClock.now - lastSuccess >= duration {
                        lost("the cluster lock could not be renewed for \(duration): \(Self.kind(of: error))")
                        return
                    }
                }
            }
        }
    }

    /// A failed renewal in a few words: the HTTP status and reason, or the error's type.
    static func kind(of error: any Error) -> String {
        if let api = error as? KubeAPIError { return "HTTP \(api.httpStatus) \(api.reason.rawValue)" }
        if let curl = error as? CurlError { return "connection: \(curl.kind)" }
        return String(describing: type(of: error))
    }

    /// Releases the lock if this run still holds it: a uid-guarded delete. When this lock wrote
    /// the Lease last, the delete is guarded by that write's uid and resourceVersion and needs no
    /// read: a Lease changed since (taken over after expiring) makes it fail, and then it is read.
    public func release() async throws {
        if let last = written.take() {
            do {
                try await write("DELETE") { try await client.delete(.leases, named: name, in: namespace, uid: last.uid, resourceVersion: last.resourceVersion) }
                return
            } catch let error as KubeAPIError where error.reason == .notFound {
                return
            } catch let error as KubeAPIError where error.reason == .conflict {}
        }
        guard let existing = try await client.getIfPresent(.leases, named: name, in: namespace), Lease(existing).holderIdentity == holder else { return }
        do {
            try await write("DELETE") { try await client.delete(.leases, named: name, in: namespace, uid: Lease(existing).uid, resourceVersion: Lease(existing).resourceVersion) }
        } catch let error as KubeAPIError where error.reason == .notFound {}
    }

    /// A write of the Lease whose answer was lost is an ``UnsettledWrite``: the caller reads the
    /// Lease again before anything else is sent.
    private func write(_ verb: String, _ body: () async throws -> JSON) async throws {
        _ = written.take()
        do {
            let answer = try await body()
            if verb != "DELETE", let uid = answer[path: "metadata", "uid"]?.stringValue,
               let version = answer[path: "metadata", "resourceVersion"]?.stringValue {
                written.set((uid, version))
            }
        } catch where TransientFailure.leavesOutcomeUnknown(error) {
            throw UnsettledWrite(verb: verb, path: ResourceType.leases.path(namespace: namespace, name: name), cause: error)
        }
    }

    /// The uid and resourceVersion of this lock's last successful write.
    private final class Written: Sendable {
        private let last = Mutex<(uid: String, resourceVersion: String)?>(nil)
        func set(_ value: (uid: String, resourceVersion: String)) { last.withLock { $0 = value } }
        func take() -> (uid: String, resourceVersion: String)? { last.withLock { value in defer { value = nil }; return value } }
    }

    private func lease(resourceVersion: String?, acquired: Date, renewed: Date) -> JSON {
        var metadata: JSON = ["name": .string(name), "namespace": .string(namespace), "labels": ["app.kubernetes.io/managed-by": "repave"]]
        if let resourceVersion { metadata["resourceVersion"] = .string(resourceVersion) }
        return [
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
            "spec": [
                "holderIdentity": .string(holder),
                "leaseDurationSeconds": .integer(Int64(duration.components.seconds)),
                "acquireTime": .string(Self.microTime(acquired)), "renewTime": .string(Self.microTime(renewed)),
            ],
        ]
    }

    /// MicroTime, as the Lease API wants it: `2026-11-28T02:00:00.000000Z`.
    static func microTime(_ date: Date) -> String {
        let whole = date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: false).timeSeparator(.colon))
            .replacingOccurrences(of: "Z", with: "")
        let micros = Int((date.timeIntervalSince1970 - floor(date.timeIntervalSince1970)) * 1_000_000)
        return whole + "." + String(format: "%06d", micros) + "Z"
    }

    static func parse(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: .iso8601) { return date }
        // Fractional seconds: drop them to the whole second.
        guard let dot = text.firstIndex(of: ".") else { return nil }
        return try? Date(String(text[..<dot]) + "Z", strategy: .iso8601)
    }
}
