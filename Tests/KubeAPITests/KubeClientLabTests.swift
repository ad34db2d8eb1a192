import Curl
import Foundation
import RepaveTestSupport
import Synchronization
import Testing

@testable import KubeAPI

/// The client against the lab's real kube-apiserver.
@Suite("KubeClient against the lab", .serialized)
struct KubeClientLabTests {
    let lab: Lab
    let admin: ClusterConnection

    init() throws {
        lab = try Lab.current()
        admin = try KubeconfigLoader(explicitPath: lab.adminKubeconfig).load()
    }

    func client(transport: (any HTTPTransport)? = nil, retry: RetryPolicy = RetryPolicy()) throws -> KubeClient {
        try KubeClient(connection: admin, userAgent: "repave-test/client", transport: transport, retryPolicy: retry)
    }

    /// A namespace of its own, deleted (uid-guarded) afterwards.
    func withNamespace(_ client: KubeClient, _ body: (String) async throws -> Void) async throws {
        try await withTestNamespace(client, prefix: "kube", body)
    }

    func configMap(_ name: String, labels: [String: String] = [:], data: [String: String] = [:]) -> JSON {
        ["apiVersion": "v1", "kind": "ConfigMap",
         "metadata": ["name": .string(name), "labels": .object(labels.mapValues { .string($0) })],
         "data": .object(data.mapValues { .string($0) })]
    }

