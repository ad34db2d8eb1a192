import Blocking
import CCurl
import CCurlShim
import Foundation
import Logging
import Synchronization

/// An HTTP client for one server over libcurl: TLS per ``TLSConfiguration``, connection reuse
/// across requests, and blocking transfers kept off Swift's cooperative thread pool.
///
/// Each transfer runs on a thread of its own (`curl_easy_perform` blocks for as long as a watch
/// lasts, and the cooperative pool has only as many threads as cores). Idle easy handles go back
/// to a small pool, and each keeps its live connection, so sequential requests cost one TLS
/// handshake in all; concurrent requests open one connection per concurrent transfer.
public final class HTTPSession: Sendable {
    public struct Configuration: Sendable {
        public var tls: TLSConfiguration
        public var userAgent: String
        public var connectTimeout: Duration
        /// Default upper bound for a request that sets none (streams never have one).
        public var requestTimeout: Duration
        /// A response body larger than this fails the request instead of exhausting memory.
        public var maxBodySize: Int
        /// A streamed line longer than this fails the stream.
        public var maxLineLength: Int
        /// Idle handles (and so live connections) kept for reuse.
        public var maxIdleHandles: Int

        public init(
            tls: TLSConfiguration = TLSConfiguration(),
            userAgent: String,
            connectTimeout: Duration = .seconds(10),
            requestTimeout: Duration = .seconds(60),
            maxBodySize: Int = 512 << 20,
            maxLineLength: Int = 64 << 20,
            maxIdleHandles: Int = 4
        ) {
            self.tls = tls
            self.userAgent = userAgent
            self.connectTimeout = connectTimeout
            self.requestTimeout = requestTimeout
            self.maxBodySize = maxBodySize
            self.maxLineLength = maxLineLength
            self.maxIdleHandles = maxIdleHandles
        }
    }

    public let configuration: Configuration
    private let logger: Logger
    private let idle = Mutex<[EasyHandle]>([])
    private let connectionsOpened = Atomic<Int>(0)

    public init(configuration: Configuration, logger: Logger = Logger(label: "repave.curl")) throws(CurlError) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Connections opened by this session so far (every TLS handshake is one).
    public var totalConnectionsOpened: Int { connectionsOpened.load(ordering: .relaxed) }

    /// libcurl's version string, e.g. `7.88.1`.
    public static var curlVersion: String { CurlGlobal.version }

    /// Sends the request and collects the whole response. An HTTP error status is a response,
    /// not an error; a `CurlError` means the transfer itself failed. Cancelling the calling task
    /// aborts the transfer.
    public func perform(_ request: HTTPRequest) async throws -> HTTPResponse {
        let cancel = CancellationFlag()
        return try await withTaskCancellationHandler {
            try await offPool("curl \(request.method.rawValue)") {
                try self.performBlocking(request, cancel: cancel)
            }
        } onCancel: {
            cancel.cancel()
        }
    }

