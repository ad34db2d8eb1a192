import Foundation
import KubeAPI
import RepaveTestSupport
import Synchronization
import Testing

/// The devpod run with API faults injected between Repave and the real API server
/// (`REPAVE_FAULTS`, see `SeededFaults`): at 1%, 5% and 20% of requests, seeded. Every run must
/// complete on its own, in the converged state, having honoured every Retry-After and without
/// repeating a write whose outcome it did not know before reading the object again.
///
/// `make test` tries 3 seeds per rate; `make proof` (REPAVE_PROOF=1) 50; REPAVE_FAULT_SEEDS
/// replays chosen ones.
@Suite("fault matrix: the devpod run under seeded API faults")
struct FaultMatrixTests: DevpodTesting {
    let lab: Lab
    let client: KubeClient
    /// 1…3, or 1…50 under make proof; REPAVE_FAULT_SEEDS=7,19 replays chosen seeds.
    static let seedList = seeds(makeTest: 3)

    /// 1…`makeTest`, or 1…50 under make proof; REPAVE_FAULT_SEEDS=7,19 replays chosen seeds.
    /// (Migrate's fault matrix on the real node takes one seed per rate in make test.)
    static func seeds(makeTest: Int) -> [Int] {
        let environment = ProcessInfo.processInfo.environment
        if let chosen = environment["REPAVE_FAULT_SEEDS"], !chosen.isEmpty { return chosen.split(separator: ",").compactMap { Int($0) } }
        return Array(1...(environment["REPAVE_PROOF"] == "1" ? 50 : makeTest))
    }
    static var seeds: Int { seedList.count }

    init() throws {
        lab = try Lab.current()
        client = try lab.adminClient(userAgent: "repave-test/fault-matrix")
    }

    /// One line of `REPAVE_FAULT_LOG`.
    struct Sent: Decodable {
        let ms: Int
        let method: String
        let url: String
        let fault: String?
        let retryAfter: Int?
        let name: String?

        var path: String { String(url.split(separator: "?", maxSplits: 1)[0]) }
        /// A dry run (`dryRun=All`) changes nothing, like an access review.
        var isWrite: Bool { method != "GET" && !url.contains("/selfsubject") && !url.contains("dryRun=All") }
        /// The object a write is about: its URL, or for a POST the collection plus the new name.
        var object: String { method == "POST" ? path + "/" + (name ?? "?") : path }
        /// The write's outcome is unknown to the client or it failed: only a fresh read may decide
        /// what to send next. (A 429 was not processed; a refused connection sent nothing.)
        var leftOutcomeOpen: Bool { isWrite && fault != nil && fault != "429" && fault != "reset-before-send" }
        /// A read that tells the client about `object`: a GET of it or of its collection.
        func reads(_ object: String) -> Bool {
            method == "GET" && (path == object || object.hasPrefix(path + "/") && !path.isEmpty && object.dropFirst(path.count + 1).split(separator: "/").count == 1)
        }
    }

    /// What one run's fault log shows.
    struct Findings {
        var requests = 0, faults = 0, retryAfters = 0, retryAftersHonoured = 0
        var blindRepeats: [String] = []
        var byKind: [String: Int] = [:]
    }

    static func examine(_ log: [Sent]) -> Findings {
        var findings = Findings()
        findings.requests = log.count
        for (index, sent) in log.enumerated() {
            if let fault = sent.fault {
                findings.faults += 1
                findings.byKind[fault, default: 0] += 1
            }
            if let retryAfter = sent.retryAfter, let next = log[(index + 1)...].first(where: { $0.method == sent.method && $0.url == sent.url }) {
                findings.retryAfters += 1
                if next.ms >= sent.ms + retryAfter * 1000 - 1 { findings.retryAftersHonoured += 1 }
            }
            guard sent.leftOutcomeOpen else { continue }
            let later = log[(index + 1)...]
            if let again = later.firstIndex(where: { $0.isWrite && $0.object == sent.object }),
               !log[(index + 1)..<again].contains(where: { $0.reads(sent.object) }) {
                findings.blindRepeats.append("\(sent.method) \(sent.object) (\(sent.fault ?? "")) repeated without a read")
            }
        }
        return findings
    }

