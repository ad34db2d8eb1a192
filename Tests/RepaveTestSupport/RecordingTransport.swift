import Curl
import Foundation
import KubeAPI
import Synchronization
import Testing

/// An API server in memory, for step tests that need no lab: it answers from a small table of
/// routes (method, path and, optionally, query items that must match) and records every request
/// as it was sent. A request no route answers is a test failure, recorded where it happened, and
/// is answered 599 with the request in the message: an unexpected request is never silent.
public final class RecordingTransport: HTTPTransport {
    /// What the server answers.
    public enum Reply: Sendable {
        /// `200` (or `status`) with the object as its body.
        case object(JSON, status: Int = 200)
        /// An API `Status` failure: `404 NotFound`, `409 Conflict`, `503 ServiceUnavailable`.
        case failure(Int, reason: String, message: String)
        /// A watch stream: a `200` head, then one line per event (`ADDED`, `MODIFIED`, …), then
        /// the server closes it.
        case events([(type: String, object: JSON)])
        /// A streamed text answer (a pod's log): a `200` head, then these lines.
        case text([String])
    }

    /// One request as the client sent it.
    public struct Sent: Sendable, CustomStringConvertible {
        public let method: HTTPMethod
        /// Decoded path: `/api/v1/namespaces/devpod/persistentvolumeclaims/home`.
        public let path: String
        /// Decoded query items in order: `[("limit", "500"), ("fieldSelector", "metadata.name=home")]`.
        public let query: [(name: String, value: String)]
        public let contentType: String?
        public let accept: String?
        /// The body as JSON (nil when there was none, or it was not JSON).
        public let body: JSON?
        /// How many journal records existed when the request was sent (see `journalLength`).
        public let journalLength: Int
        public let streamed: Bool

        public func query(_ name: String) -> String? { query.first { $0.name == name }?.value }
        /// `GET /api/v1/…?limit=500`: how a failure message names the request.
        public var description: String {
            "\(method.rawValue) \(path)" + (query.isEmpty ? "" : "?" + query.map { "\($0.name)=\($0.value)" }.joined(separator: "&"))
        }
    }

    private struct Route {
        let method: HTTPMethod
        let path: String
        let query: [String: String]
        /// Answered in turn; the last one repeats (a read that sees the same object every time).
        var replies: [Reply]
    }

    private struct State {
        var routes: [Route] = []
        var sent: [Sent] = []
    }

    private let state = Mutex(State())
    private let journalLength: @Sendable () -> Int

    /// - Parameter journalLength: read as each request is sent, so a test can tell which journal
    ///   records were durable before it (intent before the request, outcome after).
    public init(journalLength: @escaping @Sendable () -> Int = { 0 }) {
        self.journalLength = journalLength
    }

    /// Answers `method path` (with these query items among its own, when given) with `replies`,
    /// in turn. The route with the most matching query items wins, so a watch (`watch=1`) and a
    /// list of the same collection are told apart.
    public func on(_ method: HTTPMethod, _ path: String, query: [String: String] = [:], _ replies: Reply...) {
        state.withLock { $0.routes.append(Route(method: method, path: path, query: query, replies: replies)) }
    }

    /// `GET` of an object that does not exist: the API server's 404 Status.
    public func absent(_ path: String) {
        on(.get, path, .failure(404, reason: "NotFound", message: "\(path) not found"))
    }

    /// Everything sent so far, in order.
    public var sent: [Sent] { state.withLock { $0.sent } }
    /// Everything but reads: the changes the client asked for.
    public var writes: [Sent] { sent.filter { $0.method != .get } }
    /// `GET /path?…` lines of everything sent, for a failure message or an exact comparison.
    public var requests: [String] { sent.map(\.description) }

    public func perform(_ request: HTTPRequest) async throws -> HTTPResponse {
        let (status, body) = answer(request, streamed: false)
        return HTTPResponse(status: status, headers: ["content-type": ["application/json"]], body: body, newConnections: 0, httpVersion: "1.1")
    }

