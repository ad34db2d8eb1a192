import ArgumentParser
import Foundation
import KubeAPI

/// `repave audit -A` at fleet scale against what an operator would write instead: `kubectl get
/// pvc,pv,sc,volumes.longhorn.io,replicas.longhorn.io -A -o json | jq` doing the same join (claim
/// → PV → Longhorn volume → healthy replicas, and the claim's class). The world: claims across
/// namespaces, each Bound to a static Longhorn PV with its volume and replicas in
/// longhorn-system; one volume in 7 has a failed replica, one claim in 10 comes from a
/// 1-replica class. Cold processes, run in turn; wall and CPU are medians, RSS the largest.
struct AuditScale: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "repave audit -A vs kubectl get … -A -o json | jq, on thousands of claims.")

    @OptionGroup var lab: LabOptions

    @Option(help: "Claims (each with its PV and Longhorn volume).")
    var claims = 5000

    @Option(help: "Namespaces the claims are spread over.")
    var namespaces = 100

    @Option(help: "Replicas per Longhorn volume.")
    var replicas = 3

    @Option(help: "Measured runs of each tool.")
    var runs = 3

    static let join = """
        .items as $all
        | ($all | map(select(.kind == "PersistentVolume")) | INDEX(.metadata.name)) as $pv
        | ($all | map(select(.kind == "StorageClass")) | INDEX(.metadata.name)) as $sc
        | ($all | map(select(.kind == "Volume")) | INDEX(.metadata.name)) as $lh
        | ($all | map(select(.kind == "Replica" and (.spec.healthyAt // "") != "" and (.spec.failedAt // "") == "" and (.spec.nodeID // "") != ""))
           | group_by(.spec.volumeName) | map({key: .[0].spec.volumeName, value: (map(.spec.nodeID) | unique | length)}) | from_entries) as $healthy
        | [$all[] | select(.kind == "PersistentVolumeClaim" and .status.phase == "Bound")
           | ($pv[.spec.volumeName].spec.csi.volumeHandle // "") as $h | $lh[$h] as $l
           | {namespace: .metadata.namespace, claim: .metadata.name, desired: ($l.spec.numberOfReplicas // 0), healthy: ($healthy[$h] // 0),
              class: (($sc[.spec.storageClassName].parameters.numberOfReplicas // "3") | tonumber),
              state: ($l.status.state // ""), robustness: ($l.status.robustness // "")}
           | select(.desired < $min or .healthy < $min or .class < $min or (.state == "attached" and .robustness != "healthy"))]
        | {findings: length}
        """

    func run() async throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("repave-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try Self.join.write(toFile: scratch + "/join.jq", atomically: true, encoding: .utf8)
        let client = try KubeClient(connection: try KubeconfigLoader(explicitPath: lab.kubeconfig).load(), userAgent: "repave-bench/world")
        let world = FleetWorld(id: String(UInt32.random(in: 0...UInt32.max), radix: 36), claims: claims, namespaces: namespaces, replicas: replicas)
        do {
            let started = ContinuousClock.now
            try await world.create(client)
            Report.note("audit: world of \(claims) claims, \(namespaces) namespaces, \(claims * replicas) replicas made in \(ContinuousClock.now - started)")
            let ours = [lab.repave, "audit", "-A", "-o", "json", "--kubeconfig", lab.kubeconfig]
            let theirs = ["/bin/bash", "-c", "set -o pipefail; \"$KUBECTL\" get pvc,pv,sc,volumes.longhorn.io,replicas.longhorn.io -A -o json | jq --argjson min 3 -c -f \(scratch)/join.jq"]
            var walls: ([Double], [Double]) = ([], []), cpu: ([Double], [Double]) = ([], []), rss = (0.0, 0.0)
            var found: (Int, Int) = (-1, -1)
            for _ in 0..<runs {
                let a = try await TimedProcess.run(ours[0], Array(ours.dropFirst()), scratch: scratch)
                let b = try await TimedProcess.run(theirs[0], Array(theirs.dropFirst()), environment: ["KUBECONFIG": lab.kubeconfig, "KUBECTL": lab.kubectl], scratch: scratch)
                // audit exits 2 when it finds anything, as it must here.
                guard case .exited(let code) = a.status, code == 0 || code == 2, b.succeeded else { throw BenchError("a run failed:\n\(a.output.suffix(2000))\n\(b.output.suffix(2000))") }
                walls.0.append(Report.seconds(a.wall)); walls.1.append(Report.seconds(b.wall))
                cpu.0.append(a.cpuSeconds); cpu.1.append(b.cpuSeconds)
                rss = (max(rss.0, a.peakRSSKiB), max(rss.1, b.peakRSSKiB))
                found = (Self.findings(a.output), Self.findings(b.output))
            }
            let wall = (Report.median(walls.0), Report.median(walls.1))
            let cpuTime = (Report.median(cpu.0), Report.median(cpu.1))
            let scale = "\(claims.formatted()) claims, \(claims.formatted()) volumes, \((claims * replicas).formatted()) replicas, \(namespaces) namespaces"
            print("case: audit of \(scale), cold processes (wall, CPU: median of \(runs) runs each; peak RSS: the largest)")
            print(Report.table([
                ["", "repave audit -A", "kubectl get … | jq", "ratio", "target"],
                ["wall", Report.time(wall.0), Report.time(wall.1), Report.ratio(wall.0, wall.1), "<= 0.5x: \(Report.verdict(wall.0 <= 0.5 * wall.1))"],
                ["peak RSS", Report.mebibytes(kibibytes: rss.0), Report.mebibytes(kibibytes: rss.1), Report.ratio(rss.0, rss.1),
                 "<= 100 MiB: \(Report.verdict(rss.0 <= 100 * 1024))"],
                ["CPU time (user + sys)", Report.time(cpuTime.0), Report.time(cpuTime.1), Report.ratio(cpuTime.0, cpuTime.1), ""],
                ["findings (the same join)", "\(found.0)", "\(found.1)", "", found.0 == found.1 ? "same" : "DIFFERENT"],
            ]))
            Report.summarize("audit -A, \(scale): wall", repave: Report.time(wall.0), alternative: Report.time(wall.1),
                             ratio: Report.ratio(wall.0, wall.1), target: "<= 0.5x", met: wall.0 <= 0.5 * wall.1)
            Report.summarize("audit -A, \(claims.formatted()) claims: peak RSS", repave: Report.mebibytes(kibibytes: rss.0),
                             alternative: Report.mebibytes(kibibytes: rss.1), ratio: Report.ratio(rss.0, rss.1), target: "<= 100 MiB", met: rss.0 <= 100 * 1024)
        } catch {
            await world.remove(client)
            throw error
        }
        await world.remove(client)
    }

    /// `findings` of the JSON document among a run's output lines (repave's report, jq's object).
    static func findings(_ output: String) -> Int {
        for line in output.split(separator: "\n") where line.hasPrefix("{") {
            guard let document = try? JSON.decode(Data(line.utf8)) else { continue }
            if let count = document["findings"]?.intValue { return Int(count) }
            if let list = document["findings"]?.arrayValue { return list.count }
        }
        return -1
    }
}

