import Curl
import Foundation
import Synchronization

/// API faults for the fault tests, injected between the client and the real transport, seeded
/// and reproducible: `REPAVE_FAULTS=seed=7,rate=0.05` makes about 5% of requests fail the way
/// API servers and networks do:
///
/// - answered for the server without reaching it: 429 with Retry-After, 500, 503 (with and
///   without Retry-After), 409 Conflict on writes;
/// - transfer failures: connection reset or a timeout before the request is sent, and — for
///   writes — a timeout or reset *after* the server applied it (the server did it, the client did
///   not hear);
/// - for watches: the stream dropped after its first event (or a moment), or ended with 410 Gone;
/// - for a pod's log (`pods/log`, followed like a watch): the stream dropped, or ended cleanly
///   after its first line while the container still runs (as a kubelet or proxy closing it
///   does), never a watch's 410, which no log stream carries.
///
/// Whether the n-th request with a given method and URL faults, and how, depends only on the
/// seed, so a seed replays the same faults however requests interleave. `REPAVE_FAULT_LOG=FILE`
/// appends one JSON line per request (time, method, URL, fault, Retry-After, the object a POST
/// creates) for the tests' checks: Retry-After honoured, no write repeated blindly, the extra
/// requests counted.
///
/// Debug builds only; a release build ignores both variables.
final class SeededFaults: HTTPTransport {
    enum Fault: String, Sendable {
        case tooManyRequests = "429", internalError = "500", unavailable = "503", unavailableRetryAfter = "503+retry-after"
        case conflict = "409"
        case resetBeforeSend = "reset-before-send", timeoutBeforeSend = "timeout-before-send"
        case timeoutAfterApplied = "timeout-after-applied", resetAfterApplied = "reset-after-applied"
        case watchDropped = "watch-dropped", watchGone = "watch-410", logEnded = "log-ended"
    }

    private let inner: any HTTPTransport
    private let seed: UInt64
    private let rate: Double
    private let log: Int32?
    private let started = ContinuousClock.now
    private let counts = Mutex<[String: UInt64]>([:])

    init(_ inner: any HTTPTransport, seed: UInt64, rate: Double, log: String?) {
        self.inner = inner
        self.seed = seed
        self.rate = rate
        self.log = log.map { open($0, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600) }.flatMap { $0 >= 0 ? $0 : nil }
    }

    /// The decorator `REPAVE_FAULTS` asks for around `transport`, or `transport` itself.
    static func wrapping(_ transport: any HTTPTransport, environment: [String: String] = ProcessInfo.processInfo.environment) -> any HTTPTransport {
        #if DEBUG
        guard let spec = environment["REPAVE_FAULTS"], !spec.isEmpty else { return transport }
        var values: [String: String] = [:]
        for item in spec.split(separator: ",") {
            let pair = item.split(separator: "=", maxSplits: 1).map(String.init)
            if pair.count == 2 { values[pair[0]] = pair[1] }
        }
        return SeededFaults(transport, seed: values["seed"].flatMap(UInt64.init) ?? 1, rate: values["rate"].flatMap(Double.init) ?? 0.05,
                            log: environment["REPAVE_FAULT_LOG"])
        #else
        return transport
        #endif
    }

    /// SplitMix64 of the seed, the request's identity and its ordinal: two uniform draws.
    private func draws(_ key: String) -> (Double, UInt64) {
        let ordinal = counts.withLock { counts in
            counts[key, default: 0] += 1
            return counts[key, default: 0]
        }
        var state = seed ^ 0x9E37_79B9_7F4A_7C15
        for byte in key.utf8 { state = (state ^ UInt64(byte)) &* 0x100_0000_01B3 }
        var generator = SplitMix64(seed: state ^ (ordinal &* 0xD6E8_FEB8_6659_FD93))
        return (Double(generator.next() >> 11) / Double(1 << 53), generator.next())
    }

    private func choose(_ request: HTTPRequest, watch: Bool) -> Fault? {
        // A watch's resourceVersion differs from run to run: left out, so a seed replays.
        let url = request.url.split(separator: "&").filter { !$0.hasPrefix("resourceVersion=") }.joined(separator: "&")
        let (draw, pick) = draws(request.method.rawValue + " " + url)
        guard draw < rate else { return nil }
        let readOnly = request.method == .get || request.url.contains("/selfsubject") || request.url.contains("dryRun=All")
        let log = url.split(separator: "?", maxSplits: 1).first?.hasSuffix("/log") == true
        let kinds: [Fault] = watch && log
            ? [.watchDropped, .logEnded, .internalError, .resetBeforeSend]
            : watch
            ? [.watchDropped, .watchGone, .internalError, .resetBeforeSend]
            : readOnly
            ? [.tooManyRequests, .internalError, .unavailable, .unavailableRetryAfter, .resetBeforeSend, .timeoutBeforeSend]
            : [.tooManyRequests, .internalError, .unavailable, .unavailableRetryAfter, .conflict, .resetBeforeSend, .timeoutBeforeSend,
               .timeoutAfterApplied, .resetAfterApplied]
        return kinds[Int(pick % UInt64(kinds.count))]
    }

