import ArgumentParser
import Foundation
import KubeAPI
import Subprocess
import SystemPackage

/// Planning and the live preflight as cold processes: `repave --help` and `repave plan` (file,
/// then the read-only checks against the lab) against `kubectl --help` and the kubectl script's
/// checks (`bench/kubectl-runbook.sh --check-only`), first in the devpod namespace alone, then
/// with 1,000 unrelated pods and 300 claims in it. Wall times come from hyperfine; peak RSS and
/// request counts from separate runs under GNU time, found in the audit log.
struct Preflight: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preflight", abstract: "repave plan (live preflight) vs the kubectl checks, at 0 and 1,000 unrelated pods.")

    @OptionGroup var lab: LabOptions

    @Option(help: "Unrelated pods added to the namespace for the second measurement.")
    var pods = 1000

    @Option(help: "Unrelated claims (each Bound to a static volume) added with them.")
    var claims = 300

    @Option(help: "hyperfine runs per command.")
    var runs = 10

    @Option(help: "hyperfine warm-up runs per command.")
    var warmup = 3

    struct Figures {
        var repaveWall = 0.0, scriptWall = 0.0
        var repaveRSS = 0.0, scriptRSS = 0.0
        var repaveCPU = 0.0, scriptCPU = 0.0
        var repaveRequests = AuditLog.Counts(), scriptRequests = AuditLog.Counts()
    }

    func run() async throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("repave-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let client = try KubeClient(connection: try KubeconfigLoader(explicitPath: lab.kubeconfig).load(), userAgent: "repave-bench/world")
        let world = DevpodWorld()
        _ = try await world.create(client, delays: .init(terminate: "0s", provision: "0s"))
        let home = try await GitHome(in: scratch)
        try await home.report(for: world, repave: lab.repave, to: scratch + "/git-report.json")
        try world.plan(from: try String(contentsOfFile: lab.plan, encoding: .utf8), gitReport: scratch + "/git-report.json")
            .write(toFile: scratch + "/plan.yaml", atomically: true, encoding: .utf8)
        let noise = Noise(namespace: world.namespace, id: world.id)
        do {
            let help = try await hyperfine([("repave --help", [lab.repave, "--help"]), ("kubectl --help", [lab.kubectl, "--help"])], scratch: scratch, cpu: true)
            let alone = try await measure(world: world, scratch: scratch)
            Report.note("preflight: adding \(pods) pods and \(claims) claims to \(world.namespace)")
            try await noise.create(client, pods: pods, claims: claims)
            let crowded = try await measure(world: world, scratch: scratch)
            print(render(help: help, alone: alone, crowded: crowded))
        } catch {
            await cleanUp(client, world: world, noise: noise)
            throw error
        }
        await cleanUp(client, world: world, noise: noise)
    }

    private func cleanUp(_ client: KubeClient, world: DevpodWorld, noise: Noise) async {
        await world.remove(client, oldVolume: nil)
        await DevpodWorld.removeNamespaces([world], client)
        await noise.removeVolumes(client)
    }

    /// The plan and the kubectl checks: wall times by hyperfine, then three runs of each under
    /// GNU time for the peak RSS and, from the audit log, the requests of one run.
    private func measure(world: DevpodWorld, scratch: String) async throws -> Figures {
        let ours = [lab.repave, "plan", scratch + "/plan.yaml", "--kubeconfig", lab.kubeconfig]
        let theirs = ["/bin/bash", lab.script, "--check-only", world.namespace, DevpodWorld.claim, DevpodWorld.deployment, world.newClass]
        let walls = try await hyperfine([("repave plan", ours), ("kubectl-runbook.sh --check-only", theirs)], scratch: scratch)
        var figures = Figures(repaveWall: walls[0], scriptWall: walls[1])
        var windows: [(Date, Date)] = []
        var cpu: ([Double], [Double]) = ([], [])
        for _ in 0..<3 {
            let a = try await TimedProcess.run(ours[0], Array(ours.dropFirst()), scratch: scratch)
            let b = try await TimedProcess.run(theirs[0], Array(theirs.dropFirst()), environment: environment, scratch: scratch)
            guard a.succeeded, b.succeeded else { throw BenchError("a preflight failed:\n\(a.output)\n\(b.output)") }
            figures.repaveRSS = max(figures.repaveRSS, a.peakRSSKiB)
            figures.scriptRSS = max(figures.scriptRSS, b.peakRSSKiB)
            windows = [(a.startedAt, a.endedAt), (b.startedAt, b.endedAt)]
            cpu.0.append(a.cpuSeconds)
            cpu.1.append(b.cpuSeconds)
        }
        (figures.repaveCPU, figures.scriptCPU) = (Report.median(cpu.0), Report.median(cpu.1))
        try await Task.sleep(for: .milliseconds(500))
        let audit = try AuditLog(path: lab.auditLog, userAgents: ["repave/", "kubectl/"])
        figures.repaveRequests = AuditLog.Counts(audit.requests(userAgentPrefix: "repave/", from: windows[0].0, to: windows[0].1))
        figures.scriptRequests = AuditLog.Counts(audit.requests(userAgentPrefix: "kubectl/", from: windows[1].0, to: windows[1].1))
        return figures
    }

    private var environment: [String: String] { ["KUBECONFIG": lab.kubeconfig, "KUBECTL": lab.kubectl] }

    /// hyperfine's median wall time of each command (no shell; warm-ups first), and with `cpu`
    /// after them its mean user + system time.
    private func hyperfine(_ commands: [(name: String, argv: [String])], scratch: String, cpu: Bool = false) async throws -> [Double] {
        let export = scratch + "/hyperfine-\(UUID().uuidString).json"
        var arguments = ["-N", "--style", "none", "--warmup", String(warmup), "--runs", String(runs), "--export-json", export]
        for command in commands { arguments += ["-n", command.name, command.argv.joined(separator: " ")] }
        var updates: [Environment.Key: String?] = [:]
        for (key, value) in environment { updates[Environment.Key(stringLiteral: key)] = value }
        let result = try await Subprocess.run(.name("hyperfine"), arguments: Arguments(arguments), environment: .inherit.updating(updates),
                                              output: .discarded, error: .string(limit: 65536))
        guard result.terminationStatus.isSuccess else { throw BenchError("hyperfine failed: \(result.standardError)") }
        let document = try JSON.decode(Data(contentsOf: URL(fileURLWithPath: export)))
        func seconds(_ value: JSON?) -> Double? {
            switch value {
            case .double(let value): value
            case .integer(let value): Double(value)
            default: nil
            }
        }
        let results = document["results"]?.arrayValue ?? []
        let medians = results.compactMap { seconds($0["median"]) }
        let cpus = results.compactMap { result in seconds(result["user"]).flatMap { user in seconds(result["system"]).map { user + $0 } } }
        guard medians.count == commands.count, cpus.count == commands.count else { throw BenchError("hyperfine's export lacks figures: \(export)") }
        return medians + (cpu ? cpus : [])
    }

    private func render(help: [Double], alone: Figures, crowded: Figures) -> String {
        let pods = pods.formatted(), claims = claims.formatted()
        var out = ["case: planning and the live preflight, cold processes (wall: hyperfine median of \(runs) runs after \(warmup) warm-ups; peak RSS: the largest of 3 runs; CPU: their median, hyperfine's mean for --help)"]
        let rows: [[String]] = [
            ["", "repave", "kubectl", "ratio", "target"],
            ["--help", Report.time(help[0]), Report.time(help[1]), Report.ratio(help[0], help[1]), "<= 30 ms: \(Report.verdict(help[0] <= 0.030))"],
            ["  CPU time (user + sys)", Report.time(help[2]), Report.time(help[3]), Report.ratio(help[2], help[3]), ""],
            ["plan + live preflight (vs kubectl checks)", Report.time(alone.repaveWall), Report.time(alone.scriptWall),
             Report.ratio(alone.repaveWall, alone.scriptWall), "<= 300 ms: \(Report.verdict(alone.repaveWall <= 0.300))"],
            ["  peak RSS", Report.mebibytes(kibibytes: alone.repaveRSS), Report.mebibytes(kibibytes: alone.scriptRSS), Report.ratio(alone.repaveRSS, alone.scriptRSS), ""],
            ["  CPU time (user + sys)", Report.time(alone.repaveCPU), Report.time(alone.scriptCPU), Report.ratio(alone.repaveCPU, alone.scriptCPU), ""],
            ["  API requests (lists)", "\(alone.repaveRequests.total) (\(alone.repaveRequests.lists))", "\(alone.scriptRequests.total) (\(alone.scriptRequests.lists))", "", ""],
            ["same, + \(pods) unrelated pods, \(claims) claims", Report.time(crowded.repaveWall), Report.time(crowded.scriptWall),
             Report.ratio(crowded.repaveWall, crowded.scriptWall), "<= 2 s: \(Report.verdict(crowded.repaveWall <= 2))"],
            ["  peak RSS", Report.mebibytes(kibibytes: crowded.repaveRSS), Report.mebibytes(kibibytes: crowded.scriptRSS),
             Report.ratio(crowded.repaveRSS, crowded.scriptRSS), "<= 64 MiB: \(Report.verdict(crowded.repaveRSS <= 64 * 1024))"],
            ["  CPU time (user + sys)", Report.time(crowded.repaveCPU), Report.time(crowded.scriptCPU), Report.ratio(crowded.repaveCPU, crowded.scriptCPU), ""],
            ["  API requests (lists)", "\(crowded.repaveRequests.total) (\(crowded.repaveRequests.lists))", "\(crowded.scriptRequests.total) (\(crowded.scriptRequests.lists))", "", ""],
        ]
        out.append(Report.table(rows))
        Report.summarize("repave --help", repave: Report.time(help[0]), alternative: Report.time(help[1]), ratio: Report.ratio(help[0], help[1]),
                         target: "<= 30 ms", met: help[0] <= 0.030)
        Report.summarize("plan + live preflight, devpod namespace", repave: Report.time(alone.repaveWall), alternative: Report.time(alone.scriptWall),
                         ratio: Report.ratio(alone.repaveWall, alone.scriptWall), target: "<= 300 ms", met: alone.repaveWall <= 0.300)
        Report.summarize("preflight, + \(pods) pods, \(claims) claims: wall", repave: Report.time(crowded.repaveWall), alternative: Report.time(crowded.scriptWall),
                         ratio: Report.ratio(crowded.repaveWall, crowded.scriptWall), target: "<= 2 s", met: crowded.repaveWall <= 2)
        Report.summarize("preflight, + \(pods) pods, \(claims) claims: peak RSS", repave: Report.mebibytes(kibibytes: crowded.repaveRSS),
                         alternative: Report.mebibytes(kibibytes: crowded.scriptRSS), ratio: Report.ratio(crowded.repaveRSS, crowded.scriptRSS),
                         target: "<= 64 MiB", met: crowded.repaveRSS <= 64 * 1024)
        return out.joined(separator: "\n")
    }
}