/// The fleet: namespaces, two Longhorn classes, and per claim a static PV (Retain), its Longhorn
/// volume and replicas, all labelled `bench.repave/audit=<id>` to be removed afterwards.
struct FleetWorld {
    let id: String, claims: Int, namespaces: Int, replicas: Int
    var label: String { "bench.repave/audit=\(id)" }
    var labels: JSON { ["bench.repave/audit": .string(id)] }
    func namespace(_ index: Int) -> String { "bench-audit-\(id)-\(index % namespaces)" }
    func className(_ index: Int) -> String { index % 10 == 0 ? "bench-audit-1r-\(id)" : "bench-audit-3r-\(id)" }

    func create(_ client: KubeClient) async throws {
        for (name, count) in [("bench-audit-1r-\(id)", 1), ("bench-audit-3r-\(id)", 3)] {
            try await client.create(.storageClasses, [
                "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": ["name": .string(name), "labels": labels],
                "provisioner": "driver.longhorn.io", "parameters": ["numberOfReplicas": .string(String(count))], "reclaimPolicy": "Retain",
            ])
        }
        try await Noise.concurrently(0..<namespaces) { index in
            try await client.create(.namespaces, ["metadata": ["name": .string(namespace(index)), "labels": labels]])
        }
        try await Noise.concurrently(0..<claims) { index in
            let name = "bench-audit-\(id)-\(index)", namespace = namespace(index), claim = "data-\(index)"
            let volume = try await client.create(.longhornVolumes, in: "longhorn-system", [
                "apiVersion": "longhorn.io/v1beta2", "kind": "Volume", "metadata": ["name": .string(name), "labels": labels],
                "spec": ["numberOfReplicas": .integer(Int64(replicas)), "size": "1073741824", "frontend": "blockdev"],
            ])
            for replica in 0..<replicas {
                let failed = index % 7 == 0 && replica == 0
                try await client.create(.longhornReplicas, in: "longhorn-system", [
                    "apiVersion": "longhorn.io/v1beta2", "kind": "Replica",
                    "metadata": ["name": .string("\(name)-r-\(replica)"),
                                 "labels": ["bench.repave/audit": .string(id), "longhornvolume": .string(name), "longhornnode": .string("lab-node-\(replica % 3 + 1)")],
                                 "ownerReferences": [["apiVersion": "longhorn.io/v1beta2", "kind": "Volume", "name": .string(name),
                                                      "uid": .string(ObjectMeta(volume["metadata"] ?? [:]).uid)]]],
                    "spec": ["volumeName": .string(name), "nodeID": .string("lab-node-\(replica % 3 + 1)"), "healthyAt": "2026-12-01T00:00:00Z",
                             "failedAt": failed ? "2026-12-02T00:00:00Z" : "", "volumeSize": "1073741824", "desireState": "stopped",
                             "dataDirectoryName": .string("\(name)-\(replica)"), "engineName": .string("\(name)-e-0")],
                    "status": ["currentState": "stopped", "mode": "RW"],
                ])
            }
            try await client.create(.persistentVolumes, [
                "apiVersion": "v1", "kind": "PersistentVolume", "metadata": ["name": .string(name), "labels": labels],
                "spec": ["capacity": ["storage": "1Gi"], "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Retain",
                         "storageClassName": .string(className(index)),
                         "csi": ["driver": "driver.longhorn.io", "volumeHandle": .string(name), "fsType": "ext4",
                                 "volumeAttributes": ["numberOfReplicas": .string(String(replicas))]],
                         "claimRef": ["namespace": .string(namespace), "name": .string(claim)]],
            ])
            try await client.create(.persistentVolumeClaims, in: namespace, [
                "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": ["name": .string(claim), "labels": labels],
                "spec": ["accessModes": ["ReadWriteOnce"], "storageClassName": .string(className(index)), "volumeName": .string(name),
                         "resources": ["requests": ["storage": "1Gi"]]],
            ])
        }
        // The binder binds pre-bound claims within a few sync periods; Longhorn (the lab agent)
        // writes each volume's status once.
        for _ in 0..<240 {
            let bound = try await client.list(.persistentVolumeClaims, labelSelector: label).items.filter { PersistentVolumeClaim($0).isBound }.count
            let settled = try await client.list(.longhornVolumes, in: "longhorn-system", labelSelector: label).items.filter { !LonghornVolume($0).state.isEmpty }.count
            if bound == claims && settled == claims { return }
            try await Task.sleep(for: .seconds(1))
        }
        Report.note("audit: warning: not every claim Bound or volume settled after 240 s; measuring anyway")
    }

