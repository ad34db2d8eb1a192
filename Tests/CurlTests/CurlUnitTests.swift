import Foundation
import Testing

@testable import Curl

@Suite("Curl without a server")
struct CurlUnitTests {
    @Test("line splitter reassembles lines from chunks of every size", arguments: [1, 2, 3, 7, 64, 4096])
    func lineSplitting(chunkSize: Int) {
        let lines = ["{\"type\":\"ADDED\"}", "{\"type\":\"MODIFIED\",\"é\":\"ü\"}", "", "{\"type\":\"DELETED\"}"]
        let stream = Data((lines.joined(separator: "\n") + "\n{\"partial\":1}").utf8)
        var splitter = LineSplitter(maxLineLength: 1 << 20)
        var received: [String] = []
        var offset = 0
        while offset < stream.count {
            let end = min(offset + chunkSize, stream.count)
            let chunk = stream.subdata(in: offset..<end)
            let out = chunk.withUnsafeBytes { splitter.append($0) }
            received += (out ?? []).map { String(decoding: $0, as: UTF8.self) }
            offset = end
        }
        if let last = splitter.finish() { received.append(String(decoding: last, as: UTF8.self)) }
        // Empty lines are dropped: a watch never sends them, and they carry nothing.
        #expect(received == lines.filter { !$0.isEmpty } + ["{\"partial\":1}"])
    }

    @Test("line splitter refuses a line longer than its limit")
    func lineTooLong() {
        var splitter = LineSplitter(maxLineLength: 8)
        let ok = Data("12345678\n".utf8).withUnsafeBytes { splitter.append($0) }
        #expect(ok?.count == 1)
        let tooLong = Data("123456789".utf8).withUnsafeBytes { splitter.append($0) }
        #expect(tooLong == nil)
    }

    @Test("credentials never appear in a request's description")
    func authorizationIsRedacted() {
        let bearer = HTTPAuthorization.bearer("s3cr3t-token")
        let basic = HTTPAuthorization.basic(username: "jeda", password: "hunter2")
        #expect(!"\(bearer)".contains("s3cr3t"))
        #expect(!"\(basic)".contains("hunter2"))
        #expect("\(basic)".contains("jeda"))
        #expect(bearer.headerValue == "Bearer s3cr3t-token")
        #expect(basic.headerValue == "Basic " + Data("jeda:hunter2".utf8).base64EncodedString())
        let request = HTTPRequest(.get, "https://127.0.0.1:6443/version", authorization: bearer)
        #expect(!request.operation.contains("s3cr3t"))
    }

    @Test("curl codes map to kinds the client can act on")
    func errorKinds() {
        func kind(_ code: Int32) -> CurlError.Kind { CurlError(code: code, message: "", operation: "GET x").kind }
        #expect(kind(60) == .serverCertificateRejected)
        #expect(kind(28) == .timedOut)
        #expect(kind(42) == .cancelled)
        #expect(kind(7) == .connection)
        #expect(kind(56) == .connection)
        #expect(kind(58) == .tlsHandshake)
        #expect(kind(1) == .configuration)
        #expect(CurlError(code: 7, message: "", operation: "").isConnectionError)
        #expect(!CurlError(code: 60, message: "", operation: "").isConnectionError)
    }

    @Test("a refused connection is a connection error naming the request")
    func connectionRefused() async throws {
        // Port 1 on loopback: nothing listens there, so the kernel refuses at once.
        let session = try HTTPSession(configuration: .init(userAgent: "repave-test", connectTimeout: .seconds(2)))
        let error = await #expect(throws: CurlError.self) {
            try await session.perform(HTTPRequest(.get, "https://127.0.0.1:1/version"))
        }
        #expect(error?.kind == .connection)
        #expect(error?.operation == "GET https://127.0.0.1:1/version")
    }
}