    /// Streams the response line by line as lines arrive (a Kubernetes watch): first a `.head`
    /// with the status and headers, then one `.line` per newline-terminated record. The stream
    /// ends when the server closes the response, and throws a ``CurlError`` if the transfer fails
    /// or is cancelled (``HTTPLineStream/cancel()`` from any task, or the consumer going away).
    public func lines(_ request: HTTPRequest) -> HTTPLineStream {
        let cancel = CancellationFlag()
        let (stream, continuation) = AsyncThrowingStream<HTTPStreamEvent, any Error>.makeStream()
        continuation.onTermination = { _ in cancel.cancel() }
        let thread = Thread { [self] in
            do {
                _ = try self.performBlocking(request, cancel: cancel, streaming: continuation)
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        thread.name = "curl stream"
        thread.start()
        return HTTPLineStream(events: stream, flag: cancel)
    }

    // MARK: - the blocking transfer (runs on its own thread)

    private func checkoutHandle() throws(CurlError) -> EasyHandle {
        if let handle = idle.withLock({ $0.popLast() }) { return handle }
        return try EasyHandle()
    }

    private func checkin(_ handle: EasyHandle) {
        let limit = configuration.maxIdleHandles
        idle.withLock { handles in
            if handles.count < limit { handles.append(handle) }
        }
    }

    private func performBlocking(
        _ request: HTTPRequest,
        cancel: CancellationFlag,
        streaming continuation: AsyncThrowingStream<HTTPStreamEvent, any Error>.Continuation? = nil
    ) throws -> HTTPResponse {
        assertOffPool("curl \(request.operation)")
        let handle = try checkoutHandle()
        let h = handle.raw

        let state = TransferState(cancel: cancel, maxBodySize: configuration.maxBodySize)
        if let continuation {
            state.splitter = LineSplitter(maxLineLength: configuration.maxLineLength)
            state.onHead = { status, headers in continuation.yield(.head(status: status, headers: headers)) }
            state.onLine = { line in continuation.yield(.line(line)) }
        }
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        defer { errorBuffer.deallocate() }   // runs after the reset below (defers run in reverse)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)

        // libcurl keeps pointers to the slists, the error buffer and the callback state (not
        // copies). Reset the handle before any of them is freed, so that a handle dropped from
        // the pool is never cleaned up while pointing at freed memory. Reset keeps the live
        // connections and the TLS session cache.
        var headerList: UnsafeMutablePointer<curl_slist>?
        var connectTo: UnsafeMutablePointer<curl_slist>?
        defer {
            curl_easy_reset(h)
            curl_slist_free_all(headerList)
            curl_slist_free_all(connectTo)
            checkin(handle)
        }

        let started = ContinuousClock.now
        let setup = OptionSetter(handle: h, operation: request.operation)
        try setup.pointer(CURLOPT_ERRORBUFFER, errorBuffer)
        try configure(setup, request: request, streaming: continuation != nil, connectTo: &connectTo)
        for header in headerLines(for: request) {
            guard let appended = curl_slist_append(headerList, header) else {
                throw CurlError(code: Int32(CURLE_OUT_OF_MEMORY.rawValue), message: "out of memory building headers", operation: request.operation)
            }
            headerList = appended
        }
        try setup.slist(CURLOPT_HTTPHEADER, headerList)

        let userdata = Unmanaged.passUnretained(state).toOpaque()
        try setup.write(CURLOPT_WRITEFUNCTION, curlWriteFunction)
        try setup.pointer(CURLOPT_WRITEDATA, userdata)
        try setup.write(CURLOPT_HEADERFUNCTION, curlHeaderFunction)
        try setup.pointer(CURLOPT_HEADERDATA, userdata)
        try setup.long(CURLOPT_NOPROGRESS, 0)
        try curlCheck(ccurl_setopt_xferinfo_function(h, curlProgressFunction), "\(request.operation): set the progress callback")
        try setup.pointer(CURLOPT_XFERINFODATA, userdata)

        let code = withExtendedLifetime(state) { curl_easy_perform(h) }

        var connects = 0
        ccurl_getinfo_long(h, CURLINFO_NUM_CONNECTS, &connects)
        connectionsOpened.add(connects, ordering: .relaxed)
        let elapsed = ContinuousClock.now - started

        if code != CURLE_OK {
            var error = CurlError(code: Int32(bitPattern: code.rawValue), message: curlMessage(code, errorBuffer), operation: request.operation)
            if state.bodyTooLarge {
                error = CurlError(code: error.code, message: "response body exceeds \(configuration.maxBodySize) bytes", operation: request.operation)
            } else if state.lineTooLong {
                error = CurlError(code: error.code, message: "a streamed line exceeds \(configuration.maxLineLength) bytes", operation: request.operation)
            } else if cancel.isCancelled {
                error = CurlError(code: Int32(CURLE_ABORTED_BY_CALLBACK.rawValue), message: "cancelled", operation: request.operation)
            }
            logger.debug("request failed", metadata: [
                "request": "\(request.operation)", "error": "\(error.message)", "code": "\(error.code)",
                "ms": "\(elapsed.milliseconds)",
            ])
            throw error
        }
        if continuation != nil {
            if let last = state.splitter?.finish() { state.onLine?(last) }
            state.deliverHeadIfNeeded()
        }
        logger.debug("request done", metadata: [
            "request": "\(request.operation)", "status": "\(state.status)", "http": "\(state.httpVersion)",
            "ms": "\(elapsed.milliseconds)", "newConnections": "\(connects)",
        ])
        return HTTPResponse(status: state.status, headers: state.headers, body: state.body,
                            newConnections: connects, httpVersion: state.httpVersion)
    }

    private func configure(
        _ set: OptionSetter, request: HTTPRequest, streaming: Bool,
        connectTo: inout UnsafeMutablePointer<curl_slist>?
    ) throws(CurlError) {
        let tls = configuration.tls
        var url = request.url
        if let serverName = tls.serverName {
            // kubeconfig tls-server-name: speak TLS (SNI and verification) to `serverName` while
            // connecting to the URL's real host and port.
            let (rewritten, target) = try redirect(url: url, toServerName: serverName, operation: request.operation)
            url = rewritten
            connectTo = curl_slist_append(nil, target)
            guard connectTo != nil else {
                throw CurlError(code: Int32(CURLE_OUT_OF_MEMORY.rawValue), message: "out of memory", operation: request.operation)
            }
            try set.slist(CURLOPT_CONNECT_TO, connectTo)
        }
        try set.string(CURLOPT_URL, url)
        try set.long(CURLOPT_NOSIGNAL, 1)
        try set.string(CURLOPT_PROTOCOLS_STR, "https,http")
        try set.long(CURLOPT_FOLLOWLOCATION, 0)
        try set.long(CURLOPT_TCP_KEEPALIVE, 1)
        try set.string(CURLOPT_ACCEPT_ENCODING, "")
        try set.string(CURLOPT_USERAGENT, configuration.userAgent)
        // Behind an HTTPS_PROXY the proxy's own "200 Connection established" must not be taken
        // for the API server's answer.
        try set.long(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1)
        // libcurl silently resends a request when a reused connection dies before any answer
        // arrives. For a write the server may already have applied, that is a blind retry: give
        // every write a connection of its own (the handle's TLS session cache keeps it cheap).
        if !request.idempotent { try set.long(CURLOPT_FRESH_CONNECT, 1) }
        try set.long(CURLOPT_CONNECTTIMEOUT_MS, configuration.connectTimeout.milliseconds)
        let timeout = streaming ? request.timeout : (request.timeout ?? configuration.requestTimeout)
        try set.long(CURLOPT_TIMEOUT_MS, timeout?.milliseconds ?? 0)

        switch tls.verification {
        case .verify:
            try set.long(CURLOPT_SSL_VERIFYPEER, 1)
            try set.long(CURLOPT_SSL_VERIFYHOST, 2)
        case .disabledByKubeconfig:
            try set.long(CURLOPT_SSL_VERIFYPEER, 0)
            try set.long(CURLOPT_SSL_VERIFYHOST, 0)
        }
        switch tls.trust {
        case .system:
            break
        case .caFile(let path):
            try set.string(CURLOPT_CAINFO, path)
            // Debian's libcurl also trusts its compiled-in CApath (/etc/ssl/certs) next to
            // CAINFO; clearing it means only the cluster's CA can vouch for the server.
            try set.pointer(CURLOPT_CAPATH, nil)
        case .caPEM(let pem):
            try set.pointer(CURLOPT_CAINFO, nil)
            try set.pointer(CURLOPT_CAPATH, nil)
            try set.blob(CURLOPT_CAINFO_BLOB, pem)
        }
        switch tls.clientCertificate {
        case nil: break
        case .file(let path):
            try set.string(CURLOPT_SSLCERT, path)
            try set.string(CURLOPT_SSLCERTTYPE, "PEM")
        case .pem(let pem):
            try set.blob(CURLOPT_SSLCERT_BLOB, pem)
            try set.string(CURLOPT_SSLCERTTYPE, "PEM")
        }
        switch tls.clientKey {
        case nil: break
        case .file(let path):
            try set.string(CURLOPT_SSLKEY, path)
            try set.string(CURLOPT_SSLKEYTYPE, "PEM")
        case .pem(let pem):
            try set.blob(CURLOPT_SSLKEY_BLOB, pem)
            try set.string(CURLOPT_SSLKEYTYPE, "PEM")
        }

        switch request.method {
        case .get:
            try set.long(CURLOPT_HTTPGET, 1)
        case .post, .put, .patch, .delete:
            try set.string(CURLOPT_CUSTOMREQUEST, request.method.rawValue)
        }
        if let body = request.body {
            try set.off(CURLOPT_POSTFIELDSIZE_LARGE, body.count)
            // COPYPOSTFIELDS: libcurl keeps its own copy, so `body` may go away.
            let code = body.withUnsafeBytes { bytes in
                let empty: StaticString = ""
                return ccurl_setopt_ptr(set.handle, CURLOPT_COPYPOSTFIELDS, bytes.baseAddress ?? UnsafeRawPointer(empty.utf8Start))
            }
            try curlCheck(code, "\(request.operation): set the request body")
        } else if request.method != .get {
            try set.long(CURLOPT_NOBODY, 0)
        }
    }

    private func headerLines(for request: HTTPRequest) -> [String] {
        // "Expect:" stops libcurl from waiting for a 100 Continue before sending larger bodies.
        var lines = ["Expect:"]
        if configuration.tls.serverName != nil, let components = URLComponents(string: request.url), let host = components.host {
            // The URL is rewritten to the TLS server name; the Host header keeps the real
            // address, as client-go sends it.
            lines.append("Host: \(host.contains(":") ? "[\(host)]" : host)\(components.port.map { ":\($0)" } ?? "")")
        }
        for header in request.headers { lines.append("\(header.name): \(header.value)") }
        if let authorization = request.authorization {
            lines.append("Authorization: \(authorization.headerValue)")
        }
        return lines
    }

    private func redirect(url: String, toServerName serverName: String, operation: String) throws(CurlError) -> (String, String) {
        guard var components = URLComponents(string: url), let host = components.host else {
            throw CurlError(code: Int32(CURLE_URL_MALFORMAT.rawValue), message: "cannot parse the URL", operation: operation)
        }
        let port = components.port ?? (components.scheme == "http" ? 80 : 443)
        components.host = serverName
        components.port = port
        // CONNECT_TO wants a bare IPv6 address in brackets, like a URL host.
        let target = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return (components.string ?? url, "\(serverName):\(port):\(target):\(port)")
    }
}

/// The events of ``HTTPSession/lines(_:)``.
public enum HTTPStreamEvent: Sendable {
    case head(status: Int, headers: [String: [String]])
    case line(Data)
}

/// A streamed response. Iterate it once; ``cancel()`` aborts the transfer from any task.
public struct HTTPLineStream: AsyncSequence, Sendable {
    public typealias Element = HTTPStreamEvent
    let events: AsyncThrowingStream<HTTPStreamEvent, any Error>
    let flag: CancellationFlag

    /// A stream made by something other than a session (a test decorator); ``cancel()`` sets `flag`.
    public init(events: AsyncThrowingStream<HTTPStreamEvent, any Error>, flag: CancellationFlag) {
        self.events = events
        self.flag = flag
    }

    public func cancel() {
        flag.cancel()
    }

    public func makeAsyncIterator() -> AsyncThrowingStream<HTTPStreamEvent, any Error>.AsyncIterator {
        events.makeAsyncIterator()
    }
}

/// `curl_easy_setopt` through the shim, each failure a ``CurlError`` naming the request.
struct OptionSetter {
    let handle: UnsafeMutableRawPointer
    let operation: String

    private func check(_ code: CURLcode, _ option: CURLoption) throws(CurlError) {
        try curlCheck(code, "\(operation): set curl option \(option.rawValue)")
    }

    func long(_ option: CURLoption, _ value: Int) throws(CurlError) {
        try check(ccurl_setopt_long(handle, option, value), option)
    }

    func off(_ option: CURLoption, _ value: Int) throws(CurlError) {
        try check(ccurl_setopt_off(handle, option, value), option)
    }

    func string(_ option: CURLoption, _ value: String) throws(CurlError) {
        try check(ccurl_setopt_string(handle, option, value), option)
    }

    func pointer(_ option: CURLoption, _ value: UnsafeRawPointer?) throws(CurlError) {
        try check(ccurl_setopt_ptr(handle, option, value), option)
    }

    func blob(_ option: CURLoption, _ value: Data) throws(CurlError) {
        let code = value.withUnsafeBytes { ccurl_setopt_blob(handle, option, $0.baseAddress, $0.count) }
        try check(code, option)
    }

    func slist(_ option: CURLoption, _ list: UnsafeMutablePointer<curl_slist>?) throws(CurlError) {
        try check(ccurl_setopt_slist(handle, option, list), option)
    }

    func write(_ option: CURLoption, _ function: curl_write_callback) throws(CurlError) {
        try check(ccurl_setopt_write_function(handle, option, function), option)
    }

}

extension Duration {
    /// Whole milliseconds (curl's timeouts, log metadata).
    public var milliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }

    /// Fractional seconds, for people to read ("12.3s").
    public var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// The seam between the Kubernetes client and the network: ``HTTPSession`` in production, a
/// fault-injecting decorator around it in tests.
public protocol HTTPTransport: Sendable {
    func perform(_ request: HTTPRequest) async throws -> HTTPResponse
    func lines(_ request: HTTPRequest) -> HTTPLineStream
}

extension HTTPSession: HTTPTransport {}

