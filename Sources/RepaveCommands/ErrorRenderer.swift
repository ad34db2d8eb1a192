import ArgumentParser
import Curl
import Foundation
import Git
import Journal
import KubeAPI
import RepaveCore

/// The one place errors become text: `error[code]: …` / `caused by: …` / `hint: …` on stderr, or with
/// `-o json` one JSON envelope on stdout.
public enum ErrorRenderer {
    /// Any error as a ``UserFacingError``: ours pass through; library errors get a code, a hint
    /// and an exit status; anything else is an internal bug (exit 1).
    public static func userFacing(_ error: any Error) -> any UserFacingError {
        switch error {
        case let error as any UserFacingError:
            return error
        case let error as CurlError:
            return RepaveError(.clusterUnreachable, "failed to \(error.operation)", causes: ["curl error \(error.code): \(error.message)"], hint: hint(for: error))
        case let error as KubeconfigError:
            return RepaveError(.kubeconfigInvalid, "cannot use the kubeconfig: \(error.description)",
                               hint: error.hint ?? "run 'repave config' to see which kubeconfig, context and user would be used")
        case let error as KubeAPIError:
            let unavailable: Set<KubeAPIError.Reason> = [.unauthorized, .serviceUnavailable, .serverTimeout, .timeout, .tooManyRequests]
            return RepaveError(
                .kube(error.reason.rawValue, unavailable: unavailable.contains(error.reason)),
                "the API server refused \(error.verb) \(error.path)", cause: error,
                hint: error.reason == .unauthorized ? "the credentials were rejected; check 'repave config' and renew them"
                    : error.reason == .forbidden ? "the user lacks RBAC permission for this; see deploy/ for the Role repave needs" : nil)
        case let error as JournalError:
            return RepaveError(.journalRefused, "the run journal cannot be used", cause: error,
                               hint: "see 'repave journal show RUN'; a damaged journal is never resumed automatically")
        case let error as GitError:
            return RepaveError(.gitFailed, "failed to \(error.operation)", causes: [error.message])
        default:
            return RepaveError(.internal, "internal error: \(String(describing: error))",
                               hint: "this is a bug in repave; please report it with the command you ran and --log-level debug output")
        }
    }

    /// Whether the error comes from Repave or the libraries it wraps (as opposed to
    /// ArgumentParser's own control flow, or a bug).
    static func isOurs(_ error: any Error) -> Bool {
        error is any UserFacingError || error is CurlError || error is GitError || error is KubeconfigError || error is KubeAPIError || error is JournalError
    }

    public static func text(_ error: any UserFacingError) -> String {
        // The code first, as compilers print theirs: what scripts and the catalog
        // (docs/journal-and-engine.md) know the error by, whatever its wording.
        var lines = ["error[\(error.code)]: \(printable(error.message))"]
        lines += error.causes.map { "caused by: \(printable($0))" }
        if let hint = error.hint { lines.append("hint: \(printable(hint))") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One line of text whatever an input or a server put in it: line breaks and other control
    /// characters (a terminal escape in a plan value or a Status message) shown escaped.
    static func printable(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return text }
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            case _ where scalar.properties.generalCategory == .control:
                result += "\\u{\(String(scalar.value, radix: 16))}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    public static func json(_ error: any UserFacingError) -> String {
        let envelope = Envelope(error: .init(
            code: error.code, message: error.message, causes: error.causes, hint: error.hint,
            exitStatus: error.exitStatus.rawValue))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding plain strings and ints cannot fail.
        let data = (try? encoder.encode(envelope)) ?? Data(#"{"error":{"code":"internal"}}"#.utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    private struct Envelope: Encodable {
        struct Body: Encodable {
            let code: String
            let message: String
            let causes: [String]
            let hint: String?
            let exitStatus: Int32
        }
        let error: Body
    }

    private static func hint(for error: CurlError) -> String? {
        switch error.kind {
        case .serverCertificateRejected:
            "the server's certificate is not signed by the kubeconfig's certificate-authority; check 'repave config' shows the cluster you expect"
        case .tlsHandshake:
            "the client certificate or key was rejected; check the kubeconfig user's client-certificate and client-key"
        case .connection, .timedOut:
            "check the server address in 'repave config' and that the API server is reachable from here"
        case .cancelled, .configuration, .other:
            nil
        }
    }
}
