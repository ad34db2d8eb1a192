import Foundation
import KubeAPI
import RepaveTestSupport
import Testing

/// `repave audit` on the lab: a namespace with a healthy 3-replica volume (the devpod's, after a
/// finished recreate that kept its old PV), a 1-replica one, a degraded one, a faulted one, a
/// detached one and a Pending claim.
@Suite("audit on the lab", .serialized)
struct AuditLabTests: DevpodTesting {
    let lab: Lab
    let client: KubeClient

    init() throws {
        lab = try Lab.current()
        client = try lab.adminClient(userAgent: "repave-test/audit")
    }

    func repave(_ arguments: [String]) async throws -> ProcessResult {
        try await runProcess(try repaveBinary(), arguments + ["--kubeconfig", lab.adminKubeconfig])
    }

    /// A claim, and a Deployment mounting it unless `mounted` is false.
    func claim(_ name: String, in namespace: String, storageClass: String, annotations: [String: String] = [:], mounted: Bool = true) async throws {
        try await client.create(.persistentVolumeClaims, in: namespace, LabFixtures.claim(name, storageClass: storageClass, annotations: annotations))
        if mounted { try await client.create(.deployments, in: namespace, LabFixtures.deployment(name, claim: name)) }
    }

    /// The Longhorn volume of a claim once it is bound, with the state and robustness wanted.
    func awaitVolume(_ claim: String, in namespace: String, state: String, robustness: String) async throws {
        let settled = try await poll(attempts: 300, every: .milliseconds(100)) {
            guard let bound = try await client.getIfPresent(.persistentVolumeClaims, named: claim, in: namespace).map(PersistentVolumeClaim.init),
                  let volume = bound.volumeName,
                  let longhorn = try await client.getIfPresent(.longhornVolumes, named: volume, in: "longhorn-system").map(LonghornVolume.init)
            else { return false }
            return longhorn.state == state && longhorn.robustness == robustness
        }
        #expect(settled, "\(namespace)/\(claim) never became \(state)/\(robustness)")
    }

