import Curl
import Foundation

/// One event of a watch stream.
public enum WatchEvent: Sendable {
    case added(JSON)
    case modified(JSON)
    case deleted(JSON)
    /// Everything up to this resourceVersion has been sent.
    case bookmark(resourceVersion: String)
}

/// A wait that reached its deadline: what was awaited and the last state seen.
public struct WaitTimedOut: Error, Sendable, CustomStringConvertible {
    public let what: String
    public let timeout: Duration
    public let lastSeen: JSON?

    public var description: String { "timed out after \(timeout) waiting for \(what)" }
}

extension KubeClient {
    /// A raw watch from `resourceVersion` (never empty or "0": start from a list's version).
    /// The stream ends when the server closes it (after `timeoutSeconds`); it throws
    /// ``KubeAPIError`` for an error answer or an ERROR event (410 Gone: re-list) and `CurlError`
    /// when the connection drops.
    public func watch(
        _ type: ResourceType, in namespace: String? = nil,
        labelSelector: String? = nil, fieldSelector: String? = nil,
        from resourceVersion: String, timeoutSeconds: Int = 300
    ) -> AsyncThrowingStream<WatchEvent, any Error> {
        var query: [(String, String)] = [
            ("watch", "1"), ("allowWatchBookmarks", "true"), ("resourceVersion", resourceVersion),
            ("timeoutSeconds", String(timeoutSeconds)),
        ]
        if let labelSelector { query.append(("labelSelector", labelSelector)) }
        if let fieldSelector { query.append(("fieldSelector", fieldSelector)) }
        let request = Request(.get, type.path(namespace: namespace), query: query)
        return streamed(request, verb: "WATCH") { line throws in try Self.decodeWatchLine(line, verb: "WATCH", path: request.path) }
    }