    static func readLog(_ path: String) throws -> [Sent] {
        let data = (try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data()
        return try data.split(separator: UInt8(ascii: "\n")).map { try JSONDecoder().decode(Sent.self, from: Data($0)) }
    }

    func run(_ world: World, faults: String?, log: String) async throws -> ProcessResult {
        try await runProcess(try repaveBinary(), ["run", world.planFile, "--yes", "--kubeconfig", lab.adminKubeconfig, "--state-dir", world.scratch.file("runs")],
                             environment: ["REPAVE_FAULTS": faults ?? "seed=0,rate=0", "REPAVE_FAULT_LOG": log])
    }

    @Test("the blind-repeat check can fail: a write repeated with no read between is caught")
    func examineCatches() {
        let url = "https://x/api/v1/namespaces/n/persistentvolumeclaims"
        let log = [
            Sent(ms: 0, method: "POST", url: url, fault: "timeout-after-applied", retryAfter: nil, name: "c"),
            Sent(ms: 5, method: "POST", url: url, fault: nil, retryAfter: nil, name: "c"),
            Sent(ms: 6, method: "GET", url: url + "/d", fault: "429", retryAfter: 1, name: nil),
            Sent(ms: 700, method: "GET", url: url + "/d", fault: nil, retryAfter: nil, name: nil),
            Sent(ms: 800, method: "PATCH", url: url + "/d", fault: "500", retryAfter: nil, name: nil),
            Sent(ms: 900, method: "GET", url: url + "?watch=1", fault: nil, retryAfter: nil, name: nil),
            Sent(ms: 950, method: "PATCH", url: url + "/d", fault: nil, retryAfter: nil, name: nil),
        ]
        let findings = Self.examine(log)
        #expect(findings.blindRepeats == ["POST \(url)/c (timeout-after-applied) repeated without a read"])
        #expect(findings.retryAfters == 1 && findings.retryAftersHonoured == 0)
        #expect(findings.faults == 3)
    }

    @Test("the devpod run completes under seeded faults, converged, Retry-After honoured, no write repeated blindly", arguments: [0.01, 0.05, 0.20])
    func faults(_ rate: Double) async throws {
        // The fault-free run: the number of requests the faulted runs are compared with.
        var baseline = 0
        try await withDevpod { world in
            let log = world.scratch.file("faults.log")
            let result = try await run(world, faults: nil, log: log)
            #expect(result.status == 0, "\(result.standardError)")
            baseline = try Self.readLog(log).count
        }
        #expect(baseline > 30)

        let completed = Mutex(0), total = Mutex(Findings())
        await concurrently(Self.seedList, width: 2) { _, seed in
            let label = "rate \(rate) seed \(seed)"
            do {
                try await withDevpod { world in
                    let mark = try lab.auditMark()
                    let log = world.scratch.file("faults.log")
                    let result = try await run(world, faults: "seed=\(seed),rate=\(rate)", log: log)
                    var problems = result.status == 0 ? [] : ["exit \(result.status): \(result.standardError.suffix(600))"]
                    if result.status == 0 { problems += try await divergence(world, run: try world.runDirectory(), since: mark) }
                    if !problems.isEmpty { problems.append("namespace \(world.namespace), fault log \(log)") }
                    let findings = Self.examine(try Self.readLog(log))
                    problems += findings.blindRepeats
                    if findings.retryAftersHonoured != findings.retryAfters {
                        problems.append("Retry-After honoured \(findings.retryAftersHonoured) of \(findings.retryAfters) times")
                    }
                    total.withLock { sum in
                        sum.requests += findings.requests
                        sum.faults += findings.faults
                        sum.retryAfters += findings.retryAfters
                        sum.retryAftersHonoured += findings.retryAftersHonoured
                        sum.blindRepeats += findings.blindRepeats
                        sum.byKind.merge(findings.byKind, uniquingKeysWith: +)
                    }
                    if problems.isEmpty { completed.withLock { $0 += 1 } } else { Issue.record("\(label): \(problems.joined(separator: "; "))") }
                }
            } catch {
                Issue.record("\(label): \(error)")
            }
        }
        let sum = total.withLock { $0 }
        let mean = Double(sum.requests) / Double(Self.seeds)
        print(String(format: "fault matrix: rate %.0f%%: %d seeds, %d completed and converged; %d faults injected (%@); requests %.1f per run vs %d without faults (×%.2f); Retry-After honoured %d/%d; blind write repeats %d",
                     rate * 100, Self.seeds, completed.withLock { $0 }, sum.faults,
                     sum.byKind.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "),
                     mean, baseline, mean / Double(max(baseline, 1)), sum.retryAftersHonoured, sum.retryAfters, sum.blindRepeats.count))
        #expect(completed.withLock { $0 } == Self.seeds)
        #expect(sum.faults > 0 || rate < 0.05, "no fault was injected: is REPAVE_FAULTS read?")
    }
}