    private func record(_ request: HTTPRequest, _ fault: Fault?, retryAfter: Int? = nil) {
        guard let log else { return }
        var entry: [String: Any] = [
            "ms": (ContinuousClock.now - started).milliseconds, "method": request.method.rawValue, "url": request.url,
        ]
        if let fault { entry["fault"] = fault.rawValue }
        if let retryAfter { entry["retryAfter"] = retryAfter }
        if request.method == .post, let body = request.body,
           let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
           let name = (object["metadata"] as? [String: Any])?["name"] as? String {
            entry["name"] = name
        }
        guard var line = try? JSONSerialization.data(withJSONObject: entry, options: [.sortedKeys]) else { return }
        line.append(UInt8(ascii: "\n"))
        _ = line.withUnsafeBytes { write(log, $0.baseAddress, $0.count) }
    }

    private static func status(_ code: Int, reason: String, retryAfter: Int?) -> HTTPResponse {
        let body = #"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected fault","reason":"\#(reason)","code":\#(code)}"#
        return HTTPResponse(status: code, headers: retryAfter.map { ["retry-after": [String($0)]] } ?? [:],
                            body: Data(body.utf8), newConnections: 0, httpVersion: "1.1")
    }

    func perform(_ request: HTTPRequest) async throws -> HTTPResponse {
        let fault = choose(request, watch: false)
        let retryAfter = fault == .tooManyRequests || fault == .unavailableRetryAfter ? 1 : nil
        record(request, fault, retryAfter: retryAfter)
        switch fault {
        case nil: return try await inner.perform(request)
        case .tooManyRequests?: return Self.status(429, reason: "TooManyRequests", retryAfter: retryAfter)
        case .internalError?: return Self.status(500, reason: "InternalError", retryAfter: nil)
        case .unavailable?: return Self.status(503, reason: "ServiceUnavailable", retryAfter: nil)
        case .unavailableRetryAfter?: return Self.status(503, reason: "ServiceUnavailable", retryAfter: retryAfter)
        case .conflict?: return Self.status(409, reason: "Conflict", retryAfter: nil)
        case .resetBeforeSend?: throw CurlError(code: 7, message: "injected: connection refused", operation: request.operation)
        case .timeoutBeforeSend?: throw CurlError(code: 28, message: "injected: timed out before sending", operation: request.operation)
        case .timeoutAfterApplied?:
            _ = try await inner.perform(request)
            throw CurlError(code: 28, message: "injected: timed out after the server applied it", operation: request.operation)
        case .resetAfterApplied?:
            _ = try await inner.perform(request)
            throw CurlError(code: 56, message: "injected: connection reset after the server applied it", operation: request.operation)
        case .watchDropped?, .watchGone?, .logEnded?: return try await inner.perform(request)
        }
    }

    func lines(_ request: HTTPRequest) -> HTTPLineStream {
        let fault = choose(request, watch: true)
        record(request, fault)
        let (stream, continuation) = AsyncThrowingStream<HTTPStreamEvent, any Error>.makeStream()
        let flag = CancellationFlag()
        switch fault {
        case nil:
            return inner.lines(request)
        case .watchGone?:
            let line = #"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: injected","reason":"Expired","code":410}}"#
            continuation.yield(.head(status: 200, headers: [:]))
            continuation.yield(.line(Data(line.utf8)))
            continuation.finish()
        case .internalError?:
            continuation.yield(.head(status: 500, headers: [:]))
            continuation.yield(.line(Data(#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"InternalError","code":500,"message":"injected"}"#.utf8)))
            continuation.finish()
        case .watchDropped?, .logEnded?:
            // The real stream, cut after its first event or half a second, whichever comes first;
            // dropped (an error), or for a log ended as if the server closed it (no error).
            let dropped = fault == .watchDropped
            let real = inner.lines(request)
            let task = Task {
                let deadline = ContinuousClock.now + .milliseconds(500)
                do {
                    var lines = 0
                    for try await event in real {
                        continuation.yield(event)
                        if case .line = event { lines += 1 }
                        if lines >= 1 || ContinuousClock.now >= deadline || flag.isCancelled { break }
                    }
                } catch {}
                real.cancel()
                if dropped {
                    continuation.finish(throwing: CurlError(code: 56, message: "injected: watch stream dropped", operation: request.operation))
                } else {
                    continuation.finish()
                }
            }
            let watchdog = Task {
                try? await Task.sleep(for: .milliseconds(500))
                real.cancel()
            }
            continuation.onTermination = { _ in task.cancel(); watchdog.cancel(); real.cancel() }
        default:
            continuation.finish(throwing: CurlError(code: 7, message: "injected: connection refused", operation: request.operation))
        }
        return HTTPLineStream(events: stream, flag: flag)
    }
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a tiny seedable generator whose sequence is the same
/// on every machine, for fault and crash schedules a seed must replay.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
