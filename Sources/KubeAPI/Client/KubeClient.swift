import Curl
import Foundation
import Logging

/// A Kubernetes API client over libcurl that behaves like client-go where it matters: Status
/// errors, bounded retries that never repeat a write blindly, watches that survive dropped
/// streams and 410 Gone, and a `dryRun` switch on every mutating verb.
public final class KubeClient: Sendable {
    public let connection: ClusterConnection
    public let retryPolicy: RetryPolicy
    let transport: any HTTPTransport
    let credentials: CredentialSource
    let logger: Logger

    /// - Parameter transport: nil builds an ``HTTPSession`` from the connection's TLS settings;
    ///   tests pass a decorator around one.
    public init(
        connection: ClusterConnection,
        userAgent: String,
        transport: (any HTTPTransport)? = nil,
        retryPolicy: RetryPolicy = RetryPolicy(),
        logger: Logger = Logger(label: "repave.kube")
    ) throws {
        self.connection = connection
        self.retryPolicy = retryPolicy
        self.logger = logger
        // REPAVE_FAULTS (debug builds) puts seeded API faults between the two; see SeededFaults.
        self.transport = try transport ?? SeededFaults.wrapping(HTTPSession(
            configuration: .init(tls: connection.tls, userAgent: userAgent), logger: logger))
        self.credentials = CredentialSource(connection: connection, logger: logger)
        for warning in connection.warnings { logger.warning("\(warning)") }
    }

    /// TLS connections the built-in transport has opened (0 for an injected transport).
    public var transportConnectionsOpened: Int {
        (transport as? HTTPSession)?.totalConnectionsOpened ?? 0
    }

    /// Exec-plugin runs so far (a cached credential is not re-fetched).
    public var credentialFetches: Int {
        get async { await credentials.execRuns }
    }

    // MARK: - requests

    /// One API request; the body is JSON unless `contentType` says otherwise.
    public struct Request: Sendable {
        public var method: HTTPMethod
        public var path: String
        public var query: [(String, String)]
        public var body: Data?
        public var contentType: String
        public var timeout: Duration?
        /// A request that changes nothing (an access or rules review, a `dryRun=All` write):
        /// retried like a read. (A dry run's 5xx stopped migrate's preflight as "refused" in the
        /// real-node fault matrix.)
        public var readOnly: Bool
        /// What the answer may be: JSON, except for a pod's log.
        public var accept = "application/json"

        public init(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: Data? = nil,
                    contentType: String = "application/json", timeout: Duration? = nil, readOnly: Bool = false) {
            self.method = method
            self.path = path
            self.query = query
            self.body = body
            self.contentType = contentType
            self.timeout = timeout
            self.readOnly = readOnly
        }

        var isRead: Bool { method == .get || readOnly }
    }

    func url(_ path: String, _ query: [(String, String)]) -> String {
        var url = connection.server.hasSuffix("/") ? String(connection.server.dropLast()) : connection.server
        url += path
        if !query.isEmpty {
            url += "?" + query.map { "\(Self.escape($0.0))=\(Self.escape($0.1))" }.joined(separator: "&")
        }
        return url
    }

