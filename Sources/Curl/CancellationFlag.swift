import Synchronization

/// Set from any thread; read by libcurl's callbacks on the transfer's thread, which then abort
/// the transfer (CURLE_ABORTED_BY_CALLBACK).
public final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)

    public init() {}

    public func cancel() {
        flag.store(true, ordering: .releasing)
    }

    public var isCancelled: Bool {
        flag.load(ordering: .acquiring)
    }
}
