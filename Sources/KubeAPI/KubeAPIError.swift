import Curl
import Foundation

/// The API server said no: its `Status` body decoded, with the verb and path that were refused.
public struct KubeAPIError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: String, Sendable, Equatable {
        case badRequest = "BadRequest"
        case unauthorized = "Unauthorized"
        case forbidden = "Forbidden"
        case notFound = "NotFound"
        case methodNotAllowed = "MethodNotAllowed"
        case alreadyExists = "AlreadyExists"
        case conflict = "Conflict"
        case gone = "Gone"
        case expired = "Expired"
        case invalid = "Invalid"
        case unsupportedMediaType = "UnsupportedMediaType"
        case tooManyRequests = "TooManyRequests"
        case internalError = "InternalError"
        case serviceUnavailable = "ServiceUnavailable"
        case serverTimeout = "ServerTimeout"
        case timeout = "Timeout"
        case unknown = "Unknown"

        /// The reason implied by an HTTP code when the body carries none (a proxy's 503, say).
        init(httpStatus: Int) {
            self = switch httpStatus {
            case 400: .badRequest
            case 401: .unauthorized
            case 403: .forbidden
            case 404: .notFound
            case 405: .methodNotAllowed
            case 409: .conflict
            case 410: .gone
            case 415: .unsupportedMediaType
            case 422: .invalid
            case 429: .tooManyRequests
            case 500: .internalError
            case 503: .serviceUnavailable
            case 504: .serverTimeout
            default: .unknown
            }
        }
    }

    /// One invalid field of a 422: `spec.resources.requests.storage: Forbidden: field can not be less than previous value`.
    public struct Cause: Sendable, Equatable {
        public var field: String
        public var reason: String
        public var message: String
    }

    public let reason: Reason
    public let httpStatus: Int
    public let verb: String
    public let path: String
    public let message: String
    public let causes: [Cause]
    /// The server's Retry-After, when it sent one.
    public let retryAfter: Duration?
    /// The answer was an API `Status` object (not a proxy's page or a plain "404 page not
    /// found", which is what an API group that is not installed answers).
    public let isStatus: Bool

    public init(reason: Reason, httpStatus: Int, verb: String, path: String, message: String, causes: [Cause] = [],
                retryAfter: Duration? = nil, isStatus: Bool = true) {
        self.reason = reason
        self.httpStatus = httpStatus
        self.verb = verb
        self.path = path
        self.message = message
        self.causes = causes
        self.retryAfter = retryAfter
        self.isStatus = isStatus
    }

    /// Decodes the response of a failed request. A body that is not a Status keeps its first
    /// 200 characters as the message.
    public init(response: HTTPResponse, verb: String, path: String) {
        let status = try? JSON.decode(response.body)
        var reason = Reason(httpStatus: response.status)
        var message = ""
        var causes: [Cause] = []
        let isStatus = status?["kind"]?.stringValue == "Status"
        if let status, isStatus {
            if let text = status["reason"]?.stringValue, let decoded = Reason(rawValue: text) { reason = decoded }
            message = status["message"]?.stringValue ?? ""
            for cause in status[path: "details", "causes"]?.arrayValue ?? [] {
                causes.append(Cause(field: cause["field"]?.stringValue ?? "", reason: cause["reason"]?.stringValue ?? "",
                                    message: cause["message"]?.stringValue ?? ""))
            }
        } else {
            message = String(String(decoding: response.body.prefix(200), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines))
        }
        if message.isEmpty { message = "HTTP \(response.status)" }
        self.init(reason: reason, httpStatus: response.status, verb: verb, path: path, message: message,
                  causes: causes, retryAfter: response.header("Retry-After").flatMap(Self.parseRetryAfter), isStatus: isStatus)
    }

    /// Retry-After in whole seconds, as client-go reads it (HTTP dates are not used by the API server).
    static func parseRetryAfter(_ value: String) -> Duration? {
        guard let seconds = Int(value.trimmingCharacters(in: .whitespaces)), seconds >= 0 else { return nil }
        return .seconds(seconds)
    }

    /// Whether asking again later can succeed (the server was busy or briefly failing).
    public var isRetriable: Bool {
        switch reason {
        case .tooManyRequests, .serverTimeout, .timeout, .serviceUnavailable, .internalError: true
        default: httpStatus >= 500
        }
    }

    public var description: String {
        var text = "\(verb) \(path): \(reason.rawValue.lowercased()) (\(httpStatus)): \(message)"
        if !causes.isEmpty {
            text += " [" + causes.map { "\($0.field): \($0.message)" }.joined(separator: "; ") + "]"
        }
        return text
    }
}