    func remove(_ client: KubeClient) async {
        do {
            for type in [ResourceType.namespaces, .persistentVolumes, .storageClasses] {
                let items = try await client.list(type, labelSelector: label).items.map { ObjectMeta($0["metadata"] ?? [:]) }
                try await Noise.concurrently(items.indices) { index in
                    _ = try? await client.delete(type, named: items[index].name, uid: items[index].uid)
                }
            }
            let volumes = try await client.list(.longhornVolumes, in: "longhorn-system", labelSelector: label).items.map { ObjectMeta($0["metadata"] ?? [:]) }
            try await Noise.concurrently(volumes.indices) { index in
                _ = try? await client.delete(.longhornVolumes, named: volumes[index].name, in: "longhorn-system", uid: volumes[index].uid)
            }
            // Replicas go with their volume (owner references); any left are deleted here.
            let replicas = try await client.list(.longhornReplicas, in: "longhorn-system", labelSelector: label).items.map { ObjectMeta($0["metadata"] ?? [:]) }
            try await Noise.concurrently(replicas.indices) { index in
                _ = try? await client.delete(.longhornReplicas, named: replicas[index].name, in: "longhorn-system", uid: replicas[index].uid)
            }
        } catch {
            Report.note("warning: removing the audit world (\(label)): \(error)")
        }
    }
}