    public func lines(_ request: HTTPRequest) -> HTTPLineStream {
        let (stream, continuation) = AsyncThrowingStream<HTTPStreamEvent, any Error>.makeStream()
        switch route(request, streamed: true) {
        case .events(let events)?:
            continuation.yield(.head(status: 200, headers: [:]))
            for event in events {
                let line: JSON = ["type": .string(event.type), "object": event.object]
                continuation.yield(.line(line.encoded()))
            }
        case .object(let object, let status)?:
            continuation.yield(.head(status: status, headers: [:]))
            continuation.yield(.line(object.encoded()))
        case .text(let lines)?:
            continuation.yield(.head(status: 200, headers: [:]))
            for line in lines { continuation.yield(.line(Data(line.utf8))) }
        case .failure(let code, let reason, let message)?:
            continuation.yield(.head(status: code, headers: [:]))
            continuation.yield(.line(Self.status(code, reason: reason, message: message).encoded()))
        case nil:
            continuation.yield(.head(status: 599, headers: [:]))
            continuation.yield(.line(Self.status(599, reason: "Unknown", message: "no route for WATCH \(request.url)").encoded()))
        }
        continuation.finish()
        return HTTPLineStream(events: stream, flag: CancellationFlag())
    }

    private func answer(_ request: HTTPRequest, streamed: Bool) -> (Int, Data) {
        switch route(request, streamed: streamed) {
        case .object(let object, let status)?: (status, object.encoded())
        case .failure(let code, let reason, let message)?: (code, Self.status(code, reason: reason, message: message).encoded())
        case .events?, .text?: (599, Self.status(599, reason: "Unknown", message: "a streaming route answered a plain request: \(request.url)").encoded())
        case nil: (599, Self.status(599, reason: "Unknown", message: "no route for \(request.method.rawValue) \(request.url)").encoded())
        }
    }

    /// Records the request and finds its reply, or records the test failure that it has none.
    private func route(_ request: HTTPRequest, streamed: Bool) -> Reply? {
        let components = URLComponents(string: request.url)
        let query = (components?.queryItems ?? []).map { (name: $0.name, value: $0.value ?? "") }
        let sent = Sent(
            method: request.method, path: components?.path ?? request.url, query: query,
            contentType: request.headers.first { $0.name.lowercased() == "content-type" }?.value,
            accept: request.headers.first { $0.name.lowercased() == "accept" }?.value,
            body: request.body.flatMap { try? JSON.decode($0) }, journalLength: journalLength(), streamed: streamed)
        let reply: Reply? = state.withLock { state in
            state.sent.append(sent)
            let candidates = state.routes.indices.filter { index in
                let route = state.routes[index]
                return route.method == sent.method && route.path == sent.path
                    && route.query.allSatisfy { key, value in sent.query(key) == value }
            }
            guard let index = candidates.max(by: { state.routes[$0].query.count < state.routes[$1].query.count }) else { return nil }
            let replies = state.routes[index].replies
            if replies.count > 1 { state.routes[index].replies.removeFirst() }
            return replies.first
        }
        if reply == nil { Issue.record("RecordingTransport: no route for \(sent)") }
        return reply
    }

    /// The API server's `Status` for a failure.
    public static func status(_ code: Int, reason: String, message: String) -> JSON {
        ["kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": .string(reason), "message": .string(message), "code": .integer(Int64(code))]
    }
}

/// Objects as the API server returns them, with the fields the steps read (uid, resourceVersion,
/// phase, replicas, robustness) and little else.
public enum StubObjects {
    static func metadata(_ name: String, namespace: String?, uid: String, resourceVersion: String,
                         annotations: [String: String] = [:], extra: [String: JSON] = [:]) -> JSON {
        var metadata: JSON = ["name": .string(name), "uid": .string(uid), "resourceVersion": .string(resourceVersion),
                              "annotations": .object(annotations.mapValues { .string($0) })]
        if let namespace { metadata["namespace"] = .string(namespace) }
        for (key, value) in extra { metadata[key] = value }
        return metadata
    }

    public static func claim(
        _ name: String, in namespace: String, uid: String, resourceVersion: String = "100", storageClass: String,
        volume: String?, phase: String = "Bound", annotations: [String: String] = [:], labels: [String: String] = [:]
    ) -> JSON {
        var spec: JSON = ["accessModes": ["ReadWriteOnce"], "storageClassName": .string(storageClass), "volumeMode": "Filesystem",
                          "resources": ["requests": ["storage": "60Gi"]]]
        if let volume { spec["volumeName"] = .string(volume) }
        return ["apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": metadata(name, namespace: namespace, uid: uid, resourceVersion: resourceVersion, annotations: annotations,
                                     extra: labels.isEmpty ? [:] : ["labels": .object(labels.mapValues { .string($0) })]),
                "spec": spec, "status": ["phase": .string(phase)]]
    }

