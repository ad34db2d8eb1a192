import ArgumentParser
import Foundation
import KubeAPI

/// The devpod maintenance end to end on the lab: `repave run --yes` against
/// `bench/kubectl-runbook.sh` (the same steps typed as a kubectl script), alternating which goes
/// first, each run on a fresh devpod world built and removed outside the timed region. Reports
/// wall time, the time spent waiting on the cluster, each tool's own time per step, peak RSS, CPU
/// time, and the requests the API server's audit log saw from each.
struct Maintenance: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maintenance", abstract: "repave run vs the kubectl runbook script, devpod scenario, same lab.")

    @OptionGroup var lab: LabOptions

    @Option(help: "Measured runs per tool (after one warm-up run each).")
    var runs = 5

    @Option(help: "How long the lab's kubelet takes to stop a pod.")
    var terminateDelay = "0s"

    @Option(help: "How long the lab's Longhorn takes to provision a volume.")
    var provisionDelay = "0s"

    @Flag(help: "Also run the script with an empty kubectl cache each time (kubectl then reads the API discovery first).")
    var coldCache = false

    @Option(help: "Write every measured run (steps, figures, stamped output lines) to this file, one JSON object a line.")
    var raw: String?

    enum Tool: String, CaseIterable {
        case repave
        /// The kubectl script with kubectl's discovery cache as the warm-up left it: the case of
        /// an operator who used kubectl on this cluster in the last hours.
        case script
        /// The kubectl script with an empty cache (KUBECACHEDIR): the first kubectl of the day.
        case scriptColdCache = "script, cold cache"
        var userAgentPrefix: String { self == .repave ? "repave/" : "kubectl/" }
    }

    /// The plan's steps, as Repave's progress lines and the script's `step` lines name them: a
    /// run whose output lacks one is not attributed to steps, it stops the benchmark.
    static let planSteps = ["preflight", "save-manifests", "ensure-storage-class", "retain-old-volume", "scale-down", "delete-claim",
                            "create-claim", "await-bound", "scale-up", "verify", "release-old-volume"]

    /// One measured run of one tool.
    struct Sample {
        let process: TimedProcess.Result
        /// Step name -> (time from its first line to the next step's, time waiting on the cluster).
        let steps: [(name: String, wall: Double, waits: Double)]
        var counts = AuditLog.Counts()

        var wall: Double { Report.seconds(process.wall) }
        var waits: Double { steps.reduce(0) { $0 + $1.waits } }
        var own: Double { wall - waits }
    }

    func run() async throws {
        let delays = DevpodWorld.Delays(terminate: terminateDelay, provision: provisionDelay)
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("repave-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch + "/tmp", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let client = try KubeClient(connection: try KubeconfigLoader(explicitPath: lab.kubeconfig).load(), userAgent: "repave-bench/world")
        let template = try String(contentsOfFile: lab.plan, encoding: .utf8)
        let home = try await GitHome(in: scratch)

        var worlds: [DevpodWorld] = []
        var samples: [Tool: [Sample]]
        do {
            samples = try await rounds(client, delays: delays, scratch: scratch, template: template, home: home, worlds: &worlds)
        } catch {
            await DevpodWorld.removeNamespaces(worlds, client)
            throw error
        }
        // Read after the namespaces are gone (seconds): by then the server has written the events
        // of the last run's watches too.
        await DevpodWorld.removeNamespaces(worlds, client)
        let audit = try AuditLog(path: lab.auditLog, userAgents: Tool.allCases.map(\.userAgentPrefix))
        for tool in Tool.allCases {
            samples[tool] = samples[tool, default: []].map { sample in
                var sample = sample
                sample.counts = AuditLog.Counts(audit.requests(userAgentPrefix: tool.userAgentPrefix, from: sample.process.startedAt, to: sample.process.endedAt))
                return sample
            }
        }
        if let raw { try write(samples, to: raw) }
        print(render(repave: samples[.repave] ?? [], script: samples[.script] ?? [], cold: samples[.scriptColdCache] ?? [], delays: delays))
    }

    private func write(_ samples: [Tool: [Sample]], to path: String) throws {
        var lines: [String] = []
        for (tool, runs) in samples.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            for sample in runs {
                let object: [String: Any] = [
                    "tool": tool.rawValue, "wall": sample.wall, "waits": sample.waits, "peakRSSKiB": sample.process.peakRSSKiB,
                    "cpu": sample.process.cpuSeconds, "requests": sample.counts.total, "watches": sample.counts.watches,
                    "steps": sample.steps.map { ["name": $0.name, "wall": $0.wall, "waits": $0.waits] as [String: Any] },
                    "output": sample.process.lines.map { ["at": Report.seconds($0.at), "line": $0.text] as [String: Any] },
                ]
                lines.append(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
            }
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// One warm-up round and `runs` measured ones; each run on a world of its own (appended to
    /// `worlds`, whose namespaces the caller removes).
    private func rounds(_ client: KubeClient, delays: DevpodWorld.Delays, scratch: String, template: String, home: GitHome,
                        worlds: inout [DevpodWorld]) async throws -> [Tool: [Sample]] {
        var samples: [Tool: [Sample]] = [:]
        let tools: [Tool] = coldCache ? [.repave, .script, .scriptColdCache] : [.repave, .script]
        for round in 0...runs {
            // Alternate the order, so that neither tool always runs on the cluster the other has
            // just worked on; round 0 warms page cache, kubectl's discovery cache and the lab.
            for tool in round % 2 == 0 ? tools : tools.reversed() {
                let world = DevpodWorld()
                worlds.append(world)
                let clock = ContinuousClock(), built = clock.now
                let original = try await world.create(client, delays: delays)
                let ready = clock.now
                let sample: Sample
                do {
                    sample = try await measure(tool, world: world, scratch: scratch, template: template, home: home)
                    try await world.checkRecreated(client, original: original, tool: tool.rawValue)
                } catch {
                    await world.remove(client, oldVolume: original.volumeName)
                    throw error
                }
                let removing = clock.now
                await world.remove(client, oldVolume: original.volumeName)
                if round > 0 { samples[tool, default: []].append(sample) }
                Report.note("\(round == 0 ? "warm-up" : "run \(round)/\(runs)") \(tool.rawValue): \(Report.time(sample.wall))"
                            + " (world built in \(Report.time(Report.seconds(ready - built))), removed in \(Report.time(Report.seconds(clock.now - removing))))")
            }
        }
        return samples
    }

    // MARK: - one run

    private func measure(_ tool: Tool, world: DevpodWorld, scratch: String, template: String, home: GitHome) async throws -> Sample {
        let sample = try await run(tool, world: world, scratch: scratch, template: template, home: home)
        let missing = Self.planSteps.filter { name in !sample.steps.contains { $0.name == name } }
        guard missing.isEmpty else {
            throw BenchError("\(tool.rawValue)'s output has no line for \(missing.joined(separator: ", ")): its progress format changed?\n\(sample.process.output)")
        }
        return sample
    }

    private func run(_ tool: Tool, world: DevpodWorld, scratch: String, template: String, home: GitHome) async throws -> Sample {
        switch tool {
        case .repave:
            let directory = scratch + "/\(world.id)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try await home.report(for: world, repave: lab.repave, to: directory + "/git-report.json")
            try world.plan(from: template, gitReport: directory + "/git-report.json").write(toFile: directory + "/plan.yaml", atomically: true, encoding: .utf8)
            let process = try await TimedProcess.run(lab.repave, [
                "run", directory + "/plan.yaml", "--yes", "--window-start", "now", "--kubeconfig", lab.kubeconfig,
                "--state-dir", directory + "/runs", "--progress", "plain",
            ], scratch: scratch)
            guard process.succeeded else { throw BenchError("repave run failed (\(process.status)):\n\(process.output)") }
            return Sample(process: process, steps: Self.repaveSteps(process))
        case .script, .scriptColdCache:
            var environment = ["KUBECONFIG": lab.kubeconfig, "KUBECTL": lab.kubectl, "TMPDIR": scratch + "/tmp"]
            if tool == .scriptColdCache { environment["KUBECACHEDIR"] = scratch + "/kube-cache-\(world.id)" }
            let process = try await TimedProcess.run("/bin/bash", [lab.script, world.namespace, DevpodWorld.claim, DevpodWorld.deployment, world.newClass],
                                                     environment: environment, scratch: scratch)
            guard process.succeeded else { throw BenchError("\(lab.script) failed (\(process.status)):\n\(process.output)") }
            return Sample(process: process, steps: Self.scriptSteps(process))
        }
    }

    /// Repave's progress lines, `[  1.2s] STEP: what`, mark where each step starts; a step that
    /// waits on the cluster prints `STEP: waiting for …`, and its wait lasts until Repave's next
    /// progress line. Everything before the first step is "start" (process start, kubeconfig,
    /// the permission check, the journal, the lock); the last step runs until the process exits.
    static func repaveSteps(_ process: TimedProcess.Result) -> [(name: String, wall: Double, waits: Double)] {
        var marks: [(name: String, at: Double)] = [("start", 0)]
        var waits: [String: Double] = [:]
        var waiting: (step: String, since: Double)?
        for line in process.lines {
            guard line.text.hasPrefix("["), let close = line.text.firstIndex(of: "]"),
                  let colon = line.text[close...].firstIndex(of: ":") else { continue }
            let step = line.text[line.text.index(after: close)..<colon].trimmingCharacters(in: .whitespaces)
            guard !step.isEmpty, step.allSatisfy({ $0.isLowercase || $0 == "-" }) else { continue }
            let at = Report.seconds(line.at)
            if let open = waiting {
                waits[open.step, default: 0] += at - open.since
                waiting = nil
            }
            if step != marks.last?.name { marks.append((step, at)) }
            if line.text[colon...].dropFirst().trimmingCharacters(in: .whitespaces).hasPrefix("waiting for") { waiting = (step, at) }
        }
        let end = Report.seconds(process.wall)
        if let open = waiting { waits[open.step, default: 0] += end - open.since }
        return segments(marks, end: end, waits: waits)
    }

    /// The script's lines `step STEP: what` and, after each wait, `waited STEP SECONDS` (timed by
    /// the script around the whole kubectl command).
    static func scriptSteps(_ process: TimedProcess.Result) -> [(name: String, wall: Double, waits: Double)] {
        var marks: [(name: String, at: Double)] = [("start", 0)]
        var waits: [String: Double] = [:]
        for line in process.lines {
            let words = line.text.split(separator: " ")
            if words.first == "step", words.count > 1, words[1].hasSuffix(":") {
                marks.append((String(words[1].dropLast()), Report.seconds(line.at)))
            } else if words.first == "waited", words.count == 3, let seconds = Double(words[2]) {
                waits[String(words[1]), default: 0] += seconds
            }
        }
        return segments(marks, end: Report.seconds(process.wall), waits: waits)
    }

    private static func segments(_ marks: [(name: String, at: Double)], end: Double, waits: [String: Double]) -> [(name: String, wall: Double, waits: Double)] {
        marks.enumerated().map { index, mark in
            let next = index + 1 < marks.count ? marks[index + 1].at : end
            return (mark.name, next - mark.at, waits[mark.name] ?? 0)
        }
    }

    // MARK: - the table

    private func render(repave: [Sample], script: [Sample], cold: [Sample], delays: DevpodWorld.Delays) -> String {
        func median(_ samples: [Sample], _ value: (Sample) -> Double) -> Double { Report.median(samples.map(value)) }
        let title = "pod termination \(delays.terminate), provisioning \(delays.provision)"
        var out = ["case: devpod maintenance on the lab, \(title) (median of \(repave.count) runs per tool, each on a fresh devpod world)"]

        // Per step: the median over the runs of each step's wall, wait and own time.
        var order: [String] = []
        for name in (repave.first?.steps.map(\.name) ?? []) + (script.first?.steps.map(\.name) ?? []) where !order.contains(name) { order.append(name) }
        func step(_ samples: [Sample], _ name: String) -> (wall: Double, waits: Double, own: Double)? {
            let found = samples.compactMap { $0.steps.first { $0.name == name } }
            guard !found.isEmpty else { return nil }
            return (Report.median(found.map(\.wall)), Report.median(found.map(\.waits)), Report.median(found.map { $0.wall - $0.waits }))
        }
        // The plan's steps; "start" (before the first step) has a row of its own.
        func slowest(_ samples: [Sample]) -> (name: String, own: Double) {
            order.filter { $0 != "start" }.compactMap { name in step(samples, name).map { (name, $0.own) } }.max { $0.1 < $1.1 } ?? ("-", 0)
        }

        /// One figure for every tool: repave, the script (warm cache), the ratio and the target
        /// against it, then the script with a cold cache and the ratio against that.
        struct Figure {
            let label: String
            let value: (Sample) -> Double
            let format: (Double) -> String
            var ratio = false
            var target: ((Double, Double) -> String)? = nil
        }
        let time: (Double) -> String = Report.time
        let rss = { (kib: Double) in Report.mebibytes(kibibytes: kib) }
        let count = { (value: Double) in Report.count(value) }
        let figures: [Figure] = [
            Figure(label: "wall", value: \.wall, format: time, ratio: true,
                   target: delays.isZero ? { "<= 0.5x: \(Report.verdict($0 <= 0.5 * $1))" } : nil),
            Figure(label: "waiting on the cluster", value: \.waits, format: time),
            Figure(label: "own time (wall - waits)", value: \.own, format: time, ratio: true),
            Figure(label: "peak RSS (largest process)", value: { $0.process.peakRSSKiB }, format: rss, ratio: true,
                   target: { ours, _ in "<= 64 MiB: \(Report.verdict(ours <= 64 * 1024))" }),
            Figure(label: "CPU time (user + sys)", value: { $0.process.cpuSeconds }, format: time, ratio: true),
            Figure(label: "API requests", value: { Double($0.counts.total) }, format: count, ratio: true,
                   target: { "<= 0.33x: \(Report.verdict($0 * 3 <= $1))" }),
            Figure(label: "  watches", value: { Double($0.counts.watches) }, format: count),
            Figure(label: "  gets", value: { Double($0.counts.gets) }, format: count),
            Figure(label: "  lists", value: { Double($0.counts.lists) }, format: count),
            Figure(label: "  writes", value: { Double($0.counts.writes) }, format: count),
            Figure(label: "  access reviews", value: { Double($0.counts.reviews) }, format: count),
            Figure(label: "  discovery, OpenAPI", value: { Double($0.counts.other) }, format: count),
        ]
        var rows: [[String]] = [["", "repave run", "kubectl script", "ratio", "target"] + (cold.isEmpty ? [] : ["script, cold cache", "ratio"])]
        var medians: [String: (Double, Double, Double)] = [:]
        for figure in figures {
            // Peak RSS is the largest over the runs; the rest are medians.
            let pick: ([Sample]) -> Double = figure.label.hasPrefix("peak") ? { $0.map(figure.value).max() ?? 0 } : { median($0, figure.value) }
            let (ours, theirs, cold) = (pick(repave), pick(script), cold.isEmpty ? .nan : pick(cold))
            medians[figure.label] = (ours, theirs, cold)
            var row = [figure.label, figure.format(ours), figure.format(theirs), figure.ratio ? Report.ratio(ours, theirs) : "",
                       figure.target?(ours, theirs) ?? ""]
            if !cold.isNaN { row += [figure.format(cold), figure.ratio ? Report.ratio(ours, cold) : ""] }
            rows.append(row)
            if figure.label == "own time (wall - waits)" {
                let (ours, theirs) = (slowest(repave), slowest(script))
                let start = (step(repave, "start")?.own ?? 0, step(script, "start")?.own ?? 0)
                rows.append(["  slowest of the plan's steps", "\(time(ours.own)) \(ours.name)", "\(time(theirs.own)) \(theirs.name)", "",
                             "<= 50 ms: \(Report.verdict(ours.own <= 0.050))"])
                rows.append(["  start-up, before the first step", time(start.0), time(start.1), "", "<= 50 ms: \(Report.verdict(start.0 <= 0.050))"])
            }
        }
        out.append(Report.table(rows))
        out.append("runs (wall): repave " + repave.map { time($0.wall) }.joined(separator: ", ")
                   + "; kubectl script " + script.map { time($0.wall) }.joined(separator: ", ")
                   + (cold.isEmpty ? "" : "; cold cache " + cold.map { time($0.wall) }.joined(separator: ", ")))
        out.append("")
        out.append("per step (medians; own = the step's time minus its waits on the cluster)")
        var stepRows: [[String]] = [["step", "repave", "wait", "own", "kubectl script", "wait", "own"]]
        for name in order {
            let ours = step(repave, name), theirs = step(script, name)
            stepRows.append([name + (name == repave.first?.steps.last?.name ? " (+ summary, exit)" : ""),
                             ours.map { time($0.wall) } ?? "-", ours.map { time($0.waits) } ?? "-", ours.map { time($0.own) } ?? "-",
                             theirs.map { time($0.wall) } ?? "-", theirs.map { time($0.waits) } ?? "-", theirs.map { time($0.own) } ?? "-"])
        }
        out.append(Report.table(stepRows))

        let label = "devpod run, \(title)"
        let wall = medians["wall"]!, peak = medians["peak RSS (largest process)"]!, requests = medians["API requests"]!
        let (ours, theirs) = (slowest(repave), slowest(script))
        let start = (step(repave, "start")?.own ?? 0, step(script, "start")?.own ?? 0)
        Report.summarize("\(label): wall", repave: time(wall.0), alternative: time(wall.1), ratio: Report.ratio(wall.0, wall.1),
                         target: delays.isZero ? "<= 0.5x" : "", met: delays.isZero ? wall.0 <= 0.5 * wall.1 : nil)
        Report.summarize("\(label): own time, slowest step", repave: "\(time(ours.own)) (\(ours.name))",
                         alternative: "\(time(theirs.own)) (\(theirs.name))", target: "<= 50 ms", met: ours.own <= 0.050)
        Report.summarize("\(label): own time, start-up", repave: time(start.0), alternative: time(start.1), target: "<= 50 ms", met: start.0 <= 0.050)
        Report.summarize("\(label): peak RSS", repave: rss(peak.0), alternative: rss(peak.1), ratio: Report.ratio(peak.0, peak.1),
                         target: "<= 64 MiB", met: peak.0 <= 64 * 1024)
        Report.summarize("\(label): API requests", repave: count(requests.0), alternative: count(requests.1),
                         ratio: Report.ratio(requests.0, requests.1), target: "<= 0.33x", met: requests.0 * 3 <= requests.1)
        if !cold.isEmpty {
            Report.summarize("\(label): API requests, kubectl cache cold", repave: count(requests.0), alternative: count(requests.2),
                             ratio: Report.ratio(requests.0, requests.2), target: "<= 0.33x", met: requests.0 * 3 <= requests.2)
        }
        return out.joined(separator: "\n")
    }
}
