import Foundation

public enum HTTPMethod: String, Sendable, Equatable {
    case get = "GET"
    case post = "POST"
    case put = "PUT"
    case patch = "PATCH"
    case delete = "DELETE"
}

/// Credentials sent in the `Authorization` header. Kept apart from ordinary headers so that
/// nothing that logs a request can print them: `description` is always redacted.
public enum HTTPAuthorization: Sendable, Equatable, CustomStringConvertible {
    case bearer(String)
    case basic(username: String, password: String)

    var headerValue: String {
        switch self {
        case .bearer(let token): "Bearer \(token)"
        case .basic(let user, let password): "Basic \(Data("\(user):\(password)".utf8).base64EncodedString())"
        }
    }

    public var description: String {
        switch self {
        case .bearer: "Bearer <redacted>"
        case .basic(let user, _): "Basic \(user):<redacted>"
        }
    }
}

public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    /// An absolute `https://` (or `http://`) URL.
    public var url: String
    public var headers: [(name: String, value: String)]
    public var authorization: HTTPAuthorization?
    public var body: Data?
    /// Upper bound for the whole transfer; `nil` means none (watches), else the session default.
    public var timeout: Duration?
    /// Safe to send again: a GET, or a POST that changes nothing (an access review). Anything
    /// else gets a connection of its own, so libcurl never resends it by itself.
    public var idempotent: Bool

    public init(
        _ method: HTTPMethod, _ url: String,
        headers: [(name: String, value: String)] = [],
        authorization: HTTPAuthorization? = nil,
        body: Data? = nil,
        timeout: Duration? = nil,
        idempotent: Bool? = nil
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.authorization = authorization
        self.body = body
        self.timeout = timeout
        self.idempotent = idempotent ?? (method == .get)
    }

    /// `GET https://…`: what errors and logs call this request. Never contains credentials.
    public var operation: String { "\(method.rawValue) \(url)" }
}

public struct HTTPResponse: Sendable {
    public let status: Int
    /// Header names lowercased; a repeated header keeps every value in order.
    public let headers: [String: [String]]
    public let body: Data
    /// Connections this transfer had to open (CURLINFO_NUM_CONNECTS): 0 when it reused one.
    public let newConnections: Int
    /// The HTTP version negotiated: "1.1" or "2".
    public let httpVersion: String

    public init(status: Int, headers: [String: [String]], body: Data, newConnections: Int, httpVersion: String) {
        self.status = status
        self.headers = headers
        self.body = body
        self.newConnections = newConnections
        self.httpVersion = httpVersion
    }

    public func header(_ name: String) -> String? {
        headers[name.lowercased()]?.first
    }

    public var isSuccess: Bool { (200..<300).contains(status) }
}
