import Foundation
import Journal
import KubeAPI
import RepaveTestSupport
import Testing

/// The mission, end to end on the lab: the devpod's home claim recreated on a 3-replica class.
@Suite("recreate end to end", .serialized)
struct RecreateTests: DevpodTesting {
    let lab: Lab
    let client: KubeClient

    init() throws {
        lab = try Lab.current()
        client = try lab.adminClient(userAgent: "repave-test/recreate")
    }

    @Test("the devpod scenario: new claim, same name, 3 healthy replicas, workload back, old volume retained, lease released")
    func devpod() async throws {
        try await withDevpod { world in
            // This run spells the plan `kind: Plan` with `strategy: recreate`; the other devpod
            // tests keep the first spelling, `kind: RecreatePlan`.
            let plan = try String(contentsOfFile: world.planFile, encoding: .utf8)
            #expect(plan.contains("kind: RecreatePlan\n"))
            try plan.replacingOccurrences(of: "kind: RecreatePlan\n", with: "kind: Plan\nstrategy: recreate\n").write(toFile: world.planFile, atomically: true, encoding: .utf8)
            let result = try await runProcess(try repaveBinary(), ["run", world.planFile, "--yes", "--kubeconfig", lab.adminKubeconfig, "--state-dir", world.scratch.file("runs")])
            #expect(result.status == 0, "\(result.standardError)")
            #expect(result.standardOutput.contains("finished: \(world.namespace)/coder-jeda-codespace-home recreated on storageclass \(world.newClass)"))
            for step in ["preflight", "save-manifests", "ensure-storage-class", "retain-old-volume", "scale-down", "delete-claim", "create-claim", "await-bound", "scale-up", "verify", "release-old-volume"] {
                #expect(result.standardError.contains("] \(step): "), "no progress line for \(step)")
            }

            let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "coder-jeda-codespace-home", in: world.namespace))
            #expect(claim.uid != world.original.uid)
            #expect(claim.storageClassName == world.newClass)
            #expect(claim.isBound)
            #expect(claim.requestedStorage == "60Gi")
            #expect(claim.metadata.annotations["repave/run-id"] != nil)
            // The summary after the steps: uids, the volume as it is now, the measured downtime.
            #expect(result.standardOutput.contains("  claim:      old uid \(world.original.uid) -> new uid \(claim.uid)"), "\(result.standardOutput)")
            #expect(result.standardOutput.contains("  volume:     \(claim.volumeName ?? "?") on \(world.newClass): 3 replicas, healthy"))
            #expect(result.standardOutput.contains("  downtime:   "))
            #expect(result.standardOutput.contains("  old volume: \(world.oldVolume) retained"))
            let longhorn = LonghornVolume(try await client.get(.longhornVolumes, named: claim.volumeName ?? "", in: "longhorn-system"))
            #expect(longhorn.numberOfReplicas == 3)
            #expect(longhorn.robustness == "healthy")
            let deployment = Deployment(try await client.get(.deployments, named: "coder-jeda-codespace", in: world.namespace))
            #expect(deployment.replicas == 1 && deployment.availableReplicas == 1)
            #expect(deployment.metadata.annotations["repave/original-replicas"] == nil)
            let old = PersistentVolume(try await client.get(.persistentVolumes, named: world.oldVolume))
            #expect(old.reclaimPolicy == "Retain")
            #expect(try await client.getIfPresent(.longhornVolumes, named: old.name, in: "longhorn-system") != nil)
            #expect(try await client.getIfPresent(.leases, named: "repave-coder-jeda-codespace-home", in: world.namespace) == nil)

            #expect(result.standardError.contains("scale-down: waiting for 1 pod to terminate: coder-jeda-codespace-"))
            #expect(result.standardError.contains("scale-up: waiting for the rollout of Deployment/coder-jeda-codespace"))
            // --progress auto through a pipe: plain lines, nothing redrawn.
            #expect(!result.standardError.contains("\u{1B}[K") && !result.standardError.contains("\r"))
            let runs = try FileManager.default.contentsOfDirectory(atPath: world.scratch.file("runs"))
            let status = try await runProcess(try repaveBinary(), ["status", world.scratch.file("runs/\(runs[0])"), "--kubeconfig", lab.adminKubeconfig])
            #expect(status.standardOutput.contains("cluster claim: \(world.namespace)/coder-jeda-codespace-home uid \(claim.uid), class \(world.newClass), Bound"))
            #expect(status.standardOutput.contains("cluster lease: none"))
            let records = try Journal.read(directory: world.scratch.file("runs/\(runs[0])")).records
            #expect(records.last?.kind == "finished")
            #expect(records.filter { $0.kind == "intent" }.count <= 8)
            #expect(FileManager.default.fileExists(atPath: world.scratch.file("runs/\(runs[0])/manifests/persistentvolumeclaim-coder-jeda-codespace-home.json")))

