import Curl
import Foundation
import RepaveTestSupport
import Testing

@testable import KubeAPI

@Suite("KubeAPI without a server")
struct KubeAPIUnitTests {
    @Test("raw JSON survives a round trip: unknown fields kept, integers stay integers")
    func jsonRoundTrip() throws {
        let text = #"{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"home","generation":9007199254740993,"x-future":{"a":[1,2.5,true,null,"s"]}},"spec":{"resources":{"requests":{"storage":"60Gi"}}}}"#
        let json = try JSON.decode(Data(text.utf8))
        let again = try JSON.decode(json.encoded())
        #expect(again == json)
        #expect(json[path: "metadata", "generation"] == .integer(9_007_199_254_740_993))
        #expect(json[path: "metadata", "x-future", "a"]?[1] == .double(2.5))
        #expect(PersistentVolumeClaim(json).requestedStorage == "60Gi")
        #expect(String(decoding: json.encoded(), as: UTF8.self).contains(#""x-future":{"a":[1,2.5,true,null,"s"]}"#))
    }

    @Test("resource paths for core, group, cluster-scoped and subresources")
    func paths() {
        #expect(ResourceType.persistentVolumeClaims.path(namespace: "devpod", name: "home") == "/api/v1/namespaces/devpod/persistentvolumeclaims/home")
        #expect(ResourceType.deployments.path(namespace: "devpod", name: "ws", subresource: "scale") == "/apis/apps/v1/namespaces/devpod/deployments/ws/scale")
        #expect(ResourceType.persistentVolumes.path(namespace: "ignored", name: "pvc-1") == "/api/v1/persistentvolumes/pvc-1")
        #expect(ResourceType.longhornVolumes.path(namespace: "longhorn-system") == "/apis/longhorn.io/v1beta2/namespaces/longhorn-system/volumes")
        #expect(ResourceType.deployments.description == "deployments.apps")
        #expect(KubeClient.escape("app=web,tier!=db") == "app%3Dweb%2Ctier%21%3Ddb")
        #expect(KubeClient.escape("a+b c") == "a%2Bb%20c")
    }

    @Test("a Status body becomes a typed error with its field causes")
    func statusDecoding() {
        let body = #"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"PersistentVolumeClaim \"home\" is invalid: spec.resources.requests.storage: Forbidden: field can not be less than previous value","reason":"Invalid","details":{"name":"home","kind":"PersistentVolumeClaim","causes":[{"reason":"FieldValueForbidden","message":"Forbidden: field can not be less than previous value","field":"spec.resources.requests.storage"}]},"code":422}"#
        let error = KubeAPIError(response: HTTPResponse(status: 422, headers: [:], body: Data(body.utf8), newConnections: 0, httpVersion: "2"),
                                 verb: "PUT", path: "/api/v1/namespaces/devpod/persistentvolumeclaims/home")
        #expect(error.reason == .invalid)
        #expect(error.causes == [.init(field: "spec.resources.requests.storage", reason: "FieldValueForbidden", message: "Forbidden: field can not be less than previous value")])
        #expect(!error.isRetriable)
        #expect(error.description.hasPrefix("PUT /api/v1/namespaces/devpod/persistentvolumeclaims/home: invalid (422): "))
    }

    @Test("a non-Status error body keeps its text; reasons follow the HTTP code; Retry-After is read")
    func nonStatusBodies() {
        let response = HTTPResponse(status: 503, headers: ["retry-after": ["3"]], body: Data("upstream connect error\n".utf8), newConnections: 0, httpVersion: "1.1")
        let error = KubeAPIError(response: response, verb: "GET", path: "/version")
        #expect(error.reason == .serviceUnavailable)
        #expect(error.message == "upstream connect error")
        #expect(error.retryAfter == .seconds(3))
        #expect(error.isRetriable)
        #expect(KubeAPIError.parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT") == nil)
        for (code, reason) in [(404, KubeAPIError.Reason.notFound), (409, .conflict), (410, .gone), (429, .tooManyRequests), (401, .unauthorized), (403, .forbidden), (500, .internalError), (504, .serverTimeout)] {
            #expect(KubeAPIError.Reason(httpStatus: code) == reason)
        }
    }

