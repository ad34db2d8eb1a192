import Curl
import Foundation
import Synchronization

/// Wraps a real transport and, where `decide` says so, answers for the server: an error status,
/// a dropped connection, a watch that ends in 410 Gone. Every request is recorded, so tests can
/// check what was sent (and that no write was sent twice).
public final class FaultInjectingTransport: HTTPTransport {
    public enum Fault: Sendable {
        /// Answer with this status (and Retry-After when given) without reaching the server.
        case status(Int, retryAfter: Int? = nil)
        /// Fail the transfer as libcurl would (7: could not connect, 56: connection reset).
        case curlError(Int32)
        /// Forward the request, then drop the answer: the server did it, the client did not hear.
        case afterApplied(Int32)
        /// For watches: one ERROR event with code 410, then the stream ends.
        case watchGone
    }

    public struct Sent: Sendable {
        public let method: HTTPMethod
        public let url: String
        public let faulted: Bool
    }

    private let inner: any HTTPTransport
    private let decide: @Sendable (HTTPRequest, Int) -> Fault?
    private let log = Mutex<[Sent]>([])

    /// - Parameter decide: called with each request and its 1-based index; nil passes it through.
    public init(_ inner: any HTTPTransport, decide: @escaping @Sendable (HTTPRequest, Int) -> Fault?) {
        self.inner = inner
        self.decide = decide
    }

    public var sent: [Sent] { log.withLock { $0 } }

    private func record(_ request: HTTPRequest) -> Fault? {
        let index = log.withLock { $0.count + 1 }
        let fault = decide(request, index)
        log.withLock { $0.append(Sent(method: request.method, url: request.url, faulted: fault != nil)) }
        return fault
    }

    public func perform(_ request: HTTPRequest) async throws -> HTTPResponse {
        switch record(request) {
        case nil:
            return try await inner.perform(request)
        case .status(let code, let retryAfter)?:
            let body = #"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected \#(code)","code":\#(code)}"#
            return HTTPResponse(status: code, headers: retryAfter.map { ["retry-after": [String($0)]] } ?? [:],
                                body: Data(body.utf8), newConnections: 0, httpVersion: "1.1")
        case .curlError(let code)?:
            throw CurlError(code: code, message: "injected failure", operation: request.operation)
        case .afterApplied(let code)?:
            _ = try await inner.perform(request)
            throw CurlError(code: code, message: "injected failure after the server applied the request", operation: request.operation)
        case .watchGone?:
            return try await inner.perform(request)
        }
    }

    public func lines(_ request: HTTPRequest) -> HTTPLineStream {
        switch record(request) {
        case .watchGone?:
            let line = #"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: injected","reason":"Expired","code":410}}"#
            let (stream, continuation) = AsyncThrowingStream<HTTPStreamEvent, any Error>.makeStream()
            continuation.yield(.head(status: 200, headers: [:]))
            continuation.yield(.line(Data(line.utf8)))
            continuation.finish()
            return HTTPLineStream(events: stream, flag: CancellationFlag())
        case .status(let code, _)?:
            let (stream, continuation) = AsyncThrowingStream<HTTPStreamEvent, any Error>.makeStream()
            continuation.yield(.head(status: code, headers: [:]))
            continuation.yield(.line(Data(#"{"kind":"Status","apiVersion":"v1","code":\#(code),"message":"injected"}"#.utf8)))
            continuation.finish()
            return HTTPLineStream(events: stream, flag: CancellationFlag())
        case .curlError(let code)?, .afterApplied(let code)?:
            let (stream, continuation) = AsyncThrowingStream<HTTPStreamEvent, any Error>.makeStream()
            continuation.finish(throwing: CurlError(code: code, message: "injected stream failure", operation: request.operation))
            return HTTPLineStream(events: stream, flag: CancellationFlag())
        case nil:
            return inner.lines(request)
        }
    }
}
