import CCurl
import CCurlShim
import Foundation

/// libcurl's process-wide initialisation, done once, before the first handle is made.
enum CurlGlobal {
    static let initialized: Bool = ccurl_global_init() == CURLE_OK

    static var version: String { String(cString: ccurl_version_string()) }
}

/// Owns one `CURL *`. An easy handle must never be used by two threads at once, but it may move
/// between threads; ``HTTPSession`` hands each handle to exactly one transfer at a time through
/// its pool, which is what makes the unchecked `Sendable` sound. The handle's connection cache
/// (and TLS session cache) is what lets consecutive requests reuse one TLS connection.
///
/// No share handle: libcurl documents sharing connections across threads as unsupported, and
/// sharing only TLS sessions would add C-side locks to save a handshake for the few concurrent
/// connections a run opens. Each handle keeps its own connection and TLS session cache.
final class EasyHandle: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer

    init() throws(CurlError) {
        guard CurlGlobal.initialized else {
            throw CurlError(code: Int32(CURLE_FAILED_INIT.rawValue), message: "curl_global_init failed", operation: "initialise libcurl")
        }
        guard let raw = curl_easy_init() else {
            throw CurlError(code: Int32(CURLE_FAILED_INIT.rawValue), message: "curl_easy_init returned NULL", operation: "create a curl handle")
        }
        self.raw = raw
    }

    deinit {
        curl_easy_cleanup(raw)
    }
}

/// Per-transfer state reached from libcurl's C callbacks through `userdata`. Only the transfer's
/// thread touches it, so it needs no lock.
final class TransferState {
    let cancel: CancellationFlag
    let maxBodySize: Int
    var status = 0
    var httpVersion = ""
    var headers: [String: [String]] = [:]
    var body = Data()
    var bodyTooLarge = false
    var lineTooLong = false
    /// Streaming mode: complete lines go here instead of into `body`.
    var splitter: LineSplitter?
    var onHead: ((Int, [String: [String]]) -> Void)?
    var onLine: ((Data) -> Void)?
    var headDelivered = false

    init(cancel: CancellationFlag, maxBodySize: Int) {
        self.cancel = cancel
        self.maxBodySize = maxBodySize
    }

    func deliverHeadIfNeeded() {
        guard !headDelivered else { return }
        headDelivered = true
        onHead?(status, headers)
    }
}

// C callbacks: top-level, capturing nothing (Swift 6.3.1 crashes on capturing closures converted
// to C function pointers); state arrives through `userdata`.

let curlWriteFunction: curl_write_callback = { data, size, count, userdata in
    let state = Unmanaged<TransferState>.fromOpaque(userdata!).takeUnretainedValue()
    let length = size * count
    if state.cancel.isCancelled { return 0 }
    let chunk = UnsafeRawBufferPointer(start: data, count: length)
    if state.splitter != nil {
        state.deliverHeadIfNeeded()
        guard let lines = state.splitter!.append(chunk) else {
            state.lineTooLong = true
            return 0
        }
        for line in lines { state.onLine?(line) }
    } else {
        guard state.body.count + length <= state.maxBodySize else {
            state.bodyTooLarge = true
            return 0
        }
        state.body.append(contentsOf: chunk)
    }
    return length
}

let curlHeaderFunction: curl_write_callback = { data, size, count, userdata in
    let state = Unmanaged<TransferState>.fromOpaque(userdata!).takeUnretainedValue()
    let length = size * count
    guard let data, let line = String(bytes: UnsafeRawBufferPointer(start: data, count: length), encoding: .utf8) else {
        return length
    }
    let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
    if trimmed.isEmpty {
        // The blank line ends a header block; a streaming consumer learns the status now, not
        // with the first event (a watch may stay silent for minutes).
        if state.status >= 200 { state.deliverHeadIfNeeded() }
    } else if trimmed.hasPrefix("HTTP/") {
        // A new status line (after a 100 Continue, say) starts a new header block.
        let parts = trimmed.split(separator: " ", maxSplits: 2)
        state.status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        state.httpVersion = String(parts[0].dropFirst("HTTP/".count))
        state.headers = [:]
    } else if let colon = trimmed.firstIndex(of: ":") {
        let name = trimmed[..<colon].lowercased()
        let value = trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        state.headers[name, default: []].append(value)
    }
    return length
}

let curlProgressFunction: curl_xferinfo_callback = { userdata, _, _, _, _ in
    let state = Unmanaged<TransferState>.fromOpaque(userdata!).takeUnretainedValue()
    // libcurl calls this at least once a second even on an idle connection, which bounds how
    // long a cancelled watch lingers.
    return state.cancel.isCancelled ? 1 : 0
}
