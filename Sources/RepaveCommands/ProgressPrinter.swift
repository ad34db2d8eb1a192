import Curl
import Foundation
import RepaveCore
import Synchronization

/// `--progress` on stderr. `plain`: one line per step and per wait, with the time since the run
/// began. `auto`: the same lines, and on a terminal the current wait as one live line — what it
/// waits for and for how long — redrawn in place every second until the next event. `none`:
/// nothing (results and errors only).
final class ProgressPrinter: Sendable {
    private struct State {
        /// The wait being redrawn, and the task that redraws it.
        var live: (line: String, since: ContinuousClock.Instant)?
        var ticker: Task<Void, Never>?
    }

    let mode: ProgressMode
    let live: Bool
    private let started = ContinuousClock.now
    private let state = Mutex(State())
    private let write: @Sendable (String) -> Void

    /// - Parameter terminal: whether stderr is a terminal (`auto` redraws only there).
    init(mode: ProgressMode, terminal: Bool = isatty(STDERR_FILENO) == 1,
         write: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.mode = mode
        live = mode == .auto && terminal
        self.write = write
    }

    func handle(_ event: ProgressEvent) {
        guard mode != .none else { return }
        switch event {
        case .step(let id, let summary):
            emit("\(id): \(summary)")
        case .waiting(let step, let what, let since):
            let line = "\(step): waiting for \(what)"
            guard live else { return emit(line) }
            finishLive()
            state.withLock { $0.live = (line, since) }
            redraw()
            let ticker = Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    self?.redraw()
                }
            }
            state.withLock { $0.ticker = ticker }
        case .retrying(let step, let reason, let delay, let attempt, let of):
            emit("\(step): \(reason); trying again in \(delay.milliseconds) ms (attempt \(attempt) of \(of))")
        }
    }

    /// Ends the live line (before the result is printed, or the next line).
    func finish() { finishLive() }

    private func stamp() -> String { "[\(String(format: "%6.1f", (ContinuousClock.now - started).inSeconds))s]" }

    private func emit(_ line: String) {
        finishLive()
        write("\(stamp()) \(line)\n")
    }

    private func redraw() {
        guard let live = state.withLock({ $0.live }) else { return }
        let waited = Int((ContinuousClock.now - live.since).inSeconds)
        // Carriage return, the line, and "erase to the end of the line": one line, in place.
        write("\r\(stamp()) \(live.line) (\(waited)s)\u{1B}[K")
    }

    private func finishLive() {
        let (wasLive, ticker) = state.withLock { state -> (Bool, Task<Void, Never>?) in
            defer { state.live = nil; state.ticker = nil }
            return (state.live != nil, state.ticker)
        }
        ticker?.cancel()
        if wasLive { write("\n") }
    }
}