    func json(_ result: ProcessResult) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any], "\(result.standardOutput)")
    }

    @Test("finds exactly the 1-replica, degraded and faulted claims and the kept PV; --write-plans writes plans that pass plan --offline; a second one refuses and writes nothing")
    func mixedNamespace() async throws {
        try await withDevpod { world in
            // A finished recreate: the claim is on the 3-replica class, the old PV kept.
            let run = try await repave(["run", world.planFile, "--yes", "--state-dir", world.scratch.file("runs")])
            #expect(run.status == 0, "\(run.standardError)")
            let runDirectory = try world.runDirectory()
            let oldClass = "longhorn-1r-\(world.id)", ns = world.namespace
            try await claim("single", in: ns, storageClass: oldClass)
            try await claim("degraded", in: ns, storageClass: world.newClass, annotations: ["lab.repave/robustness": "degraded"])
            try await claim("faulted", in: ns, storageClass: world.newClass, annotations: ["lab.repave/robustness": "faulted"])
            try await claim("resting", in: ns, storageClass: world.newClass, mounted: false)
            try await claim("waiting", in: ns, storageClass: world.newClass, annotations: ["lab.repave/provision": "fail"], mounted: false)
            try await awaitVolume("coder-jeda-codespace-home", in: ns, state: "attached", robustness: "healthy")
            try await awaitVolume("single", in: ns, state: "attached", robustness: "healthy")
            try await awaitVolume("degraded", in: ns, state: "attached", robustness: "degraded")
            try await awaitVolume("faulted", in: ns, state: "attached", robustness: "faulted")
            try await awaitVolume("resting", in: ns, state: "detached", robustness: "unknown")

            let audit = try await repave(["audit", "-n", ns, "-o", "json", "--state-dir", world.scratch.file("runs")])
            #expect(audit.status == 2, "\(audit.standardError)")
            let report = try json(audit)
            #expect((report["notAssessed"] as? [String]) == [], "\(report)")
            let findings = report["findings"] as? [[String: Any]] ?? []
            #expect(findings.compactMap { $0["claim"] as? String } == ["degraded", "faulted", "single"], "\(findings)")
            func problems(_ claim: String) -> Set<String> {
                Set((findings.first { $0["claim"] as? String == claim }?["problems"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String })
            }
            #expect(problems("single") == ["desired-replicas", "healthy-replicas", "class-replicas"])
            #expect(problems("degraded").contains("robustness") && problems("faulted").contains("robustness"))
            let retained = report["retainedVolumes"] as? [[String: Any]] ?? []
            #expect(retained.compactMap { $0["volume"] as? String } == [world.oldVolume], "\(retained)")
            // Its run finished, its directory is on this machine and its journal names the volume:
            // `repave finalize RUN` deletes it.
            #expect(retained.first?["runDirectory"] as? String == runDirectory && retained.first?["runState"] as? String == "finished")
            let cleanup = retained.first?["cleanup"] as? [String] ?? []
            #expect(cleanup == ["repave finalize \(runDirectory)"], "\(cleanup)")
            #expect(retained.first?["claim"] as? String == "\(ns)/coder-jeda-codespace-home")
            let unbound = report["unboundClaims"] as? [[String: Any]] ?? []
            #expect(unbound.compactMap { $0["claim"] as? String } == ["waiting"] && unbound.first?["phase"] as? String == "Pending")

            // Without the run's directory on this machine (issue 15): the uid-guarded deletes, and a note to check the run first.
            let elsewhere = try json(try await repave(["audit", "-n", ns, "-o", "json", "--state-dir", world.scratch.file("no-runs")]))
            let unknown = (elsewhere["retainedVolumes"] as? [[String: Any]])?.first ?? [:]
            #expect(unknown["runState"] as? String == "not-found" && (unknown["cleanup"] as? [String])?.count == 2, "\(unknown)")
            #expect((unknown["note"] as? String)?.hasPrefix("run directory not found: make sure its run finished") == true, "\(unknown)")

            // --write-plans, recreate: one plan per finding, each passing plan --offline.
            let plans = world.scratch.file("plans")
            let written = try await repave(["audit", "-n", ns, "--write-plans", plans, "--strategy", "recreate", "--storage-class", world.newClass])
            #expect(written.status == 2, "\(written.standardError)")
            let files = try FileManager.default.contentsOfDirectory(atPath: plans).sorted()
            #expect(files == ["\(ns)-degraded.yaml", "\(ns)-faulted.yaml", "\(ns)-single.yaml"])
            for file in files {
                let checked = try await runProcess(try repaveBinary(), ["plan", plans + "/" + file, "--offline"])
                #expect(checked.status == 0, "\(file): \(checked.standardError)")
            }
            let single = try String(contentsOfFile: plans + "/\(ns)-single.yaml", encoding: .utf8)
            #expect(single.contains("report: \"\(ns)-single-git-report.json\""), "\(single)")
            #expect(single.contains("- {kind: Deployment, name: \"single\"}"), "\(single)")
            #expect(single.contains("strategy: recreate") && single.contains("name: \"\(world.newClass)\""))

            // The same again: refused, the existing files named, nothing written or changed.
            let before = try files.map { try Data(contentsOf: URL(fileURLWithPath: plans + "/" + $0)) }
            let again = try await repave(["audit", "-n", ns, "--write-plans", plans, "--strategy", "replicas", "-o", "json"])
            #expect(again.status == 2)
            let error = try json(again)["error"] as? [String: Any]
            #expect(error?["code"] as? String == "audit.plan-exists", "\(again.standardOutput)")
            #expect((error?["causes"] as? [String])?.count == 3)
            #expect(try FileManager.default.contentsOfDirectory(atPath: plans).sorted() == files)
            #expect(try files.map { try Data(contentsOf: URL(fileURLWithPath: plans + "/" + $0)) } == before)

            // replicas and migrate plans pass plan --offline as written.
            let directory = world.scratch.file("plans-replicas")
            let wrote = try await repave(["audit", "-n", ns, "--write-plans", directory, "--strategy", "replicas"])
            let replicasFiles = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
            #expect(wrote.status == 2 && replicasFiles == files, "\(wrote.standardError)")
            for file in replicasFiles {
                let checked = try await runProcess(try repaveBinary(), ["plan", directory + "/" + file, "--offline"])
                #expect(checked.status == 0, "replicas \(file): \(checked.standardError)")
            }
            let migrate = try await repave(["audit", "-n", ns, "--write-plans", world.scratch.file("plans-migrate"), "--strategy", "migrate",
                                            "--storage-class", world.newClass, "--copy-image", "lab/mover:1"])
            let migrateFiles = try FileManager.default.contentsOfDirectory(atPath: world.scratch.file("plans-migrate")).sorted()
            #expect(migrate.status == 2 && migrateFiles == files, "\(migrate.standardError)")
            for file in migrateFiles {
                let checked = try await runProcess(try repaveBinary(), ["plan", world.scratch.file("plans-migrate") + "/" + file, "--offline"])
                #expect(checked.status == 0 && checked.standardOutput.contains("strategy:      migrate"), "migrate \(file): \(checked.standardError)")
            }
            // Every one of the deployments got its volume; the audit deleted and changed nothing.
            #expect(try await client.getIfPresent(.persistentVolumes, named: world.oldVolume) != nil)
        }
    }

    @Test("a bar of 1 finds only the unhealthy attached volumes; text output names them and says how to remove the kept PV")
    func textAndBar() async throws {
        try await withTestNamespace(client, prefix: "audit") { ns in
            let className = "longhorn-1r-audit-\(suffix())"
            try await client.create(.storageClasses, LabFixtures.storageClass(className, replicas: 1))
            defer { Task { [client] in
                if let object = try? await client.getIfPresent(.storageClasses, named: className) {
                    _ = try? await client.delete(.storageClasses, named: className, uid: StorageClass(object).uid)
                }
            } }
            try await claim("single", in: ns, storageClass: className)
            try await claim("broken", in: ns, storageClass: className, annotations: ["lab.repave/robustness": "degraded"])
            try await awaitVolume("single", in: ns, state: "attached", robustness: "healthy")
            try await awaitVolume("broken", in: ns, state: "attached", robustness: "degraded")
            let low = try await repave(["audit", "-n", ns, "--min-replicas", "1"])
            #expect(low.status == 2, "\(low.standardError)")
            #expect(low.standardOutput.contains("audit of namespace \(ns): 2 claims, replicas at least 1: 1 finding"), "\(low.standardOutput)")
            #expect(low.standardOutput.contains("FINDING \(ns)/broken") && !low.standardOutput.contains("FINDING \(ns)/single"))
            #expect(low.standardOutput.contains("  robustness: attached and degraded"))
            let bar = try await repave(["audit", "-n", ns])
            #expect(bar.standardOutput.contains("2 findings"), "\(bar.standardOutput)")
        }
    }
}

