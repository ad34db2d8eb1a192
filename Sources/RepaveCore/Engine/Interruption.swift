import Dispatch
import Foundation
import Synchronization

/// SIGINT and SIGTERM during a run: noted (never acted on inside the signal handler), the run's
/// task cancelled, and the runner stops after the record it is writing, so the journal ends
/// cleanly and `resume` picks up. The process then exits 130 or 143.
public final class Interruption: Sendable {
    private let received = Atomic<Int32>(0)
    /// Kept alive for the life of the run. Written once, by `install`, before any signal can be
    /// delivered, and never read: hence unchecked.
    private nonisolated(unsafe) var sources: [any DispatchSourceSignal] = []
    private let onSignal = Mutex<(@Sendable () -> Void)?>(nil)

    public init() {}

    /// The signal received, or nil.
    public var signal: Int32? {
        let value = received.load(ordering: .acquiring)
        return value == 0 ? nil : value
    }

    /// 130 for SIGINT, 143 for SIGTERM.
    public var exitStatus: Int32? { signal.map { 128 + $0 } }

    /// Starts watching; `cancel` runs (on a dispatch queue) when the first signal arrives.
    public func install(cancel: @escaping @Sendable () -> Void) {
        onSignal.withLock { $0 = cancel }
        let made = [SIGINT, SIGTERM].map { number -> any DispatchSourceSignal in
            Glibc.signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in self?.deliver(number) }
            source.resume()
            return source
        }
        sources = made
    }

    /// Records `number` as if it had arrived (tests, and the handler itself).
    public func deliver(_ number: Int32) {
        guard received.compareExchange(expected: 0, desired: number, ordering: .acquiringAndReleasing).exchanged else { return }
        onSignal.withLock { $0 }?()
    }
}
