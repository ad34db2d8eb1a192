import Foundation
import RepaveTestSupport
import Testing

@testable import Curl

/// libcurl against the lab's real kube-apiserver: mTLS, tokens, CA pinning, streaming,
/// cancellation and connection reuse.
@Suite("Curl against the lab API server", .serialized)
struct CurlLabTests {
    let lab: Lab

    init() throws {
        lab = try Lab.current()
    }

    func adminTLS(inMemory: Bool = false) throws -> TLSConfiguration {
        if inMemory {
            return TLSConfiguration(
                trust: .caPEM(try Data(contentsOf: URL(fileURLWithPath: lab.caCertificate))),
                clientCertificate: .pem(try Data(contentsOf: URL(fileURLWithPath: lab.adminCertificate))),
                clientKey: .pem(try Data(contentsOf: URL(fileURLWithPath: lab.adminKey))))
        }
        return TLSConfiguration(trust: .caFile(lab.caCertificate), clientCertificate: .file(lab.adminCertificate), clientKey: .file(lab.adminKey))
    }

    func session(_ tls: TLSConfiguration) throws -> HTTPSession {
        try HTTPSession(configuration: .init(tls: tls, userAgent: "repave-test/curl", requestTimeout: .seconds(20)))
    }

    func json(_ data: Data) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// A namespace of its own per test, deleted afterwards.
    func withNamespace(_ session: HTTPSession, _ body: (String) async throws -> Void) async throws {
        let name = "curl-\(UInt32.random(in: 0...UInt32.max))"
        let created = try await session.perform(HTTPRequest(
            .post, lab.apiURL + "/api/v1/namespaces", headers: [("Content-Type", "application/json")],
            body: Data(#"{"metadata":{"name":"\#(name)"}}"#.utf8)))
        #expect(created.status == 201)
        do {
            try await body(name)
        } catch {
            _ = try? await session.perform(HTTPRequest(.delete, lab.apiURL + "/api/v1/namespaces/\(name)"))
            throw error
        }
        _ = try await session.perform(HTTPRequest(.delete, lab.apiURL + "/api/v1/namespaces/\(name)"))
    }

    @Test("client certificate from files: GET /version and /api/v1/namespaces")
    func clientCertificateFiles() async throws {
        let session = try session(try adminTLS())
        let version = try await session.perform(HTTPRequest(.get, lab.apiURL + "/version"))
        #expect(version.status == 200)
        #expect(try json(version.body)["gitVersion"] as? String == "v1.20.2")
        let namespaces = try await session.perform(HTTPRequest(.get, lab.apiURL + "/api/v1/namespaces"))
        #expect(namespaces.status == 200)
        let items = try #require(try json(namespaces.body)["items"] as? [[String: Any]])
        let names = items.compactMap { ($0["metadata"] as? [String: Any])?["name"] as? String }
        #expect(names.contains("default"))
        #expect(names.contains("kube-system"))
    }

    @Test("client certificate, key and CA from in-memory PEM (kubeconfig *-data)")
    func clientCertificateInMemory() async throws {
        let session = try session(try adminTLS(inMemory: true))
        let response = try await session.perform(HTTPRequest(.get, lab.apiURL + "/api/v1/namespaces/kube-system"))
        #expect(response.status == 200)
        #expect(try json(response.body)["kind"] as? String == "Namespace")
    }

    @Test("bearer token authenticates; a wrong token is 401, not a transport error")
    func bearerToken() async throws {
        let session = try session(TLSConfiguration(trust: .caFile(lab.caCertificate)))
        let token = try lab.token()
        let version = try await session.perform(HTTPRequest(.get, lab.apiURL + "/version", authorization: .bearer(token)))
        #expect(version.status == 200)
        let namespaces = try await session.perform(HTTPRequest(.get, lab.apiURL + "/api/v1/namespaces", authorization: .bearer(token)))
        #expect(namespaces.status == 200)
        #expect(try json(namespaces.body)["kind"] as? String == "NamespaceList")
        let wrong = try await session.perform(HTTPRequest(.get, lab.apiURL + "/api/v1/namespaces", authorization: .bearer("not-" + token)))
        #expect(wrong.status == 401)
    }

    @Test("403 for the restricted user arrives as a Status body naming the user")
    func forbiddenIsAStatus() async throws {
        let tls = TLSConfiguration(trust: .caFile(lab.caCertificate), clientCertificate: .file(lab.restrictedCertificate), clientKey: .file(lab.restrictedKey))
        let response = try await session(tls).perform(HTTPRequest(.get, lab.apiURL + "/api/v1/namespaces"))
        #expect(response.status == 403)
        let status = try json(response.body)
        #expect(status["kind"] as? String == "Status")
        #expect(status["reason"] as? String == "Forbidden")
        #expect(status["code"] as? Int == 403)
        #expect((status["message"] as? String)?.contains("restricted-user") == true)
    }

    @Test("a CA that did not sign the server's certificate is rejected, from a file or from memory")
    func wrongCAIsRejected() async throws {
        for trust in [TLSConfiguration.Trust.caFile(lab.otherCACertificate),
                      .caPEM(try Data(contentsOf: URL(fileURLWithPath: lab.otherCACertificate)))] {
            let tls = TLSConfiguration(trust: trust, clientCertificate: .file(lab.adminCertificate), clientKey: .file(lab.adminKey))
            let error = await #expect(throws: CurlError.self) {
                try await session(tls).perform(HTTPRequest(.get, lab.apiURL + "/version"))
            }
            #expect(error?.kind == .serverCertificateRejected)
            #expect(error?.code == 60)
        }
    }

    @Test("the system CA bundle does not vouch for the lab's private CA")
    func systemTrustDoesNotAcceptLabCA() async throws {
        let error = await #expect(throws: CurlError.self) {
            try await session(TLSConfiguration()).perform(HTTPRequest(.get, lab.apiURL + "/version"))
        }
        #expect(error?.kind == .serverCertificateRejected)
    }

    @Test("insecure-skip-tls-verify from a kubeconfig is the only way past a wrong CA")
    func insecureOnlyWhenAsked() async throws {
        var tls = TLSConfiguration(trust: .caFile(lab.otherCACertificate), clientCertificate: .file(lab.adminCertificate), clientKey: .file(lab.adminKey))
        tls.verification = .disabledByKubeconfig
        let response = try await session(tls).perform(HTTPRequest(.get, lab.apiURL + "/version"))
        #expect(response.status == 200)
    }

    @Test("tls-server-name: TLS speaks to the given name while connecting to the URL's host")
    func serverNameOverride() async throws {
        var tls = try adminTLS()
        tls.serverName = "localhost"   // in the serving certificate's SANs
        let ok = try await session(tls).perform(HTTPRequest(.get, lab.apiURL + "/version"))
        #expect(ok.status == 200)
        tls.serverName = "not-the-apiserver.example"
        let error = await #expect(throws: CurlError.self) {
            try await session(tls).perform(HTTPRequest(.get, lab.apiURL + "/version"))
        }
        #expect(error?.kind == .serverCertificateRejected)
    }

