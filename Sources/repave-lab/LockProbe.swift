import ArgumentParser
import Foundation
import Journal

/// `repave-lab lock-probe DIR`: tries a run directory's lock once (no retries); prints `won` or
/// the refusal. The journal tests race two of these: each creates its `--tried` file after its
/// attempt, and a winner holds the lock until the other's file (`--hold-until`) exists, so the
/// two attempts always overlap however slowly a loaded machine starts the processes.
struct LockProbe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "lock-probe", abstract: "Race for a run directory's lock (tests).")

    @Argument var directory: String
    @Option(help: "After the attempt, create this file.") var tried: String?
    @Option(help: "When won, hold the lock until this file exists (at most 30 s).") var holdUntil: String?
    @Option(help: "Start at this Unix time in milliseconds (so that racers really race).")
    var at: Int64 = 0

    func run() async throws {
        let wait = Double(at) / 1000 - Date().timeIntervalSince1970
        if wait > 0 { usleep(useconds_t(wait * 1_000_000)) }
        do {
            let lock = try RunLock(directory: directory, retries: 0)
            print("won")
            markTried()
            let deadline = Date().addingTimeInterval(30)
            while let holdUntil, !FileManager.default.fileExists(atPath: holdUntil), Date() < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            withExtendedLifetime(lock) {}
        } catch {
            print("\(error)")
            markTried()
        }
    }

    private func markTried() {
        if let tried { _ = FileManager.default.createFile(atPath: tried, contents: nil) }
    }
}