    /// A GET whose answer arrives line by line (a watch, a followed log), each line turned into
    /// an element by `element` as it arrives. A non-200 answer throws ``KubeAPIError`` from its
    /// Status body once the server has closed it; a dropped connection throws `CurlError`.
    /// Not retried: the caller knows where to resume from.
    func streamed<Element: Sendable>(
        _ request: Request, verb: String, _ element: @escaping @Sendable (Data) throws -> Element
    ) -> AsyncThrowingStream<Element, any Error> {
        let (stream, continuation) = AsyncThrowingStream<Element, any Error>.makeStream()
        let task = Task {
            do {
                let authorization = try await credentials.authorization()
                let lines = transport.lines(httpRequest(request, authorization: authorization))
                var failure: (status: Int, headers: [String: [String]], body: Data)?
                for try await event in lines {
                    switch event {
                    case .head(let status, let headers):
                        if status != 200 { failure = (status, headers, Data()) }
                    case .line(let line):
                        if failure != nil {
                            failure!.body.append(line)
                            continue
                        }
                        continuation.yield(try element(line))
                    }
                }
                if let failure {
                    let response = HTTPResponse(status: failure.status, headers: failure.headers, body: failure.body, newConnections: 0, httpVersion: "")
                    throw KubeAPIError(response: response, verb: verb, path: request.path)
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// Decodes one line of a watch stream.
    public static func decodeWatchLine(_ line: Data, verb: String, path: String) throws -> WatchEvent {
        let event: JSON
        do {
            event = try JSON.decode(line)
        } catch {
            throw KubeAPIError(reason: .unknown, httpStatus: 200, verb: verb, path: path, message: "a watch event is not JSON")
        }
        guard let object = event["object"] else {
            throw KubeAPIError(reason: .unknown, httpStatus: 200, verb: verb, path: path, message: "a watch event has no object")
        }
        switch event["type"]?.stringValue {
        case "ADDED": return .added(object)
        case "MODIFIED": return .modified(object)
        case "DELETED": return .deleted(object)
        case "BOOKMARK": return .bookmark(resourceVersion: object[path: "metadata", "resourceVersion"]?.stringValue ?? "")
        case "ERROR":
            let code = Int(object["code"]?.intValue ?? 500)
            var reason = KubeAPIError.Reason(httpStatus: code)
            if let text = object["reason"]?.stringValue, let decoded = KubeAPIError.Reason(rawValue: text) { reason = decoded }
            // 410 arrives as reason Expired or Gone depending on the server version.
            if code == 410 { reason = .gone }
            throw KubeAPIError(reason: reason, httpStatus: code, verb: verb, path: path, message: object["message"]?.stringValue ?? "watch error")
        default:
            throw KubeAPIError(reason: .unknown, httpStatus: 200, verb: verb, path: path,
                               message: "unknown watch event type '\(event["type"]?.stringValue ?? "")'")
        }
    }

    /// Waits until `condition` holds for the named object (nil when it does not exist), and
    /// returns the object then. List-then-watch from the list's resourceVersion: no polling while
    /// the watch is healthy; a dropped stream resumes from the last version seen; 410 Gone
    /// re-lists. Throws ``WaitTimedOut`` at the deadline, though not before the first list.
    /// - Parameters:
    ///   - seen: the object as this client has just read or written it (a GET, or the answer to
    ///     a PATCH, POST or DELETE): its state is looked at first, and the watch starts from its
    ///     resourceVersion instead of a list, so the wait costs one request. Every change after
    ///     that version still arrives as an event; a version too old is a 410, which re-lists.
    ///   - version: where `seen` was read, when it came in a list (the list's resourceVersion,
    ///     newer than the object's own); with `seen` nil, the object was absent from that list.
    @discardableResult
    public func wait(
        for type: ResourceType, named name: String, in namespace: String? = nil,
        from seen: JSON? = nil, at version: String? = nil,
        timeout: Duration, describedAs what: String,
        until condition: @escaping @Sendable (JSON?) -> Bool
    ) async throws -> JSON? {
        let lastSeen = LastSeen()
        var start: (object: JSON?, resourceVersion: String)?
        if let resourceVersion = version ?? seen?[path: "metadata", "resourceVersion"]?.stringValue, !resourceVersion.isEmpty, resourceVersion != "0",
           seen == nil || seen?[path: "metadata", "name"]?.stringValue == name {
            start = (seen, resourceVersion)
        }
        return try await withThrowingTaskGroup(of: JSON?.self) { group in
            group.addTask { [start] in
                try await self.waitLoop(type, name: name, namespace: namespace, start: start, lastSeen: lastSeen, condition: condition)
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                // However short the timeout, the object is looked at once (the list) first, so
                // the timeout reports what was there.
                while !(await lastSeen.looked) { try await Task.sleep(for: .milliseconds(10)) }
                throw WaitTimedOut(what: what, timeout: timeout, lastSeen: await lastSeen.value)
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    private actor LastSeen {
        var value: JSON?
        var looked = false
        func set(_ value: JSON?) {
            self.value = value
            looked = true
        }
    }

    private func waitLoop(
        _ type: ResourceType, name: String, namespace: String?, start: (object: JSON?, resourceVersion: String)?, lastSeen: LastSeen,
        condition: @Sendable (JSON?) -> Bool
    ) async throws -> JSON? {
        let selector = "metadata.name=\(name)"
        var reconnects = 0
        var start = start
        relist: while true {
            var current: JSON?
            var resourceVersion: String
            if let seen = start {
                start = nil   // a 410 re-lists
                current = seen.object
                resourceVersion = seen.resourceVersion
            } else {
                let list = try await self.list(type, in: namespace, fieldSelector: selector)
                current = list.items.first
                resourceVersion = list.resourceVersion
            }
            await lastSeen.set(current)
            if condition(current) { return current }
            while true {
                do {
                    for try await event in watch(type, in: namespace, fieldSelector: selector, from: resourceVersion) {
                        switch event {
                        case .added(let object), .modified(let object):
                            current = object
                            resourceVersion = object[path: "metadata", "resourceVersion"]?.stringValue ?? resourceVersion
                        case .deleted(let object):
                            current = nil
                            resourceVersion = object[path: "metadata", "resourceVersion"]?.stringValue ?? resourceVersion
                        case .bookmark(let version):
                            if !version.isEmpty { resourceVersion = version }
                            continue
                        }
                        await lastSeen.set(current)
                        if condition(current) { return current }
                    }
                    reconnects = 0   // a normal close (timeoutSeconds): resume from where we were
                } catch let error as KubeAPIError where error.reason == .gone || error.reason == .expired {
                    logger.info("watch history expired; re-listing", metadata: ["resource": "\(type)", "name": "\(name)"])
                    continue relist
                } catch let error as CurlError where error.kind != .cancelled {
                    reconnects += 1
                    guard reconnects <= retryPolicy.maxConnectionRetries else { throw error }
                    logger.info("watch dropped; reconnecting", metadata: ["resource": "\(type)", "error": "\(error.message)"])
                    try await Task.sleep(for: retryPolicy.backoff(attempt: reconnects))
                } catch let error as KubeAPIError where error.httpStatus == 429 || error.httpStatus >= 500 {
                    // The server refused the watch for now (overloaded, restarting): reopened like
                    // a dropped one, after its Retry-After when it sent one. The retries of a
                    // request are the client's alone (docs/journal-and-engine.md, "Retries").
                    reconnects += 1
                    guard reconnects <= retryPolicy.maxConnectionRetries else { throw error }
                    logger.info("watch refused; reopening", metadata: ["resource": "\(type)", "status": "\(error.httpStatus)"])
                    try await Task.sleep(for: min(error.retryAfter ?? retryPolicy.backoff(attempt: reconnects), retryPolicy.maxRetryAfter))
                }
                try Task.checkCancellation()
            }
        }
    }
}