    @Test("POST, PUT, PATCH and DELETE with bodies; a stale uid precondition is a 409")
    func writeVerbs() async throws {
        let session = try session(try adminTLS())
        try await withNamespace(session) { namespace in
            let base = lab.apiURL + "/api/v1/namespaces/\(namespace)/configmaps"
            let jsonType = [(name: "Content-Type", value: "application/json")]
            let created = try await session.perform(HTTPRequest(
                .post, base, headers: jsonType, body: Data(#"{"metadata":{"name":"c"},"data":{"a":"1"}}"#.utf8)))
            #expect(created.status == 201)
            var object = try json(created.body)
            let uid = try #require((object["metadata"] as? [String: Any])?["uid"] as? String)

            object["data"] = ["a": "2"]
            let updated = try await session.perform(HTTPRequest(
                .put, base + "/c", headers: jsonType, body: try JSONSerialization.data(withJSONObject: object)))
            #expect(updated.status == 200)
            #expect((try json(updated.body)["data"] as? [String: String])?["a"] == "2")

            let patched = try await session.perform(HTTPRequest(
                .patch, base + "/c", headers: [("Content-Type", "application/merge-patch+json")],
                body: Data(#"{"data":{"b":"3"}}"#.utf8)))
            #expect(patched.status == 200)
            #expect((try json(patched.body)["data"] as? [String: String]) == ["a": "2", "b": "3"])

            let stale = try await session.perform(HTTPRequest(
                .delete, base + "/c", headers: jsonType,
                body: Data(#"{"preconditions":{"uid":"00000000-0000-0000-0000-000000000000"}}"#.utf8)))
            #expect(stale.status == 409)
            let deleted = try await session.perform(HTTPRequest(
                .delete, base + "/c", headers: jsonType, body: Data(#"{"preconditions":{"uid":"\#(uid)"}}"#.utf8)))
            #expect(deleted.status == 200)
            let gone = try await session.perform(HTTPRequest(.get, base + "/c"))
            #expect(gone.status == 404)
        }
    }

    @Test("a watch line arrives while the response is still streaming")
    func streamingLinesArriveEarly() async throws {
        let session = try session(try adminTLS())
        try await withNamespace(session) { namespace in
            let base = lab.apiURL + "/api/v1/namespaces/\(namespace)/configmaps"
            // The server would hold the watch open for 30 s; the event must come long before that.
            let stream = session.lines(HTTPRequest(.get, base + "?watch=1&timeoutSeconds=30"))
            let clock = ContinuousClock()
            let start = clock.now
            var lineArrival: ContinuousClock.Instant?
            var lines: [String] = []
            for try await event in stream {
                switch event {
                case .head(let status, _):
                    #expect(status == 200)
                    let created = try await session.perform(HTTPRequest(
                        .post, base, headers: [("Content-Type", "application/json")],
                        body: Data(#"{"metadata":{"name":"watched"}}"#.utf8)))
                    #expect(created.status == 201)
                case .line(let line):
                    lineArrival = lineArrival ?? clock.now
                    lines.append(String(decoding: line, as: UTF8.self))
                }
                if lineArrival != nil { break }   // stop listening: the stream is still open
            }
            let arrival = try #require(lineArrival)
            #expect(lines.count == 1)
            #expect(lines.first?.contains(#""type":"ADDED""#) == true)
            #expect(lines.first?.contains(#""name":"watched""#) == true)
            // Delivered while the response streams, not when it ends (30 s): even a loaded
            // machine creates the object well within 20 s.
            #expect(arrival - start < .seconds(20), "line at \(arrival - start)")
        }
    }

    @Test("an idle stream cancelled from another task ends promptly with a cancelled error")
    func cancelStream() async throws {
        let session = try session(try adminTLS())
        // Nothing ever happens in this namespace: the transfer is idle when cancelled, so only
        // libcurl's progress callback can notice the flag.
        let stream = session.lines(HTTPRequest(.get, lab.apiURL + "/api/v1/namespaces/repave-idle/configmaps?watch=1&timeoutSeconds=60"))
        let clock = ContinuousClock()
        var cancelledAt: ContinuousClock.Instant?
        let error = await #expect(throws: CurlError.self) {
            for try await event in stream {
                if case .head = event, cancelledAt == nil {
                    cancelledAt = clock.now
                    Task { stream.cancel() }
                }
            }
        }
        #expect(error?.kind == .cancelled)
        let elapsed = clock.now - (cancelledAt ?? clock.now)
        // libcurl polls the cancel flag at least once a second on an idle connection. The bound
        // only has to be well under the watch's own 60 s, which ends it without an error: a
        // loaded make test took 3.5 s here.
        #expect(elapsed < .seconds(20), "stream ended \(elapsed) after cancel")
    }

    @Test("cancelling the task of a blocking request aborts the transfer")
    func cancelPerform() async throws {
        let session = try session(try adminTLS())
        let clock = ContinuousClock()
        let task = Task {
            try await session.perform(HTTPRequest(.get, lab.apiURL + "/api/v1/namespaces?watch=1&timeoutSeconds=30", timeout: .seconds(40)))
        }
        try await Task.sleep(for: .milliseconds(300))
        let start = clock.now
        task.cancel()
        let result = await task.result
        // Well under the watch's own 30 s, after which it would succeed: only the cancel ends it.
        #expect(clock.now - start < .seconds(15))
        #expect(throws: CurlError.self) { try result.get() }
    }

    @Test("a total timeout stops a request that runs too long")
    func totalTimeout() async throws {
        let session = try session(try adminTLS())
        let error = await #expect(throws: CurlError.self) {
            try await session.perform(HTTPRequest(.get, lab.apiURL + "/api/v1/namespaces?watch=1&timeoutSeconds=30", timeout: .milliseconds(500)))
        }
        #expect(error?.kind == .timedOut)
    }

    @Test("50 sequential requests cost one TLS connection", arguments: [false, true])
    func connectionReuse(useToken: Bool) async throws {
        let token = try lab.token()
        let session = try useToken
            ? session(TLSConfiguration(trust: .caFile(lab.caCertificate)))
            : session(try adminTLS())
        var opened = 0
        for _ in 0..<50 {
            let response = try await session.perform(HTTPRequest(
                .get, lab.apiURL + "/api/v1/namespaces/default", authorization: useToken ? .bearer(token) : nil))
            #expect(response.status == 200)
            opened += response.newConnections
        }
        #expect(opened == 1)
        #expect(session.totalConnectionsOpened == 1)
    }

    @Test("concurrent requests each get a connection, and later ones reuse them")
    func concurrentRequests() async throws {
        let session = try session(try adminTLS())
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<4 {
                group.addTask { try await session.perform(HTTPRequest(.get, lab.apiURL + "/version")).status }
            }
            for try await status in group { #expect(status == 200) }
        }
        let afterBurst = session.totalConnectionsOpened
        #expect((1...4).contains(afterBurst))
        for _ in 0..<10 { _ = try await session.perform(HTTPRequest(.get, lab.apiURL + "/version")) }
        #expect(session.totalConnectionsOpened == afterBurst)
    }
}