    @Test("create, get, list with selectors and pagination, update, merge and JSON patch")
    func crud() async throws {
        let client = try client()
        try await withNamespace(client) { ns in
            for index in 0..<7 {
                try await client.create(.configMaps, in: ns, configMap("cm-\(index)", labels: ["parity": index % 2 == 0 ? "even" : "odd"]))
            }
            let all = try await client.list(.configMaps, in: ns, pageSize: 3)
            #expect(all.items.count == 7)
            #expect(!all.resourceVersion.isEmpty)
            let even = try await client.list(.configMaps, in: ns, labelSelector: "parity=even")
            #expect(even.items.count == 4)
            let named = try await client.list(.configMaps, in: ns, fieldSelector: "metadata.name=cm-3")
            #expect(named.items.map { ObjectMeta($0["metadata"] ?? [:]).name } == ["cm-3"])

            var object = try await client.get(.configMaps, named: "cm-0", in: ns)
            object["data"] = ["k": "v"]
            object["x-unknown-to-repave"] = "kept?"   // the server drops unknown top-level fields; ours must not break the PUT
            let updated = try await client.update(.configMaps, object)
            #expect(updated[path: "data", "k"] == "v")

            let merged = try await client.patch(.configMaps, named: "cm-0", in: ns, .merge(["data": ["m": "1"]]))
            #expect(merged["data"] == ["k": "v", "m": "1"])
            let jsonPatched = try await client.patch(.configMaps, named: "cm-0", in: ns, .json([
                ["op": "test", "path": "/data/m", "value": "1"],
                ["op": "replace", "path": "/data/m", "value": "2"],
            ]))
            #expect(jsonPatched[path: "data", "m"] == "2")
            let failedTest = await #expect(throws: KubeAPIError.self) {
                try await client.patch(.configMaps, named: "cm-0", in: ns, .json([["op": "test", "path": "/data/m", "value": "1"]]))
            }
            #expect(failedTest?.httpStatus == 422 || failedTest?.httpStatus == 500 || failedTest?.reason == .invalid)
            #expect(try await client.getIfPresent(.configMaps, named: "nope", in: ns) == nil)
        }
    }

    @Test("a PUT with a stale resourceVersion is a conflict; a create of an existing name is alreadyExists")
    func optimisticConcurrency() async throws {
        let client = try client()
        try await withNamespace(client) { ns in
            let first = try await client.create(.configMaps, in: ns, configMap("c"))
            _ = try await client.patch(.configMaps, named: "c", in: ns, .merge(["data": ["a": "1"]]))
            var stale = first
            stale["data"] = ["b": "2"]
            let conflict = await #expect(throws: KubeAPIError.self) { try await client.update(.configMaps, stale) }
            #expect(conflict?.reason == .conflict)
            #expect(conflict?.verb == "PUT")
            #expect(conflict?.path == "/api/v1/namespaces/\(ns)/configmaps/c")
            let exists = await #expect(throws: KubeAPIError.self) { try await client.create(.configMaps, in: ns, configMap("c")) }
            #expect(exists?.reason == .alreadyExists)
        }
    }

    @Test("delete needs the uid: a stale one is a conflict and nothing is deleted")
    func deleteWithPreconditions() async throws {
        let client = try client()
        try await withNamespace(client) { ns in
            let created = try await client.create(.configMaps, in: ns, configMap("victim"))
            let wrong = await #expect(throws: KubeAPIError.self) {
                try await client.delete(.configMaps, named: "victim", in: ns, uid: "00000000-0000-0000-0000-000000000000")
            }
            #expect(wrong?.reason == .conflict)
            #expect(try await client.getIfPresent(.configMaps, named: "victim", in: ns) != nil)
            let stale = await #expect(throws: KubeAPIError.self) {
                try await client.delete(.configMaps, named: "victim", in: ns, uid: ConfigMapView(created).uid, resourceVersion: "1")
            }
            #expect(stale?.reason == .conflict)
            try await client.delete(.configMaps, named: "victim", in: ns, uid: ConfigMapView(created).uid, propagationPolicy: .background)
            #expect(try await client.getIfPresent(.configMaps, named: "victim", in: ns) == nil)
        }
    }

    @Test("dry run on create, patch and delete changes nothing")
    func dryRun() async throws {
        let client = try client()
        try await withNamespace(client) { ns in
            let would = try await client.create(.configMaps, in: ns, configMap("ghost"), dryRun: true)
            #expect(ObjectMeta(would["metadata"] ?? [:]).name == "ghost")
            #expect(try await client.getIfPresent(.configMaps, named: "ghost", in: ns) == nil)
            let real = try await client.create(.configMaps, in: ns, configMap("real", data: ["a": "1"]))
            _ = try await client.patch(.configMaps, named: "real", in: ns, .merge(["data": ["a": "2"]]), dryRun: true)
            try await client.delete(.configMaps, named: "real", in: ns, uid: ConfigMapView(real).uid, dryRun: true)
            let after = try await client.get(.configMaps, named: "real", in: ns)
            #expect(after[path: "data", "a"] == "1")
        }
    }

    @Test("the scale subresource: spec comes back empty at zero, which reads as 0")
    func scaleSubresource() async throws {
        let client = try client()
        try await withNamespace(client) { ns in
            let deployment: JSON = [
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "web"],
                "spec": ["replicas": 2, "selector": ["matchLabels": ["app": "web"]],
                         "template": ["metadata": ["labels": ["app": "web"]], "spec": ["containers": [["name": "c", "image": "busybox"]]]]],
            ]
            try await client.create(.deployments, in: ns, deployment)
            let scale = Scale(try await client.get(.deployments, named: "web", in: ns, subresource: "scale"))
            #expect(scale.specReplicas == 2)
            let zero = Scale(try await client.patch(.deployments, named: "web", in: ns, .merge(["spec": ["replicas": 0]]), subresource: "scale"))
            #expect(zero.specReplicas == 0)
            #expect(Deployment(try await client.get(.deployments, named: "web", in: ns)).replicas == 0)
        }
    }

    @Test("the restricted user gets a typed forbidden error naming the user")
    func forbidden() async throws {
        let restricted = try KubeconfigLoader(explicitPath: try lab.value("RESTRICTED_KUBECONFIG")).load()
        let client = try KubeClient(connection: restricted, userAgent: "repave-test/client")
        let error = await #expect(throws: KubeAPIError.self) { try await client.list(.persistentVolumeClaims, in: "default") }
        #expect(error?.reason == .forbidden)
        #expect(error?.httpStatus == 403)
        #expect(error?.message.contains("restricted-user") == true)
        let answer = try await client.accessReview(.init("delete", .persistentVolumeClaims, namespace: "default", name: "x"))
        #expect(!answer.allowed)
        let adminAnswer = try await self.client().accessReview(.init("delete", .persistentVolumeClaims, namespace: "default", name: "x"))
        #expect(adminAnswer.allowed)
    }

    @Test("a watch sees ADDED, MODIFIED and DELETED in order, from a list's resourceVersion")
    func watchOrder() async throws {
        let client = try client()
        try await withNamespace(client) { ns in
            let start = try await client.list(.configMaps, in: ns)
            let events = Task {
                var seen: [String] = []
                for try await event in client.watch(.configMaps, in: ns, from: start.resourceVersion, timeoutSeconds: 10) {
                    switch event {
                    case .added(let o): seen.append("ADDED \(ObjectMeta(o["metadata"] ?? [:]).name)")
                    case .modified(let o): seen.append("MODIFIED \(ObjectMeta(o["metadata"] ?? [:]).name)")
                    case .deleted(let o): seen.append("DELETED \(ObjectMeta(o["metadata"] ?? [:]).name)")
                    case .bookmark: continue
                    }
                    if seen.count == 3 { break }
                }
                return seen
            }
            let created = try await client.create(.configMaps, in: ns, configMap("w"))
            _ = try await client.patch(.configMaps, named: "w", in: ns, .merge(["data": ["x": "1"]]))
            try await client.delete(.configMaps, named: "w", in: ns, uid: ConfigMapView(created).uid)
            #expect(try await events.value == ["ADDED w", "MODIFIED w", "DELETED w"])
        }
    }

    @Test("wait(until:) returns when the condition holds, including deletion, without polling")
    func waitForConditions() async throws {
        let transport = FaultInjectingTransport(try HTTPSession(configuration: .init(tls: admin.tls, userAgent: "repave-test/client")), decide: { _, _ in nil })
        let client = try client(transport: transport)
        try await withNamespace(client) { ns in
            let created = try await client.create(.configMaps, in: ns, configMap("flag"))
            let waiter = Task {
                try await client.wait(for: .configMaps, named: "flag", in: ns, timeout: .seconds(10), describedAs: "flag=up") {
                    $0?[path: "data", "state"] == "up"
                }
            }
            try await Task.sleep(for: .milliseconds(300))
            _ = try await client.patch(.configMaps, named: "flag", in: ns, .merge(["data": ["state": "up"]]))
            let seen = try await waiter.value
            #expect(seen?[path: "data", "state"] == "up")

            let gone = Task {
                try await client.wait(for: .configMaps, named: "flag", in: ns, timeout: .seconds(10), describedAs: "flag deleted") { $0 == nil }
            }
            try await Task.sleep(for: .milliseconds(300))
            try await client.delete(.configMaps, named: "flag", in: ns, uid: ConfigMapView(created).uid)
            #expect(try await gone.value == nil)
            // At most one list and one watch per wait (no watch when the list already shows the
            // condition, as on a busy machine where the change lands first): no polling.
            let waitRequests = transport.sent.filter { $0.url.contains("fieldSelector=metadata.name%3Dflag") }
            #expect((2...4).contains(waitRequests.count) && waitRequests.filter { !$0.url.contains("watch=") }.count == 2, "\(waitRequests.map(\.url))")
        }
    }

    @Test("wait(until:) fails at its deadline with what it waited for and the last state")
    func waitTimeout() async throws {
        let client = try client()
        try await withNamespace(client) { ns in
            try await client.create(.configMaps, in: ns, configMap("never"))
            let error = await #expect(throws: WaitTimedOut.self) {
                try await client.wait(for: .configMaps, named: "never", in: ns, timeout: .milliseconds(700), describedAs: "configmap never to say yes") {
                    $0?[path: "data", "yes"] != nil
                }
            }
            #expect(error?.what == "configmap never to say yes")
            #expect(error?.lastSeen.map { ObjectMeta($0["metadata"] ?? [:]).name } == "never")
        }
    }

    @Test("410 Gone on a watch is recovered by a re-list")
    func goneRelists() async throws {
        let once = Once()
        let transport = FaultInjectingTransport(try HTTPSession(configuration: .init(tls: admin.tls, userAgent: "repave-test/client"))) { request, _ in
            // The first watch of the flag answers 410, as after an etcd compaction.
            request.url.contains("watch=1") && request.url.contains("gone-flag") && once.fire() ? .watchGone : nil
        }
        let client = try client(transport: transport)
        try await withNamespace(client) { ns in
            try await client.create(.configMaps, in: ns, configMap("gone-flag"))
            let waiter = Task {
                try await client.wait(for: .configMaps, named: "gone-flag", in: ns, timeout: .seconds(10), describedAs: "gone-flag=up") {
                    $0?[path: "data", "state"] == "up"
                }
            }
            // Changed only once the waiter watches (its first watch is the one answered 410), not
            // after a guessed pause: on a busy machine the list could come after the change.
            let watching = ContinuousClock.now + .seconds(10)
            while !transport.sent.contains(where: { $0.url.contains("watch=1") && $0.url.contains("gone-flag") }), ContinuousClock.now < watching {
                try await Task.sleep(for: .milliseconds(20))
            }
            _ = try await client.patch(.configMaps, named: "gone-flag", in: ns, .merge(["data": ["state": "up"]]))
            #expect(try await waiter.value?[path: "data", "state"] == "up")
            let lists = transport.sent.filter { $0.url.contains("gone-flag") && !$0.url.contains("watch=1") && $0.method == .get }
            #expect(lists.count >= 2, "a 410 must cause a re-list: \(transport.sent.map(\.url))")
        }
    }

    @Test("429 with Retry-After is honoured for reads and writes; a write's 503 is not retried")
    func retryAfter() async throws {
        let transport = FaultInjectingTransport(try HTTPSession(configuration: .init(tls: admin.tls, userAgent: "repave-test/client"))) { request, index in
            guard request.url.contains("/configmaps") else { return nil }
            if request.url.contains("retry-me") && index <= 4 { return .status(429, retryAfter: 1) }
            if request.method == .post && request.url.hasSuffix("/configmaps") && request.body.map({ String(decoding: $0, as: UTF8.self).contains("unavailable") }) == true {
                return .status(503, retryAfter: 1)
            }
            return nil
        }
        let client = try client(transport: transport)
        try await withNamespace(client) { ns in
            let clock = ContinuousClock()
            let start = clock.now
            // Both GETs of the first requests hit the injected 429s.
            let missing = try await client.getIfPresent(.configMaps, named: "retry-me", in: ns)
            #expect(missing == nil)
            #expect(clock.now - start >= .seconds(1))

            let error = await #expect(throws: KubeAPIError.self) { try await client.create(.configMaps, in: ns, configMap("unavailable")) }
            #expect(error?.httpStatus == 503)
            let posts = transport.sent.filter { $0.method == .post && $0.url.contains("/namespaces/\(ns)/configmaps") }
            #expect(posts.count == 1, "a write must not be repeated blindly")
        }
    }

    @Test("connection errors: reads are retried, a write whose answer was lost is not")
    func connectionErrors() async throws {
        let once = Once()
        let transport = FaultInjectingTransport(try HTTPSession(configuration: .init(tls: admin.tls, userAgent: "repave-test/client"))) { request, _ in
            if request.url.hasSuffix("/flaky") { return once.fire() ? .curlError(56) : nil }
            if request.method == .post && request.url.contains("/configmaps") { return .afterApplied(56) }
            return nil
        }
        let client = try client(transport: transport, retry: RetryPolicy(initialBackoff: .milliseconds(10)))
        try await withNamespace(client) { ns in
            let flaky = try await client.getIfPresent(.configMaps, named: "flaky", in: ns)
            #expect(flaky == nil)
            #expect(transport.sent.filter { $0.url.hasSuffix("/flaky") }.count == 2)
            let error = await #expect(throws: CurlError.self) { try await client.create(.configMaps, in: ns, configMap("applied")) }
            #expect(error?.code == 56)
            #expect(transport.sent.filter { $0.method == .post && $0.url.contains("/configmaps") }.count == 1)
            // The server did apply it: the caller settles the outcome by reading.
            let applied = try await client.getIfPresent(.configMaps, named: "applied", in: ns)
            #expect(applied != nil)
        }
    }

    @Test("discovery: built-in resources are served, an unknown group is not")
    func discovery() async throws {
        let client = try client()
        #expect(try await client.serves(.deployments))
        #expect(try await client.serves(.leases))
        #expect(try await client.serves(ResourceType(group: "widgets.example.com", version: "v1", plural: "widgets", kind: "Widget", namespaced: true)) == false)
        #expect(try await client.serves(ResourceType(group: "apps", version: "v1", plural: "widgets", kind: "Widget", namespaced: true)) == false)
        #expect(try await client.serverVersion() == "v1.20.2")
    }

    @Test("every request carries the repave User-Agent the audit log groups by")
    func userAgent() async throws {
        let session = try HTTPSession(configuration: .init(tls: admin.tls, userAgent: "repave/9.9.9"))
        #expect(session.configuration.userAgent == "repave/9.9.9")
        let client = try KubeClient(connection: admin, userAgent: "repave/9.9.9")
        // The server echoes nothing about the agent, but rejects nothing either; the audit-log
        // benchmark counts by it.
        #expect(try await client.serverVersion() == "v1.20.2")
    }
}

/// The uid of any object (a ConfigMap here).
struct ConfigMapView: ObjectView {
    let raw: JSON
    init(_ raw: JSON) { self.raw = raw }
}

/// True exactly the first time it is asked.
final class Once: Sendable {
    private let fired = Mutex(false)
    func fire() -> Bool { fired.withLock { done in defer { done = true }; return !done } }
}