/// `repave audit`'s flags, refused before any kubeconfig is read (exit 64, one line each).
@Suite("audit command line")
struct AuditCommandLineTests {
    @Test("--write-plans needs --strategy; recreate needs --storage-class; migrate needs --copy-image; -n and -A exclude each other")
    func usage() async throws {
        let cases: [([String], String)] = [
            (["-n", "a", "-A"], "-n and -A exclude each other"),
            (["--write-plans", "d"], "needs --strategy"),
            (["--write-plans", "d", "--strategy", "recreate"], "needs --storage-class"),
            (["--write-plans", "d", "--strategy", "migrate", "--storage-class", "c"], "--strategy migrate needs --copy-image IMAGE"),
            (["--write-plans", "d", "--strategy", "recreate", "--storage-class", "c", "--copy-image", "i"], "--copy-image goes with --strategy migrate only"),
            (["--write-plans", "d", "--strategy", "replicas", "--storage-class", "c"], "drop --storage-class"),
            (["--strategy", "replicas"], "go with --write-plans"),
            (["--min-replicas", "0"], "from 1 to 10"),
            (["--write-plans", "d", "--strategy", "rebuild"], "rebuild"),
        ]
        for (arguments, message) in cases {
            let result = try await runProcess(try repaveBinary(), ["audit"] + arguments + ["--kubeconfig", "/nonexistent"])
            #expect(result.status == 64 && result.standardError.contains(message), "\(arguments): \(result.status) \(result.standardError)")
        }
    }
}
