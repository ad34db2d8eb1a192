import CCurl

/// A transfer that libcurl could not complete: the connection, TLS or the transfer itself failed.
/// An HTTP error status is not a `CurlError`; it arrives as an ``HTTPResponse``.
public struct CurlError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The caller cancelled the transfer.
        case cancelled
        /// A connect or total timeout expired.
        case timedOut
        /// The server's certificate did not verify against the trusted CA.
        case serverCertificateRejected
        /// The TLS handshake failed, or the server rejected our client certificate or key.
        case tlsHandshake
        /// The host could not be resolved or the connection was refused or reset.
        case connection
        /// The options we set were refused (bad PEM, unsupported protocol, ...).
        case configuration
        /// Anything else libcurl reports.
        case other
    }

    /// libcurl's `CURLcode`.
    public let code: Int32
    /// The error buffer's text, or `curl_easy_strerror` when the buffer is empty.
    public let message: String
    /// What was being done: `GET https://127.0.0.1:6443/version`, `set CURLOPT_SSLCERT_BLOB`.
    public let operation: String

    public init(code: Int32, message: String, operation: String) {
        self.code = code
        self.message = message
        self.operation = operation
    }

    public var kind: Kind {
        switch CURLcode(rawValue: UInt32(bitPattern: code)) {
        case CURLE_ABORTED_BY_CALLBACK: .cancelled
        case CURLE_OPERATION_TIMEDOUT: .timedOut
        case CURLE_PEER_FAILED_VERIFICATION: .serverCertificateRejected
        // With TLS 1.3 a rejected client certificate shows up after the handshake, as a send or
        // receive error (55/56) depending on timing; with TLS 1.2 as 35. Bad local key or cert: 58.
        case CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_SSL_ENGINE_NOTFOUND:
            .tlsHandshake
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT, CURLE_SEND_ERROR, CURLE_RECV_ERROR,
             CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_HTTP2, CURLE_HTTP2_STREAM:
            .connection
        case CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT, CURLE_BAD_FUNCTION_ARGUMENT,
             CURLE_UNKNOWN_OPTION, CURLE_SSL_CACERT_BADFILE, CURLE_NOT_BUILT_IN:
            .configuration
        default: .other
        }
    }

    /// Whether the request may not have reached the server at all (so a read can be retried).
    public var isConnectionError: Bool {
        kind == .connection || kind == .timedOut
    }

    public var description: String {
        "\(operation): curl error \(code): \(message)"
    }
}

func curlCheck(_ code: CURLcode, _ operation: @autoclosure () -> String, errorBuffer: UnsafePointer<CChar>? = nil) throws(CurlError) {
    guard code != CURLE_OK else { return }
    throw CurlError(code: Int32(bitPattern: code.rawValue), message: curlMessage(code, errorBuffer), operation: operation())
}

func curlMessage(_ code: CURLcode, _ errorBuffer: UnsafePointer<CChar>?) -> String {
    if let errorBuffer, errorBuffer.pointee != 0 {
        return String(cString: errorBuffer)
    }
    return String(cString: curl_easy_strerror(code))
}
