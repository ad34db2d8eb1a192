import Foundation

extension KubeClient {
    /// A container's log (`pods/log`), line by line as the container writes it. With `follow`
    /// the stream stays open until the container exits (the kubelet then closes it); without, it
    /// ends at the log's current end. Empty lines are left out; bytes that are not UTF-8 (a file
    /// name in another encoding) are replaced, not refused. A dropped stream throws `CurlError`
    /// and is not reopened here: the caller resumes with `sinceTime`, or reads the log again.
    public func logLines(
        ofPod name: String, in namespace: String, container: String? = nil,
        follow: Bool = true, sinceTime: Date? = nil
    ) -> AsyncThrowingStream<String, any Error> {
        var query: [(String, String)] = []
        if follow { query.append(("follow", "true")) }
        if let container { query.append(("container", container)) }
        if let sinceTime { query.append(("sinceTime", sinceTime.formatted(.iso8601))) }
        var request = Request(.get, ResourceType.pods.path(namespace: namespace, name: name, subresource: "log"), query: query)
        // The log is text/plain; an Accept of JSON alone would be refused (406).
        request.accept = "text/plain, application/json"
        return streamed(request, verb: "GET") { String(decoding: $0, as: UTF8.self) }
    }
}