    @Test("watch lines decode to events; an ERROR event with 410 is .gone")
    func watchLines() throws {
        let added = try KubeClient.decodeWatchLine(Data(#"{"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"5"}}}"#.utf8), verb: "WATCH", path: "/p")
        guard case .added(let object) = added else { Issue.record("expected ADDED, got \(added)"); return }
        #expect(object[path: "metadata", "name"] == "a")
        let bookmark = try KubeClient.decodeWatchLine(Data(#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"77"}}}"#.utf8), verb: "WATCH", path: "/p")
        guard case .bookmark("77") = bookmark else { Issue.record("expected a bookmark, got \(bookmark)"); return }
        let error = #expect(throws: KubeAPIError.self) {
            try KubeClient.decodeWatchLine(Data(#"{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version: 1 (5)"}}"#.utf8), verb: "WATCH", path: "/p")
        }
        #expect(error?.reason == .gone)
        #expect(throws: KubeAPIError.self) { try KubeClient.decodeWatchLine(Data("not json".utf8), verb: "WATCH", path: "/p") }
    }

    /// Migrate's preflight sends its staging claim and copy pod with dryRun=All; a 5xx there
    /// stopped a run in the real-node fault matrix, where a read's would have been retried.
    @Test("a dryRun=All write changes nothing and is retried like a read after a 5xx; the same write for real is not")
    func dryRunRetriedLikeRead() async throws {
        let scratch = try ScratchDirectory()
        let server = RecordingTransport()
        let path = "/api/v1/namespaces/n/pods"
        let pod: JSON = ["apiVersion": "v1", "kind": "Pod", "metadata": ["name": "p"]]
        server.on(.post, path, query: ["dryRun": "All"], .failure(500, reason: "InternalError", message: "injected"), .object(pod, status: 201))
        server.on(.post, path, .failure(500, reason: "InternalError", message: "injected"), .object(pod, status: 201))
        let client = try KubeClient(connection: try scratch.unreachableConnection(), userAgent: "repave-test/dry-run",
                                    transport: server, retryPolicy: RetryPolicy(initialBackoff: .milliseconds(1)))
        let created = try await client.create(.pods, in: "n", pod, dryRun: true)
        #expect(created[path: "metadata", "name"] == "p")
        #expect(server.requests == ["POST \(path)?dryRun=All", "POST \(path)?dryRun=All"])
        await #expect(throws: KubeAPIError.self) { try await client.create(.pods, in: "n", pod) }
        #expect(server.requests.count == 3, "a real create is not sent twice: \(server.requests)")
    }

    @Test("retry policy: 429 for every verb, other 5xx for reads only (after Retry-After, else with backoff), connection errors for reads or unsent writes")
    func retryPolicy() {
        let policy = RetryPolicy()
        func error(_ status: Int, retryAfter: Duration?) -> KubeAPIError {
            KubeAPIError(reason: .init(httpStatus: status), httpStatus: status, verb: "X", path: "/", message: "", retryAfter: retryAfter)
        }
        #expect(policy.retryAfter(error(429, retryAfter: .seconds(2)), isRead: false, attempt: 1) == .seconds(2))
        #expect(policy.retryAfter(error(503, retryAfter: .seconds(1)), isRead: true, attempt: 1) == .seconds(1))
        #expect(policy.retryAfter(error(503, retryAfter: .seconds(1)), isRead: false, attempt: 1) == nil)
        #expect(policy.retryAfter(error(500, retryAfter: nil), isRead: true, attempt: 1) == nil)
        #expect(policy.retryAfter(error(429, retryAfter: .seconds(600)), isRead: true, attempt: 1) == nil)
        #expect(policy.retryAfter(error(429, retryAfter: .seconds(1)), isRead: true, attempt: 11) == nil)
        #expect(policy.mayRetry(CurlError(code: 56, message: "", operation: ""), isRead: true, attempt: 1))
        #expect(!policy.mayRetry(CurlError(code: 56, message: "", operation: ""), isRead: false, attempt: 1))
        #expect(!policy.mayRetry(CurlError(code: 28, message: "", operation: ""), isRead: false, attempt: 1))
        #expect(policy.mayRetry(CurlError(code: 7, message: "", operation: ""), isRead: false, attempt: 1))
        #expect(!policy.mayRetry(CurlError(code: 60, message: "", operation: ""), isRead: true, attempt: 1))
        #expect(!policy.mayRetry(CurlError(code: 56, message: "", operation: ""), isRead: true, attempt: 6))
        // Without Retry-After: a 429 for any verb and a failed read (5xx) back off; a failed
        // write does not (its outcome is unknown), nor do client errors.
        #expect(policy.backoffRetry(error(429, retryAfter: nil), isRead: false, attempt: 1) == .milliseconds(200))
        #expect(policy.backoffRetry(error(503, retryAfter: nil), isRead: true, attempt: 2) == .milliseconds(400))
        #expect(policy.backoffRetry(error(500, retryAfter: nil), isRead: false, attempt: 1) == nil)
        #expect(policy.backoffRetry(error(409, retryAfter: nil), isRead: true, attempt: 1) == nil)
        #expect(policy.backoffRetry(error(503, retryAfter: nil), isRead: true, attempt: 6) == nil)
        #expect(policy.backoff(attempt: 1) == .milliseconds(200))
        #expect(policy.backoff(attempt: 3) == .milliseconds(800))
        #expect(policy.backoff(attempt: 20) == .seconds(5))
    }

    @Test("rollout status follows kubectl's rules")
    func rolloutStatus() {
        func deployment(generation: Int, observed: Int, replicas: Int, status: Int, updated: Int, available: Int, deadline: Bool = false) -> Deployment {
            var conditions: [JSON] = []
            if deadline { conditions.append(["type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "took too long"]) }
            return Deployment([
                "metadata": ["name": "ws", "generation": .integer(Int64(generation))],
                "spec": ["replicas": .integer(Int64(replicas))],
                "status": ["observedGeneration": .integer(Int64(observed)), "replicas": .integer(Int64(status)),
                           "updatedReplicas": .integer(Int64(updated)), "availableReplicas": .integer(Int64(available)),
                           "conditions": .array(conditions)],
            ])
        }
        #expect(deployment(generation: 2, observed: 2, replicas: 1, status: 1, updated: 1, available: 1).rolloutState == .complete)
        #expect(deployment(generation: 3, observed: 2, replicas: 1, status: 1, updated: 1, available: 1).rolloutState != .complete)
        #expect(deployment(generation: 2, observed: 2, replicas: 1, status: 2, updated: 1, available: 1).rolloutState != .complete)
        #expect(deployment(generation: 2, observed: 2, replicas: 1, status: 1, updated: 1, available: 0).rolloutState != .complete)
        if case .failed = deployment(generation: 2, observed: 2, replicas: 1, status: 1, updated: 0, available: 0, deadline: true).rolloutState {} else {
            Issue.record("ProgressDeadlineExceeded must fail the rollout")
        }
        #expect(Scale(["spec": [:]]).specReplicas == 0)
    }
}

@Suite("kubeconfig parsing errors")
struct KubeconfigErrorTests {
    func parse(_ text: String) throws(KubeconfigError) -> Kubeconfig {
        try Kubeconfig.parse(text, file: "/cfg/kubeconfig")
    }

    @Test("a wrong type names file, line, column and key")
    func wrongType() {
        let error = #expect(throws: KubeconfigError.self) {
            try parse("""
                apiVersion: v1
                clusters:
                - name: lab
                  cluster:
                    server: https://x
                    insecure-skip-tls-verify: maybe
                """)
        }
        #expect(error?.description == "/cfg/kubeconfig:6:31: clusters[lab].cluster.insecure-skip-tls-verify: expected true or false, found 'maybe'")
    }

    @Test("bad base64 in a -data key is reported with its key")
    func badBase64() {
        let error = #expect(throws: KubeconfigError.self) {
            try parse("""
                users:
                - name: jeda
                  user:
                    client-certificate-data: '***not base64***'
                """)
        }
        #expect(error?.key == "users[jeda].user.client-certificate-data")
        #expect(error?.line == 4)
        #expect(error?.problem == "not valid base64")
    }

    @Test("invalid YAML, nameless entries and unsupported exec versions are errors")
    func otherErrors() {
        #expect(throws: KubeconfigError.self) { try parse("clusters: [ {name: a") }
        let nameless = #expect(throws: KubeconfigError.self) { try parse("contexts:\n- context: {cluster: a}\n") }
        #expect(nameless?.key == "contexts[0]")
        let exec = #expect(throws: KubeconfigError.self) {
            try parse("users:\n- name: u\n  user:\n    exec: {command: x, apiVersion: client.authentication.k8s.io/v1alpha1}\n")
        }
        #expect(exec?.problem.contains("v1alpha1") == true)
        let interactive = #expect(throws: KubeconfigError.self) {
            try parse("users:\n- name: u\n  user:\n    exec: {command: x, apiVersion: client.authentication.k8s.io/v1}\n")
        }
        #expect(interactive?.problem.contains("interactiveMode") == true)
    }

    @Test("unknown keys are ignored, as kubectl ignores them; relative paths resolve against the file")
    func lenientAndRelative() throws {
        let config = try parse("""
            preferences: {colors: true}
            clusters:
            - name: lab
              cluster: {server: 'https://127.0.0.1:6443', certificate-authority: certs/ca.crt, future-field: 1}
            users:
            - name: u
              user: {client-certificate: ../u.crt, client-key: /abs/u.key, tokenFile: tok}
            """)
        #expect(config.clusters["lab"]?.certificateAuthority == "/cfg/certs/ca.crt")
        #expect(config.users["u"]?.clientCertificate == "/u.crt")
        #expect(config.users["u"]?.clientKey == "/abs/u.key")
        #expect(config.users["u"]?.tokenFile == "/cfg/tok")
    }
}