/// Unrelated workload in the devpod's namespace: claims Bound to static volumes made for them
/// (so the volume binder has nothing to retry every second) and pods mounting them that no
/// scheduler picks up (`schedulerName` names none), so they stay Pending without loading the
/// scheduler or the lab's kubelets, and go at once when deleted.
struct Noise {
    let namespace: String
    let id: String
    var label: String { "bench.repave/noise=\(id)" }

    func create(_ client: KubeClient, pods: Int, claims: Int) async throws {
        let className = "bench-static-\(id)"
        try await Self.concurrently(0..<claims) { index in
            let volume = "bench-noise-\(id)-\(index)", claim = "noise-\(index)"
            try await client.create(.persistentVolumes, [
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": ["name": .string(volume), "labels": ["bench.repave/noise": .string(id)]],
                "spec": ["capacity": ["storage": "1Gi"], "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Retain",
                         "storageClassName": .string(className), "hostPath": ["path": .string("/srv/noise/\(index)")],
                         "claimRef": ["namespace": .string(namespace), "name": .string(claim)]],
            ])
            try await client.create(.persistentVolumeClaims, in: namespace, [
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": ["name": .string(claim), "labels": ["app": .string("batch-\(index % 40)")]],
                "spec": ["accessModes": ["ReadWriteOnce"], "storageClassName": .string(className), "volumeName": .string(volume),
                         "resources": ["requests": ["storage": "1Gi"]]],
            ])
        }
        try await Self.concurrently(0..<pods) { index in
            try await client.create(.pods, in: namespace, [
                "apiVersion": "v1", "kind": "Pod",
                "metadata": ["name": .string("batch-\(index)"), "labels": ["app": .string("batch-\(index % 40)"), "tier": "batch"],
                             "annotations": ["bench.repave/purpose": "an unrelated pod: the preflight must look at it and leave it alone"]],
                "spec": [
                    "schedulerName": "bench-nobody",
                    "containers": [[
                        "name": "main", "image": "registry.example.invalid/batch:1", "command": ["sleep", "infinity"],
                        "env": [["name": "INDEX", "value": .string(String(index))]],
                        "resources": ["requests": ["cpu": "10m", "memory": "16Mi"]],
                        "volumeMounts": [["name": "data", "mountPath": "/data"], ["name": "scratch", "mountPath": "/scratch"]],
                    ]],
                    "volumes": [["name": "data", "persistentVolumeClaim": ["claimName": .string("noise-\(index % max(1, claims))")]],
                                ["name": "scratch", "emptyDir": [:]]],
                ],
            ])
        }
    }

    /// The static volumes (Released once the namespace and its claims are gone).
    func removeVolumes(_ client: KubeClient) async {
        do {
            let volumes = try await client.list(.persistentVolumes, labelSelector: label).items.map(PersistentVolume.init)
            try await Self.concurrently(volumes.indices) { index in
                try await client.delete(.persistentVolumes, named: volumes[index].name, uid: volumes[index].uid)
            }
        } catch {
            Report.note("warning: removing the noise volumes (\(label)): \(error)")
        }
    }

    /// Runs `body` for every index, 16 at a time (the audit benchmark's world too).
    static func concurrently(_ indices: Range<Int>, _ body: @escaping @Sendable (Int) async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = indices.lowerBound
            while next < indices.upperBound && next - indices.lowerBound < 16 {
                let index = next
                group.addTask { try await body(index) }
                next += 1
            }
            while try await group.next() != nil {
                if next < indices.upperBound {
                    let index = next
                    group.addTask { try await body(index) }
                    next += 1
                }
            }
        }
    }
}