    /// Strict query escaping: selectors carry `=`, `,` and `!`; a `+` would read as a space.
    static func escape(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    func httpRequest(_ request: Request, authorization: HTTPAuthorization?) -> HTTPRequest {
        var headers: [(name: String, value: String)] = [("Accept", request.accept)]
        if request.body != nil { headers.append(("Content-Type", request.contentType)) }
        if let user = connection.impersonateUser { headers.append(("Impersonate-User", user)) }
        for group in connection.impersonateGroups { headers.append(("Impersonate-Group", group)) }
        return HTTPRequest(request.method, url(request.path, request.query), headers: headers,
                           authorization: authorization, body: request.body, timeout: request.timeout, idempotent: request.isRead)
    }

    /// Sends a request, retrying only where that is safe, and returns a 2xx response or throws
    /// ``KubeAPIError`` (the server said no) or `CurlError` (the transfer failed).
    ///
    /// Retries, like client-go: a 429 with Retry-After is retried for every verb (the server did
    /// not process the request); 5xx answers and connection failures are retried for reads only
    /// (after Retry-After when the server sent one, else with backoff); a write whose outcome is
    /// unknown is never repeated here — the caller settles it by reading the cluster. A 401 with
    /// a refreshable credential (exec plugin, token file) refreshes it once.
    @discardableResult
    public func send(_ request: Request) async throws -> HTTPResponse {
        var attempt = 0
        var refreshedCredential = false
        while true {
            attempt += 1
            let authorization = try await credentials.authorization()
            let response: HTTPResponse
            do {
                response = try await transport.perform(httpRequest(request, authorization: authorization))
            } catch let error as CurlError {
                guard retryPolicy.mayRetry(error, isRead: request.isRead, attempt: attempt) else { throw error }
                let delay = retryPolicy.backoff(attempt: attempt)
                logger.info("retrying after a connection error", metadata: [
                    "request": "\(request.method.rawValue) \(request.path)", "error": "\(error.message)", "delayMs": "\(delay.milliseconds)"])
                try await Task.sleep(for: delay)
                continue
            }
            if (200..<300).contains(response.status) { return response }
            let error = KubeAPIError(response: response, verb: request.method.rawValue, path: request.path)
            if response.status == 401, credentials.canRefresh, !refreshedCredential {
                refreshedCredential = true
                await credentials.invalidate()
                continue
            }
            if let delay = retryPolicy.retryAfter(error, isRead: request.isRead, attempt: attempt)
                ?? retryPolicy.backoffRetry(error, isRead: request.isRead, attempt: attempt) {
                logger.info("server asked to retry", metadata: [
                    "request": "\(request.method.rawValue) \(request.path)", "status": "\(response.status)", "retryAfterMs": "\(delay.milliseconds)"])
                try await Task.sleep(for: delay)
                continue
            }
            throw error
        }
    }

    // MARK: - verbs

    /// GET one object.
    public func get(_ type: ResourceType, named name: String, in namespace: String? = nil) async throws -> JSON {
        try await decode(send(Request(.get, type.path(namespace: namespace, name: name))))
    }

    /// GET one object, or nil when it does not exist. A 404 that is not the API server's
    /// Status (the resource type itself is not served) is an error, not an absent object.
    public func getIfPresent(_ type: ResourceType, named name: String, in namespace: String? = nil) async throws -> JSON? {
        do {
            return try await get(type, named: name, in: namespace)
        } catch let error as KubeAPIError where error.reason == .notFound && error.isStatus {
            return nil
        }
    }

    /// GET a subresource (`scale`, `status`).
    public func get(_ type: ResourceType, named name: String, in namespace: String?, subresource: String) async throws -> JSON {
        try await decode(send(Request(.get, type.path(namespace: namespace, name: name, subresource: subresource))))
    }

    /// A list's items and the resourceVersion to watch from.
    public struct ObjectList: Sendable {
        public var items: [JSON]
        public var resourceVersion: String
    }

    /// LIST, following `continue` tokens until the collection is complete.
    public func list(
        _ type: ResourceType, in namespace: String? = nil,
        labelSelector: String? = nil, fieldSelector: String? = nil, pageSize: Int = 500
    ) async throws -> ObjectList {
        var items: [JSON] = []
        var continueToken: String?
        var resourceVersion = ""
        repeat {
            var query: [(String, String)] = [("limit", String(pageSize))]
            if let labelSelector { query.append(("labelSelector", labelSelector)) }
            if let fieldSelector { query.append(("fieldSelector", fieldSelector)) }
            if let continueToken { query.append(("continue", continueToken)) }
            let page = try await decode(send(Request(.get, type.path(namespace: namespace), query: query)))
            items += page["items"]?.arrayValue ?? []
            // The first page's resourceVersion is the list's snapshot; later pages repeat it.
            if resourceVersion.isEmpty { resourceVersion = page[path: "metadata", "resourceVersion"]?.stringValue ?? "" }
            continueToken = page[path: "metadata", "continue"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        } while continueToken != nil
        return ObjectList(items: items, resourceVersion: resourceVersion)
    }

    /// POST a new object (name-idempotent: an existing name is `.alreadyExists`).
    @discardableResult
    public func create(_ type: ResourceType, in namespace: String? = nil, _ object: JSON, dryRun: Bool = false) async throws -> JSON {
        try await decode(send(Request(.post, type.path(namespace: namespace), query: dryRunQuery(dryRun), body: object.encoded(), readOnly: dryRun)))
    }

    /// PUT the whole object; its `metadata.resourceVersion` guards against lost updates (409).
    @discardableResult
    public func update(_ type: ResourceType, _ object: JSON, subresource: String? = nil, dryRun: Bool = false) async throws -> JSON {
        guard let name = object[path: "metadata", "name"]?.stringValue else {
            throw KubeAPIError(reason: .invalid, httpStatus: 0, verb: "PUT", path: type.path(), message: "the object has no metadata.name")
        }
        let namespace = object[path: "metadata", "namespace"]?.stringValue
        return try await decode(send(Request(
            .put, type.path(namespace: namespace, name: name, subresource: subresource), query: dryRunQuery(dryRun), body: object.encoded(), readOnly: dryRun)))
    }

    public enum Patch: Sendable {
        /// RFC 7386 merge patch: objects merge, `null` deletes, lists are replaced.
        case merge(JSON)
        /// RFC 6902 JSON patch: a list of operations, `test` included.
        case json([JSON])

        var contentType: String {
            switch self {
            case .merge: "application/merge-patch+json"
            case .json: "application/json-patch+json"
            }
        }

        var body: Data {
            switch self {
            case .merge(let document): document.encoded()
            case .json(let operations): JSON.array(operations).encoded()
            }
        }
    }

    /// PATCH an object or a subresource.
    @discardableResult
    public func patch(
        _ type: ResourceType, named name: String, in namespace: String? = nil, _ patch: Patch,
        subresource: String? = nil, dryRun: Bool = false
    ) async throws -> JSON {
        try await decode(send(Request(
            .patch, type.path(namespace: namespace, name: name, subresource: subresource), query: dryRunQuery(dryRun),
            body: patch.body, contentType: patch.contentType, readOnly: dryRun)))
    }

    public enum PropagationPolicy: String, Sendable {
        case orphan = "Orphan"
        case background = "Background"
        case foreground = "Foreground"
    }

    /// DELETE one object. The uid precondition is required: a same-named object created by
    /// someone else since we looked is never deleted (409 instead). Returns the object as the
    /// server answered (still present with a deletionTimestamp when finalizers hold it) or the
    /// Status it sent.
    @discardableResult
    public func delete(
        _ type: ResourceType, named name: String, in namespace: String? = nil,
        uid: String, resourceVersion: String? = nil,
        propagationPolicy: PropagationPolicy? = nil, gracePeriodSeconds: Int? = nil, dryRun: Bool = false
    ) async throws -> JSON {
        var preconditions: JSON = ["uid": .string(uid)]
        if let resourceVersion { preconditions["resourceVersion"] = .string(resourceVersion) }
        var options: JSON = ["apiVersion": "v1", "kind": "DeleteOptions", "preconditions": preconditions]
        if let propagationPolicy { options["propagationPolicy"] = .string(propagationPolicy.rawValue) }
        if let gracePeriodSeconds { options["gracePeriodSeconds"] = .integer(Int64(gracePeriodSeconds)) }
        if dryRun { options["dryRun"] = ["All"] }
        return try await decode(send(Request(
            .delete, type.path(namespace: namespace, name: name), query: dryRunQuery(dryRun), body: options.encoded(), readOnly: dryRun)))
    }

    /// POST a subresource such as `pods/NAME/binding`.
    @discardableResult
    public func create(_ type: ResourceType, named name: String, in namespace: String?, subresource: String, _ object: JSON, dryRun: Bool = false) async throws -> JSON {
        try await decode(send(Request(
            .post, type.path(namespace: namespace, name: name, subresource: subresource), query: dryRunQuery(dryRun), body: object.encoded(), readOnly: dryRun)))
    }

    private func dryRunQuery(_ dryRun: Bool) -> [(String, String)] {
        dryRun ? [("dryRun", "All")] : []
    }

    func decode(_ response: HTTPResponse) throws -> JSON {
        do {
            return try JSON.decode(response.body)
        } catch {
            throw KubeAPIError(reason: .unknown, httpStatus: response.status, verb: "decode", path: "",
                               message: "the API server's answer is not JSON: \(String(decoding: response.body.prefix(120), as: UTF8.self))")
        }
    }
}

/// How hard the client tries again, bounded in count and in each wait.
public struct RetryPolicy: Sendable {
    /// Retries after a Retry-After answer.
    public var maxRetries: Int
    /// The longest single wait honoured; a longer Retry-After fails the request instead.
    public var maxRetryAfter: Duration
    /// Retries of a read after a connection error.
    public var maxConnectionRetries: Int
    public var initialBackoff: Duration
    public var maxBackoff: Duration

    public init(maxRetries: Int = 10, maxRetryAfter: Duration = .seconds(60), maxConnectionRetries: Int = 5,
                initialBackoff: Duration = .milliseconds(200), maxBackoff: Duration = .seconds(5)) {
        self.maxRetries = maxRetries
        self.maxRetryAfter = maxRetryAfter
        self.maxConnectionRetries = maxConnectionRetries
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
    }

    func mayRetry(_ error: CurlError, isRead: Bool, attempt: Int) -> Bool {
        guard attempt <= maxConnectionRetries else { return false }
        // Could not resolve or connect: the request never left, so even a write is safe to send.
        let neverSent = error.code == 6 || error.code == 7
        return neverSent || (isRead && error.isConnectionError)
    }

    func backoff(attempt: Int) -> Duration {
        let factor = 1 << min(attempt - 1, 10)
        let delay = initialBackoff * factor
        return delay < maxBackoff ? delay : maxBackoff
    }

    /// A 429, or a read the server failed (5xx), without a word on when to come back: retried
    /// with backoff, as often as a connection failure would be. A 429 was not processed, and
    /// reads change nothing, so repeating either is safe.
    func backoffRetry(_ error: KubeAPIError, isRead: Bool, attempt: Int) -> Duration? {
        guard error.retryAfter == nil, attempt <= maxConnectionRetries,
              error.httpStatus == 429 || (isRead && error.httpStatus >= 500) else { return nil }
        return backoff(attempt: attempt)
    }

    /// The wait before retrying an answered request, or nil when it must not be retried.
    func retryAfter(_ error: KubeAPIError, isRead: Bool, attempt: Int) -> Duration? {
        guard attempt <= maxRetries, let wait = error.retryAfter, wait <= maxRetryAfter else { return nil }
        if error.httpStatus == 429 { return wait }
        if error.httpStatus >= 500 && isRead { return wait }
        return nil
    }
}

