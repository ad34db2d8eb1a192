import ArgumentParser
import Foundation
import Journal

/// `repave-lab lock-probe DIR`: tries a run directory's lock once (no retries) and holds it
/// briefly when it wins; prints `won` or the refusal. The journal tests race two of these.
struct LockProbe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "lock-probe", abstract: "Race for a run directory's lock (tests).")

    @Argument var directory: String
    @Option var hold: Double = 0.1
    @Option(help: "Start at this Unix time in milliseconds (so that racers really race).")
    var at: Int64 = 0

    func run() async throws {
        let wait = Double(at) / 1000 - Date().timeIntervalSince1970
        if wait > 0 { usleep(useconds_t(wait * 1_000_000)) }
        do {
            let lock = try RunLock(directory: directory, retries: 0)
            print("won")
            try await Task.sleep(for: .milliseconds(Int(hold * 1000)))
            withExtendedLifetime(lock) {}
        } catch {
            print("\(error)")
        }
    }
}