    public static func volume(_ name: String, uid: String, resourceVersion: String = "200", reclaimPolicy: String = "Delete",
                              claim: (namespace: String, name: String, uid: String)? = nil) -> JSON {
        var spec: JSON = ["persistentVolumeReclaimPolicy": .string(reclaimPolicy), "capacity": ["storage": "60Gi"],
                          "csi": ["driver": "driver.longhorn.io", "volumeHandle": .string(name)]]
        if let claim { spec["claimRef"] = ["namespace": .string(claim.namespace), "name": .string(claim.name), "uid": .string(claim.uid)] }
        return ["apiVersion": "v1", "kind": "PersistentVolume", "metadata": metadata(name, namespace: nil, uid: uid, resourceVersion: resourceVersion),
                "spec": spec, "status": ["phase": "Bound"]]
    }

    /// A Deployment whose rollout is complete at `replicas` (0 is complete too).
    public static func deployment(_ name: String, in namespace: String, uid: String = "uid-deploy", resourceVersion: String = "300",
                                  replicas: Int, annotations: [String: String] = [:]) -> JSON {
        let count = JSON.integer(Int64(replicas))
        return ["apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": metadata(name, namespace: namespace, uid: uid, resourceVersion: resourceVersion, annotations: annotations,
                                     extra: ["generation": 2]),
                "spec": ["replicas": count],
                "status": ["observedGeneration": 2, "replicas": count, "updatedReplicas": count, "readyReplicas": count, "availableReplicas": count]]
    }

    /// A pod of `deployment` (through ReplicaSet `<deployment>-rs`) that mounts `claim`.
    public static func pod(_ name: String, in namespace: String, claim: String, replicaSet: String) -> JSON {
        ["apiVersion": "v1", "kind": "Pod",
         "metadata": metadata(name, namespace: namespace, uid: "uid-\(name)", resourceVersion: "400",
                              extra: ["ownerReferences": [["kind": "ReplicaSet", "name": .string(replicaSet), "uid": "uid-rs", "controller": true]]]),
         "spec": ["volumes": [["name": "home", "persistentVolumeClaim": ["claimName": .string(claim)]]]],
         "status": ["phase": "Running"]]
    }

    public static func replicaSet(_ name: String, in namespace: String, deployment: String) -> JSON {
        ["apiVersion": "apps/v1", "kind": "ReplicaSet",
         "metadata": metadata(name, namespace: namespace, uid: "uid-rs", resourceVersion: "350",
                              extra: ["ownerReferences": [["kind": "Deployment", "name": .string(deployment), "uid": "uid-deploy", "controller": true]]])]
    }

    public static func storageClass(_ name: String, uid: String = "uid-class", replicas: Int, annotations: [String: String] = [:]) -> JSON {
        ["apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
         "metadata": metadata(name, namespace: nil, uid: uid, resourceVersion: "10", annotations: annotations),
         "provisioner": "driver.longhorn.io", "parameters": ["numberOfReplicas": .string(String(replicas))],
         "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate", "allowVolumeExpansion": true]
    }

    public static func longhornVolume(_ name: String, in namespace: String = "longhorn-system", uid: String, replicas: Int,
                                      state: String = "attached", robustness: String = "healthy") -> JSON {
        ["apiVersion": "longhorn.io/v1beta2", "kind": "Volume",
         "metadata": metadata(name, namespace: namespace, uid: uid, resourceVersion: "500"),
         "spec": ["numberOfReplicas": .integer(Int64(replicas)), "size": "64424509440"],
         "status": ["state": .string(state), "robustness": .string(robustness)]]
    }

    /// A list answer: its items and the resourceVersion a watch starts from.
    public static func list(_ items: [JSON], resourceVersion: String = "1000") -> JSON {
        ["kind": "List", "apiVersion": "v1", "metadata": ["resourceVersion": .string(resourceVersion)], "items": .array(items)]
    }
}