            // The runbook for the next window: the live preflight's verdict and this run's measured times.
            let runbook = try await runProcess(try repaveBinary(), ["runbook", world.planFile, "--journal", world.scratch.file("runs/\(runs[0])"), "--kubeconfig", lab.adminKubeconfig])
            #expect(runbook.status == 0, "\(runbook.standardError)")
            #expect(runbook.standardOutput.contains("Generated by `repave runbook \(world.planFile) --journal \(world.scratch.file("runs/\(runs[0])"))`"))
            #expect(runbook.standardOutput.contains("- Measured in the previous run `\(world.scratch.file("runs/\(runs[0])"))`: downtime "))
            #expect(runbook.standardOutput.contains("Live preflight against https://127.0.0.1:"))
            #expect(runbook.standardOutput.contains("**GO**"))
        }
    }

    @Test("oldVolume: delete: once the new volume is verified, the old PV and its Longhorn Volume are deleted, uid-guarded")
    func oldVolumeDelete() async throws {
        try await withDevpod(planExtra: "oldVolume: delete") { world in
            let pvUID = PersistentVolume(try await client.get(.persistentVolumes, named: world.oldVolume)).uid
            let longhornUID = LonghornVolume(try await client.get(.longhornVolumes, named: world.oldVolume, in: "longhorn-system")).uid
            let result = try await runProcess(try repaveBinary(), ["run", world.planFile, "--yes", "--kubeconfig", lab.adminKubeconfig, "--state-dir", world.scratch.file("runs")])
            #expect(result.status == 0, "\(result.standardError)")
            #expect(result.standardError.contains("] release-old-volume: delete the retained old volume"))
            #expect(result.standardOutput.contains("  old volume: \(world.oldVolume) deleted"))
            try await client.wait(for: .persistentVolumes, named: world.oldVolume, timeout: .seconds(30), describedAs: "old PV gone") { $0 == nil }
            #expect(try await client.getIfPresent(.longhornVolumes, named: world.oldVolume, in: "longhorn-system") == nil)
            let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: world.original.name, in: world.namespace))
            #expect(claim.isBound && claim.storageClassName == world.newClass)
            #expect(try await client.getIfPresent(.longhornVolumes, named: claim.volumeName ?? "", in: "longhorn-system") != nil)
            // The journal shows both deletes, each with the uid it was guarded by.
            let runs = try FileManager.default.contentsOfDirectory(atPath: world.scratch.file("runs"))
            let intents = try Journal.read(directory: world.scratch.file("runs/\(runs[0])")).records
                .filter { $0.kind == "intent" && $0.step == "release-old-volume" }.map { String(decoding: $0.data, as: UTF8.self) }
            #expect(intents.count == 2, "\(intents)")
            #expect(intents.contains { $0.contains(pvUID) } && intents.contains { $0.contains(longhornUID) }, "\(intents)")
        }
    }

    @Test("crashed at the point of no return and inside the scale-up wait, then resumed: the claim is recreated once", arguments: ["after-request:delete-claim", "after-request:create-claim", "in-wait:scale-up"])
    func crashAndResume(_ failpoint: String) async throws {
        try await withDevpod { world in
            let crashed = try await runProcess(try repaveBinary(), ["run", world.planFile, "--yes", "--kubeconfig", lab.adminKubeconfig, "--state-dir", world.scratch.file("runs")],
                                               environment: ["REPAVE_FAILPOINTS": failpoint])
            #expect(crashed.status == 137, "\(crashed.standardError)")
            let run = world.scratch.file("runs/" + (try FileManager.default.contentsOfDirectory(atPath: world.scratch.file("runs"))[0]))
            let status = try await runProcess(try repaveBinary(), ["status", run])
            #expect(status.standardOutput.contains("state:      interrupted"))
            let resumed = try await runProcess(try repaveBinary(), ["resume", run, "--kubeconfig", lab.adminKubeconfig])
            #expect(resumed.status == 0, "\(failpoint): \(resumed.standardError)")
            #expect(resumed.standardOutput.contains("from the journal's whole-second times"), "\(resumed.standardOutput)")
            let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "coder-jeda-codespace-home", in: world.namespace))
            #expect(claim.uid != world.original.uid && claim.storageClassName == world.newClass && claim.isBound)
            let records = try Journal.read(directory: run).records
            #expect(records.last?.kind == "finished")
            // One creation of the new claim, whatever the crash point.
            let newClaims = Set(records.filter { $0.kind == "fact" }.compactMap { try? $0.decode([String: String].self) }.filter { $0["key"] == "newclaim.uid" }.compactMap { $0["value"] })
            #expect(newClaims == [claim.uid])
            #expect(Deployment(try await client.get(.deployments, named: "coder-jeda-codespace", in: world.namespace)).availableReplicas == 1)
        }
    }

    @Test("a claim recreated by someone else while the run was stopped: resume stops (exit 3) and neither adopts nor deletes it")
    func foreignClaim() async throws {
        try await withDevpod { world in
            let crashed = try await runProcess(try repaveBinary(), ["run", world.planFile, "--yes", "--kubeconfig", lab.adminKubeconfig, "--state-dir", world.scratch.file("runs")],
                                               environment: ["REPAVE_FAILPOINTS": "after-request:delete-claim"])
            #expect(crashed.status == 137, "\(crashed.standardError)")
            try await client.wait(for: .persistentVolumeClaims, named: "coder-jeda-codespace-home", in: world.namespace, timeout: .seconds(30), describedAs: "old claim gone") { $0 == nil }
            // Someone else (by hand, or a reconciler) makes the claim again, without this run's id.
            let theirs = PersistentVolumeClaim(try await client.create(.persistentVolumeClaims, in: world.namespace,
                LabFixtures.claim("coder-jeda-codespace-home", storageClass: world.newClass, size: "60Gi")))
            let run = world.scratch.file("runs/" + (try FileManager.default.contentsOfDirectory(atPath: world.scratch.file("runs"))[0]))
            let resumed = try await runProcess(try repaveBinary(), ["resume", run, "--kubeconfig", lab.adminKubeconfig])
            #expect(resumed.status == 3, "\(resumed.standardError)")
            #expect(resumed.standardError.contains("error[create-claim.foreign]: "), "\(resumed.standardError)")
            let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "coder-jeda-codespace-home", in: world.namespace))
            #expect(claim.uid == theirs.uid)
            #expect(claim.metadata.annotations["repave/run-id"] == nil)
        }
    }

    @Test("a claim replaced by someone else before the point of no return: resume is refused (exit 4) until --accept-changed-plan")
    func claimReplacedBeforeResume() async throws {
        try await withDevpod { world in
            let crashed = try await runProcess(try repaveBinary(), ["run", world.planFile, "--yes", "--kubeconfig", lab.adminKubeconfig, "--state-dir", world.scratch.file("runs")],
                                               environment: ["REPAVE_FAILPOINTS": "in-wait:scale-down"])
            #expect(crashed.status == 137, "\(crashed.standardError)")
            // Someone deletes the claim and makes another of the same name.
            let current = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: world.original.name, in: world.namespace))
            #expect(current.uid == world.original.uid)
            _ = try await client.delete(.persistentVolumeClaims, named: world.original.name, in: world.namespace, uid: current.uid)
            try await client.wait(for: .persistentVolumeClaims, named: world.original.name, in: world.namespace, timeout: .seconds(30), describedAs: "claim gone") { $0 == nil }
            let theirs = PersistentVolumeClaim(try await client.create(.persistentVolumeClaims, in: world.namespace,
                LabFixtures.claim(world.original.name, storageClass: world.newClass, size: "60Gi")))
            let run = world.scratch.file("runs/" + (try FileManager.default.contentsOfDirectory(atPath: world.scratch.file("runs"))[0]))
            let resumed = try await runProcess(try repaveBinary(), ["resume", run, "--kubeconfig", lab.adminKubeconfig])
            #expect(resumed.status == 4, "\(resumed.standardError)")
            #expect(resumed.standardError.hasPrefix("error[resume.changed]: "), "\(resumed.standardError)")
            #expect(resumed.standardError.contains("persistentvolumeclaim/\(world.namespace)/\(world.original.name) is another object now (uid \(world.original.uid) at the start, \(theirs.uid) now)"))
            #expect(PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: world.original.name, in: world.namespace)).uid == theirs.uid)
        }
    }

    @Test("secrets stay secret: with --log-level trace, no byte of output, journal or saved manifest holds the token or the client key")
    func secretsKept() async throws {
        try await withDevpod { world in
            let token = try lab.token()
            let keyPEM = try String(contentsOfFile: lab.adminKey, encoding: .utf8)
            // Slices of the key's base64 body: a leak of any part of it shows.
            let keyBody = keyPEM.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
            let keySlices = stride(from: 0, to: max(0, keyBody.count - 24), by: 40).map { String(keyBody.dropFirst($0).prefix(24)) }
            #expect(token.count >= 32 && keySlices.count >= 3)
            let runs = world.scratch.file("runs")
            var produced: [String] = []
            func repave(_ arguments: [String], kubeconfig: String) async throws {
                let result = try await runProcess(try repaveBinary(), arguments + ["--kubeconfig", kubeconfig, "--log-level", "trace"])
                produced += [result.standardOutput, result.standardError]
            }
            let tokenKubeconfig = try lab.value("TOKEN_KUBECONFIG")
            try await repave(["plan", world.planFile, "--server-dry-run"], kubeconfig: tokenKubeconfig)
            try await repave(["plan", world.planFile, "--server-dry-run"], kubeconfig: lab.adminKubeconfig)
            try await repave(["config", "-o", "json"], kubeconfig: tokenKubeconfig)
            try await repave(["config", "-o", "json"], kubeconfig: lab.adminKubeconfig)
            try await repave(["run", world.planFile, "--yes", "--state-dir", runs], kubeconfig: tokenKubeconfig)
            let run = runs + "/" + (try FileManager.default.contentsOfDirectory(atPath: runs)[0])
            try await repave(["status", run], kubeconfig: tokenKubeconfig)
            try await repave(["journal", "show", run, "-o", "json"], kubeconfig: tokenKubeconfig)
            try await repave(["runbook", world.planFile, "--journal", run], kubeconfig: tokenKubeconfig)
            // A refused request (the restricted user) must not echo credentials in its error either.
            try await repave(["run", world.planFile, "--yes", "--state-dir", world.scratch.file("r2")], kubeconfig: try lab.value("RESTRICTED_KUBECONFIG"))
            #expect(produced.last?.contains("the user may not do everything the run needs: missing") == true, "the restricted run was not refused for permissions")
            #expect(produced.joined().contains("finished: \(world.namespace)/coder-jeda-codespace-home"), "the run did not finish: \(produced.joined().suffix(2000))")
            #expect(produced.joined().contains(" debug repave: "), "the most verbose logging produced nothing to check")
            let files = FileManager.default.enumerator(atPath: world.scratch.path)?.compactMap { $0 as? String } ?? []
            for file in files {
                let path = world.scratch.file(file)
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
                produced.append(String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self))
            }
            #expect(files.contains { $0.hasSuffix("journal.jsonl") } && files.contains { $0.contains("manifests/") })
            for (index, text) in produced.enumerated() {
                #expect(!text.contains(token) && !text.contains(token.prefix(16)), "output \(index) holds the token")
                for slice in keySlices { #expect(!text.contains(slice), "output \(index) holds part of the client key") }
            }
        }
    }

    @Test("refusals change nothing: a pod of another workload mounts the claim; the target class exists with other parameters")
    func refusals() async throws {
        let scratch = try ScratchDirectory()
        let id = suffix()
        let oldClass = "longhorn-1r-\(id)", clash = "longhorn-3r-\(id)"
        try await withTestNamespace(client, prefix: "devpod") { namespace in
            let original = try await devpodWorld(namespace, oldClass: oldClass)
            // The target class exists with one replica: parameters are immutable, so refuse.
            try await client.create(.storageClasses, LabFixtures.storageClass(clash, replicas: 1))
            let planFile = scratch.file("plan.yaml")
            try plan(namespace: namespace, newClass: clash).write(toFile: planFile, atomically: true, encoding: .utf8)
            let refused = try await runProcess(try repaveBinary(), ["run", planFile, "--yes", "--kubeconfig", lab.adminKubeconfig, "--state-dir", scratch.file("runs")])
            #expect(refused.status == 2, "\(refused.standardError)")
            #expect(refused.standardError.contains("error[preflight.class-mismatch]: storageclass \(clash) "), "\(refused.standardError)")
            #expect(try await client.getIfPresent(.leases, named: "repave-coder-jeda-codespace-home", in: namespace) == nil, "a refused run releases its lock")

            // Another Deployment mounts the same claim.
            try await client.create(.deployments, in: namespace, LabFixtures.deployment("sidecar", claim: "coder-jeda-codespace-home"))
            try await client.waitAvailable("sidecar", in: namespace, describedAs: "sidecar available")
            try plan(namespace: namespace, newClass: "longhorn-3r-other-\(id)").write(toFile: planFile, atomically: true, encoding: .utf8)
            let foreign = try await runProcess(try repaveBinary(), ["run", planFile, "--yes", "--kubeconfig", lab.adminKubeconfig, "--state-dir", scratch.file("runs2")])
            #expect(foreign.status == 2, "\(foreign.standardError)")
            #expect(foreign.standardError.contains("error[preflight.foreign-workload]: "), "\(foreign.standardError)")
            #expect(foreign.standardError.contains("Deployment/sidecar"))

            // Nothing changed.
            let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "coder-jeda-codespace-home", in: namespace))
            #expect(claim.uid == original.uid)
            #expect(Deployment(try await client.get(.deployments, named: "coder-jeda-codespace", in: namespace)).replicas == 1)
            #expect(PersistentVolume(try await client.get(.persistentVolumes, named: claim.volumeName ?? "")).reclaimPolicy == "Delete")
            #expect(try await client.getIfPresent(.storageClasses, named: "longhorn-3r-other-\(id)") == nil)
        }
        await cleanUp(classes: [oldClass, clash], volume: nil)
    }

    @Test("refusals before any change: missing permissions (all listed), an unacknowledged Argo CD or HPA; acknowledged, it runs")
    func preflightRefusals() async throws {
        try await withDevpod { world in
            let restricted = try await runProcess(try repaveBinary(), ["run", world.planFile, "--yes", "--kubeconfig", try lab.value("RESTRICTED_KUBECONFIG"), "--state-dir", world.scratch.file("r1")])
            #expect(restricted.status == 2, "\(restricted.standardError)")
            #expect(restricted.standardError.contains("error[preflight.permissions]: "), "\(restricted.standardError)")
            #expect(restricted.standardError.contains("caused by: delete persistentvolumeclaims in \(world.namespace)"))
            #expect(restricted.standardError.contains("caused by: patch deployments.apps in \(world.namespace)"))
            #expect(restricted.standardError.contains("hint: grant these rules"))

            // Argo CD tracks the Deployment: refused until acknowledged.
            try await client.patch(.deployments, named: "coder-jeda-codespace", in: world.namespace, .merge(["metadata": ["annotations": ["argocd.argoproj.io/tracking-id": "devpod:apps/Deployment:devpod/coder-jeda-codespace"]]]))
            try await client.create(.horizontalPodAutoscalers, in: world.namespace, [
                "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": ["name": "ws"],
                "spec": ["scaleTargetRef": ["apiVersion": "apps/v1", "kind": "Deployment", "name": "coder-jeda-codespace"], "minReplicas": 2, "maxReplicas": 3],
            ])
            let argo = try await runProcess(try repaveBinary(), ["run", world.planFile, "--yes", "--kubeconfig", lab.adminKubeconfig, "--state-dir", world.scratch.file("r2")])
            #expect(argo.status == 2, "\(argo.standardError)")
            #expect(argo.standardError.contains("error[preflight.reconcilers]: "), "\(argo.standardError)")
            #expect(argo.standardError.contains("caused by: nothing was changed"))
            #expect(argo.standardError.contains("acknowledge:"))
            #expect(argo.standardError.contains("is tracked by Argo CD"))
            #expect(argo.standardError.contains("HorizontalPodAutoscaler ws scales Deployment/coder-jeda-codespace"))
            #expect(PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "coder-jeda-codespace-home", in: world.namespace)).uid == world.original.uid)

            try plan(namespace: world.namespace, newClass: world.newClass, extra: "acknowledge: [argocd, hpa]").write(toFile: world.planFile, atomically: true, encoding: .utf8)
            let acknowledged = try await runProcess(try repaveBinary(), ["run", world.planFile, "--yes", "--kubeconfig", lab.adminKubeconfig, "--state-dir", world.scratch.file("r3")])
            #expect(acknowledged.status == 0, "\(acknowledged.standardError)")
            // Scale-up restores at least the HPA's minReplicas (2), not the original 1.
            #expect(Deployment(try await client.get(.deployments, named: "coder-jeda-codespace", in: world.namespace)).replicas == 2)
        }
    }

    @Test("a StatefulSet, a WaitForFirstConsumer class, and a Deployment already at 0 replicas", arguments: ["statefulset", "wffc", "zero"])
    func variants(_ variant: String) async throws {
        let scratch = try ScratchDirectory()
        let id = suffix()
        let oldClass = "longhorn-1r-\(id)", newClass = "longhorn-3r-\(id)"
        var oldVolume: String?
        try await withTestNamespace(client, prefix: "devpod") { namespace in
            var workload = "kind: Deployment, name: coder-jeda-codespace"
            var extraClass = ""
            switch variant {
            case "statefulset":
                workload = "kind: StatefulSet, name: db"
                try await client.create(.storageClasses, LabFixtures.storageClass(oldClass, replicas: 1))
                try await client.create(.persistentVolumeClaims, in: namespace, LabFixtures.claim("coder-jeda-codespace-home", storageClass: oldClass))
                try await client.create(.statefulSets, in: namespace, [
                    "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": ["name": "db"],
                    "spec": ["replicas": 1, "serviceName": "db", "selector": ["matchLabels": ["app": "db"]],
                             "template": ["metadata": ["labels": ["app": "db"]],
                                          "spec": ["containers": [["name": "db", "image": "postgres"]],
                                                   "volumes": [["name": "data", "persistentVolumeClaim": ["claimName": "coder-jeda-codespace-home"]]]]]],
                ])
                try await client.wait(for: .statefulSets, named: "db", in: namespace, timeout: .seconds(30), describedAs: "db ready") {
                    $0.map { StatefulSet($0).readyReplicas == 1 } ?? false
                }
            case "wffc":
                extraClass = "  volumeBindingMode: WaitForFirstConsumer\n"
                _ = try await devpodWorld(namespace, oldClass: oldClass)
            default:
                _ = try await devpodWorld(namespace, oldClass: oldClass)
                try await client.patch(.deployments, named: "coder-jeda-codespace", in: namespace, .merge(["spec": ["replicas": 0]]))
                try await client.wait(for: .deployments, named: "coder-jeda-codespace", in: namespace, timeout: .seconds(30), describedAs: "no pods") {
                    $0.map { Deployment($0).statusReplicas == 0 } ?? false
                }
                try await poll(attempts: 50, every: .milliseconds(100)) { try await client.list(.pods, in: namespace).items.isEmpty }
            }
            let original = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "coder-jeda-codespace-home", in: namespace))
            oldVolume = original.volumeName
            let text = plan(namespace: namespace, newClass: newClass)
                .replacingOccurrences(of: "kind: Deployment, name: coder-jeda-codespace", with: workload)
                .replacingOccurrences(of: "  parameters: {numberOfReplicas: \"3\", staleReplicaTimeout: \"30\", fsType: ext4}\n",
                                      with: "  parameters: {numberOfReplicas: \"3\", staleReplicaTimeout: \"30\", fsType: ext4}\n" + extraClass)
            #expect(text.contains(workload) && (extraClass.isEmpty || text.contains(extraClass)), "the plan template changed: \(variant) would test the default plan")
            let planFile = scratch.file("plan.yaml")
            try text.write(toFile: planFile, atomically: true, encoding: .utf8)
            let result = try await runProcess(try repaveBinary(), ["run", planFile, "--yes", "--kubeconfig", lab.adminKubeconfig, "--state-dir", scratch.file("runs")])
            #expect(result.status == 0, "\(variant): \(result.standardError)")
            let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: "coder-jeda-codespace-home", in: namespace))
            #expect(claim.uid != original.uid && claim.storageClassName == newClass, "\(variant)")
            switch variant {
            case "statefulset":
                #expect(StatefulSet(try await client.get(.statefulSets, named: "db", in: namespace)).readyReplicas == 1)
            case "wffc":
                #expect(claim.isBound)
                #expect(claim.metadata.annotations["volume.kubernetes.io/selected-node"] != nil)
            default:
                // Nothing runs: the volume stays unbound or detached, the workload stays at 0.
                #expect(Deployment(try await client.get(.deployments, named: "coder-jeda-codespace", in: namespace)).replicas == 0)
            }
        }
        await cleanUp(classes: [oldClass, newClass], volume: oldVolume)
    }

    @Test("a run that changed nothing and was never confirmed starts over on resume: it asks again (here: needs --yes), then runs")
    func resumeWithoutConsent() async throws {
        try await withDevpod { world in
            // Interactive runs journal the operator's answer when it is given; until then (or
            // when it was no) nothing may be changed without asking.
            let crashed = try await runProcess(try repaveBinary(), ["run", world.planFile, "--yes", "--kubeconfig", lab.adminKubeconfig, "--state-dir", world.scratch.file("runs")],
                                               environment: ["REPAVE_FAILPOINTS": "before-confirmed:run"])
            #expect(crashed.status == 137, "\(crashed.standardError)")
            let run = try world.runDirectory()
            let asked = try await runProcess(try repaveBinary(), ["resume", run, "--kubeconfig", lab.adminKubeconfig])
            #expect(asked.status == 2 && asked.standardError.contains("the run changed nothing yet, so resuming it asks for the confirmation"), "\(asked.standardError)")
            #expect(PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: world.original.name, in: world.namespace)).uid == world.original.uid)
            let resumed = try await runProcess(try repaveBinary(), ["resume", run, "--yes", "--kubeconfig", lab.adminKubeconfig])
            #expect(resumed.status == 0, "\(resumed.standardError)")
            #expect(PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: world.original.name, in: world.namespace)).uid != world.original.uid)
        }
    }

    @Test("abort before the point of no return puts everything back; after it, abort is refused")
    func abort() async throws {
        try await withDevpod { world in
            let crashed = try await runProcess(try repaveBinary(), ["run", world.planFile, "--yes", "--kubeconfig", lab.adminKubeconfig, "--state-dir", world.scratch.file("a")],
                                               environment: ["REPAVE_FAILPOINTS": "after-outcome:scale-down"])
            #expect(crashed.status == 137)
            #expect(Deployment(try await client.get(.deployments, named: "coder-jeda-codespace", in: world.namespace)).replicas == 0)
            let run = world.scratch.file("a/" + (try FileManager.default.contentsOfDirectory(atPath: world.scratch.file("a"))[0]))
            let aborted = try await runProcess(try repaveBinary(), ["abort", run, "--kubeconfig", lab.adminKubeconfig])
            #expect(aborted.status == 0, "\(aborted.standardError)")
            #expect(aborted.standardOutput.contains("Deployment/coder-jeda-codespace back to 1 replicas"))
            #expect(aborted.standardOutput.contains("reclaim policy back to Delete"))
            let deployment = Deployment(try await client.get(.deployments, named: "coder-jeda-codespace", in: world.namespace))
            #expect(deployment.replicas == 1 && deployment.metadata.annotations["repave/original-replicas"] == nil)
            #expect(PersistentVolume(try await client.get(.persistentVolumes, named: world.oldVolume)).reclaimPolicy == "Delete")
            #expect(try await client.getIfPresent(.leases, named: "repave-coder-jeda-codespace-home", in: world.namespace) == nil)
            #expect(PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: world.original.name, in: world.namespace)).uid == world.original.uid)
            #expect(try await runProcess(try repaveBinary(), ["status", run]).standardOutput.contains("state:      aborted"))
            // An aborted run stays aborted: resume refuses it, and the claim is untouched.
            let resumedAborted = try await runProcess(try repaveBinary(), ["resume", run, "--kubeconfig", lab.adminKubeconfig])
            #expect(resumedAborted.status == 4 && resumedAborted.standardError.contains("was aborted: what it changed was put back"), "\(resumedAborted.standardError)")
            #expect(PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: world.original.name, in: world.namespace)).uid == world.original.uid)

            let past = try await runProcess(try repaveBinary(), ["run", world.planFile, "--yes", "--kubeconfig", lab.adminKubeconfig, "--state-dir", world.scratch.file("b")],
                                            environment: ["REPAVE_FAILPOINTS": "after-request:delete-claim"])
            #expect(past.status == 137)
            let second = world.scratch.file("b/" + (try FileManager.default.contentsOfDirectory(atPath: world.scratch.file("b"))[0]))
            let refused = try await runProcess(try repaveBinary(), ["abort", second, "--kubeconfig", lab.adminKubeconfig])
            #expect(refused.status == 4)
            #expect(refused.standardError.hasPrefix("error[abort.past-pnr]: "), "\(refused.standardError)")
            let finished = try await runProcess(try repaveBinary(), ["resume", second, "--kubeconfig", lab.adminKubeconfig])
            #expect(finished.status == 0, "\(finished.standardError)")
        }
    }

    @Test("plan --server-dry-run: the API server checks every change, and nothing changes")
    func serverDryRun() async throws {
        let scratch = try ScratchDirectory()
        let id = suffix()
        let oldClass = "longhorn-1r-\(id)", newClass = "longhorn-3r-\(id)"
        try await withTestNamespace(client, prefix: "devpod") { namespace in
            let original = try await devpodWorld(namespace, oldClass: oldClass)
            let volume = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: original.name, in: namespace)).volumeName ?? ""
            let planFile = scratch.file("plan.yaml")
            try plan(namespace: namespace, newClass: newClass).write(toFile: planFile, atomically: true, encoding: .utf8)
            let preflight = try await runProcess(try repaveBinary(), ["plan", planFile, "--kubeconfig", lab.adminKubeconfig])
            #expect(preflight.status == 0, "\(preflight.standardOutput) \(preflight.standardError)")
            #expect(preflight.standardOutput.contains("preflight against https://127.0.0.1:"))
            #expect(preflight.standardOutput.contains("ok   preflight: claim Bound"))
            #expect(!preflight.standardOutput.contains("delete the claim"))
            let result = try await runProcess(try repaveBinary(), ["plan", planFile, "--server-dry-run", "--kubeconfig", lab.adminKubeconfig])
            #expect(result.status == 0, "\(result.standardOutput) \(result.standardError)")
            #expect(result.standardOutput.contains("ok   create storageclass \(newClass)"))
            #expect(result.standardOutput.contains("ok   delete the claim (uid-guarded)"))
            #expect(!result.standardOutput.contains("FAIL"))
            // Nothing was stored.
            #expect(try await client.getIfPresent(.storageClasses, named: newClass) == nil)
            #expect(PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: original.name, in: namespace)).uid == original.uid)
            #expect(try await client.getIfPresent(.persistentVolumeClaims, named: original.name + "-dry-run", in: namespace) == nil)
            #expect(PersistentVolume(try await client.get(.persistentVolumes, named: volume)).reclaimPolicy == "Delete")
            #expect(Deployment(try await client.get(.deployments, named: "coder-jeda-codespace", in: namespace)).replicas == 1)

            // The restricted user: the dry run stops at the permission check, listing what is missing.
            let restricted = try await runProcess(try repaveBinary(), ["plan", planFile, "--server-dry-run", "--kubeconfig", try lab.value("RESTRICTED_KUBECONFIG")])
            #expect(restricted.status == 2)
            #expect(restricted.standardError.hasPrefix("error[preflight.permissions]: "), "\(restricted.standardError)")
        }
        await cleanUp(classes: [oldClass], volume: nil)
    }

    @Test("a git preflight by local paths: a dirty repository refuses the run; once pushed, it runs")
    func gitPaths() async throws {
        try await withDevpod { world in
            let fixture = GitFixture(root: world.scratch.path)
            try await fixture.pushedClone("home/Research/api")
            try await fixture.commit("home/Research/api", file: "x.txt", content: "x\n", message: "not pushed")
            try plan(namespace: world.namespace, newClass: world.newClass, extra: "gitPreflight: {paths: [\(world.scratch.path)/home], ignore: [\"**/node_modules/**\"]}")
                .write(toFile: world.planFile, atomically: true, encoding: .utf8)
            let planned = try await runProcess(try repaveBinary(), ["plan", world.planFile, "--kubeconfig", lab.adminKubeconfig])
            #expect(planned.status == 2, "\(planned.standardError)")
            #expect(planned.standardError.contains("branch main is 1 commit ahead of origin/main"))
            let runbook = try await runProcess(try repaveBinary(), ["runbook", world.planFile, "--kubeconfig", lab.adminKubeconfig])
            #expect(runbook.status == 0, "\(runbook.standardError)")
            #expect(runbook.standardOutput.contains("**NO-GO** — the git check failed"), "\(runbook.standardOutput)")
            #expect(runbook.standardOutput.contains("branch main is 1 commit ahead of origin/main"))
            let refused = try await runProcess(try repaveBinary(), ["run", world.planFile, "--yes", "--kubeconfig", lab.adminKubeconfig, "--state-dir", world.scratch.file("r1")])
            #expect(refused.status == 2, "\(refused.standardError)")
            #expect(refused.standardError.contains("error[preflight.git]: "), "\(refused.standardError)")
            #expect(refused.standardError.contains("branch main is 1 commit ahead of origin/main"))
            try await fixture.git(["push", "-q"], in: "home/Research/api")
            let ran = try await runProcess(try repaveBinary(), ["run", world.planFile, "--yes", "--kubeconfig", lab.adminKubeconfig, "--state-dir", world.scratch.file("r2")])
            #expect(ran.status == 0, "\(ran.standardError)")
        }
    }
}
