import Foundation
import KubeAPI
import RepaveTestSupport
import Testing

@testable import RepaveCore

/// Migrate's copy pods on the lab's real node (`REPAVE_NODE_LAB_DIR`, see RealNodeTests): real
/// rsync in `lab/mover:1` between two volumes, read through `pods/log`, and proved by a manifest
/// of each tree taken in a pod. Without that lab every test here fails with "lab not running".
@Suite("copy pods on the real node", .serialized)
struct CopyPodRealNodeTests {
    let lab: Lab
    let client: KubeClient

    init() throws {
        lab = try Lab.realNode()
        client = try lab.adminClient(userAgent: "repave-test/copy-pod")
    }

    /// What a finished pod left: its exit code and its log.
    struct Finished {
        let exitCode: Int32
        let log: [String]
        var text: String { log.joined(separator: "\n") }
    }

    /// A `lab/mover:1` pod running `script` with `claim` at `/data`.
    static func moverPod(_ name: String, claim: String, script: String) -> JSON {
        ["apiVersion": "v1", "kind": "Pod", "metadata": ["name": .string(name)],
         "spec": ["terminationGracePeriodSeconds": 2, "restartPolicy": "Never",
                  "containers": [["name": .string(CopyPod.container), "image": "lab/mover:1", "imagePullPolicy": "Never",
                                  "command": ["sh", "-c", .string(script)], "volumeMounts": [["name": "data", "mountPath": "/data"]]]],
                  "volumes": [["name": "data", "persistentVolumeClaim": ["claimName": .string(claim)]]]]]
    }

    /// Creates the pod, follows its log through `pods/log` (once its container has started),
    /// waits for it to finish, and returns its exit code and log.
    func run(_ manifest: JSON, in namespace: String, timeout: Duration = .seconds(120)) async throws -> Finished {
        let name = try #require(manifest[path: "metadata", "name"]?.stringValue)
        try await client.create(.pods, in: namespace, manifest)
        try await client.wait(for: .pods, named: name, in: namespace, timeout: timeout, describedAs: "pod \(name) started") {
            ["Running", "Succeeded", "Failed"].contains($0.map { Pod($0).phase } ?? "")
        }
        var log: [String] = []
        for try await line in client.logLines(ofPod: name, in: namespace, container: CopyPod.container) { log.append(line) }
        let pod = try #require(try await client.wait(for: .pods, named: name, in: namespace, timeout: timeout, describedAs: "pod \(name) finished") {
            CopyPod.exitCode(of: $0 ?? [:]) != nil
        })
        return Finished(exitCode: try #require(CopyPod.exitCode(of: pod)), log: log)
    }

    func manifest(of claim: String, in namespace: String, pod: String) async throws -> FidelityManifest {
        let finished = try await run(Self.moverPod(pod, claim: claim, script: "sh -s -- /data <<'EOF'\n\(DataFidelity.manifestScript)\nEOF"), in: namespace)
        #expect(finished.exitCode == 0, "\(pod): \(finished.text)")
        return try FidelityManifest(log: finished.text)
    }

    static let copy = MigratePlan.Copy(image: "lab/mover:1", warm: true, verify: .checksum, imagePullPolicy: "Never", nodeSelector: [:],
                                       tolerations: [], resources: .init(requests: [:], limits: [:]), extraArgs: [])

    @Test("a copy pod with every plan setting is valid to the API server (dryRun=All), and it keeps them")
    func everySettingIsValid() async throws {
        let copy = MigratePlan.Copy(
            image: "lab/mover:1", warm: true, verify: .checksum, imagePullPolicy: "IfNotPresent", nodeSelector: ["kubernetes.io/hostname": "lab-node-1"],
            tolerations: [.init(key: "dedicated", operator: "Equal", value: "storage", effect: "NoSchedule", tolerationSeconds: nil),
                          .init(key: nil, operator: "Exists", value: nil, effect: "NoExecute", tolerationSeconds: 30)],
            resources: .init(requests: ["cpu": "100m", "memory": "64Mi"], limits: ["memory": "1Gi", "ephemeral-storage": "1.5Gi"]),
            extraArgs: ["--exclude=lost+found", "--bwlimit=50m"])
        try await withTestNamespace(client, prefix: "copy-dry") { namespace in
            for pass in CopyPod.Pass.allCases {
                let pod = CopyPod(pass: pass, namespace: namespace, sourceClaim: "home", stagingClaim: StagingClaim.name(claim: "home", runID: "0123abcd-run"),
                                  runID: "0123abcd-run", node: "lab-node-1", copy: copy)
                let created = try await client.create(.pods, in: namespace, pod.manifest, dryRun: true)
                #expect(created[path: "metadata", "name"]?.stringValue == "home-repave-0123abcd-\(pass.rawValue)")
                #expect(created[path: "spec", "tolerations"]?.arrayValue?.count == 2)
                // The server writes quantities its own way, and a limit without a request is the request too.
                #expect(created[path: "spec", "containers"]?[0]?["resources"] == [
                    "requests": ["cpu": "100m", "memory": "64Mi", "ephemeral-storage": "1536Mi"],
                    "limits": ["memory": "1Gi", "ephemeral-storage": "1536Mi"],
                ])
                #expect(created[path: "spec", "volumes"]?[0]?[path: "persistentVolumeClaim", "readOnly"] == true)
                #expect(try await client.getIfPresent(.pods, named: pod.name, in: namespace) == nil, "a dry run creates nothing")
            }
        }
    }

    @Test("a tree written in a pod is copied by the copy pod, the verify pod itemizes nothing, the manifests agree, a final pass converges on a changed source; a copy without -H is caught")
    func copyKeepsEveryFile() async throws {
        let id = String(UInt32.random(in: 0...UInt32.max), radix: 36), className = "longhorn-copy-\(id)"
        try await client.create(.storageClasses, LabFixtures.storageClass(className, replicas: 1))
        do {
            try await withTestNamespace(client, prefix: "copy") { namespace in try await copyKeepsEveryFile(namespace: namespace, className: className) }
        } catch {
            _ = try? await client.delete(.storageClasses, named: className, uid: StorageClass(try await client.get(.storageClasses, named: className)).uid)
            throw error
        }
        try await client.delete(.storageClasses, named: className, uid: StorageClass(try await client.get(.storageClasses, named: className)).uid)
    }

    func copyKeepsEveryFile(namespace: String, className: String) async throws {
        for claim in ["source", "staging", "nolinks"] {
            try await client.create(.persistentVolumeClaims, in: namespace, LabFixtures.claim(claim, storageClass: className))
        }
        // The tree, and its manifest, written and taken in one pod.
        let writer = try await run(Self.moverPod("writer", claim: "source", script: """
            sh -s -- /data 20 <<'EOF'
            \(DataFidelity.treeScript)
            EOF
            sh -s -- /data <<'EOF'
            \(DataFidelity.manifestScript)
            EOF
            """), in: namespace)
        #expect(writer.exitCode == 0, "writer: \(writer.text)")
        let source = try FidelityManifest(log: writer.text)
        #expect(source.entries["./large"]?.size == 20 << 20)
        #expect(source.entries["./sparse"]?.isSparse == true, "\(String(describing: source.entries["./sparse"]))")
        #expect(source.hardLinkGroups == [["./files/second-name", "./links/first"]])
        #expect(source.entries["./private"].map { "\($0.mode) \($0.uid):\($0.gid)" } == "700 1001:1001")
        #expect(source.entries["./fifo"]?.type == "fifo" && source.entries["./links/symlink"]?.target == "../files/random-3")
        #expect(source.entries["./xattr-file"]?.xattrs.sorted() == ["user.binary=0x00ff10", "user.repave=0x6d696772617465"])
        #expect(source.entries["./acl-file"]?.acl.contains("user:1001:rw-") == true)
        #expect(source.entries["./naïve café 日本語.txt"] != nil && source.entries["./empty-dir"]?.type == "directory")
        #expect(source.entries["./old-file"]?.mtime == 981_173_106)

        // The copy pod, and beside it a copy made without -H (the negative control) that also
        // checks that /source is mounted read-only.
        let warm = CopyPod(pass: .warm, namespace: namespace, sourceClaim: "source", stagingClaim: "staging", runID: "test-\(namespace)", copy: Self.copy)
        var control = CopyPod(pass: .final, namespace: namespace, sourceClaim: "source", stagingClaim: "nolinks", runID: "test-\(namespace)", copy: Self.copy).manifest
        var container = try #require(control[path: "spec", "containers"]?[0])
        container["command"] = ["sh", "-c", .string("""
            if touch /source/.probe 2>/dev/null; then echo 'the source is writable'; exit 1; fi
            rsync -aAXS --numeric-ids --delete /source/ /dest/ && sh -s -- /dest <<'EOF'
            \(DataFidelity.manifestScript)
            EOF
            """)]
        control["spec"]?["containers"] = [container]
        async let copied = run(warm.manifest, in: namespace)
        async let controlled = run(control, in: namespace)
        let (copy, withoutLinks) = try await (copied, controlled)

        var copyLog = RsyncLog()
        var progressLines = 0
        for line in copy.log {
            if case .progress = copyLog.read(line) { progressLines += 1 }
        }
        #expect(copy.exitCode == 0, "\(copy.text)")
        #expect(CopyVerdict(pass: .warm, exitCode: copy.exitCode, log: copyLog) == .accepted(code: 0, namedFiles: []))
        #expect(copyLog.unsuitable == nil && copyLog.version != nil, "\(copy.log.prefix(5))")
        #expect(progressLines > 0)
        #expect(copyLog.stats?.files == source.entries.count, "\(String(describing: copyLog.stats))")
        #expect(copyLog.stats?.createdFiles == source.entries.count - 1, "every entry but the root is new")
        #expect(copyLog.lastProgress?.percent == 100 || copyLog.lastProgress?.percent == 99, "\(String(describing: copyLog.lastProgress))")
        #expect(copyLog.itemized.isEmpty && copyLog.problems.isEmpty, "\(copyLog.itemized) \(copyLog.problems)")

        // The verify pass and the copy's manifest, side by side.
        let verifyPod = CopyPod(pass: .verify, namespace: namespace, sourceClaim: "source", stagingClaim: "staging", runID: "test-\(namespace)", copy: Self.copy)
        var verifyControl = verifyPod
        verifyControl.stagingClaim = "nolinks"
        async let verified = run(verifyPod.manifest, in: namespace)
        async let verifiedControl = run(verifyControl.manifest, in: namespace)
        async let copyManifest = manifest(of: "staging", in: namespace, pod: "staging-manifest")
        let (verify, verifyWithoutLinks, destination) = try await (verified, verifiedControl, copyManifest)
        var verifyLog = RsyncLog()
        for line in verify.log { verifyLog.read(line) }
        #expect(CopyVerdict(pass: .verify, exitCode: verify.exitCode, log: verifyLog) == .accepted(code: 0, namedFiles: []), "\(verify.text)")
        #expect(destination.differences(from: source) == [])
        #expect(destination.entries["./sparse"].map { $0.allocated <= source.entries["./sparse"]!.allocated } == true)

        // Without -H the pair became two files: the manifest says so.
        #expect(withoutLinks.exitCode == 0, "\(withoutLinks.text)")
        let unlinked = try FidelityManifest(log: withoutLinks.log.filter { !$0.isEmpty }.joined(separator: "\n"))
        let differences = unlinked.differences(from: source)
        #expect(differences.contains("hard links ./files/second-name = ./links/first are not one file in the copy"), "\(differences)")
        #expect(differences.contains("./links/first: link count 2 became 1"), "\(differences)")
        #expect(differences.count == 3, "only the hard links differ: \(differences)")
        // The verify pass catches it too: rsync -H itemizes the pair.
        var controlLog = RsyncLog()
        for line in verifyWithoutLinks.log { controlLog.read(line) }
        let verdict = CopyVerdict(pass: .verify, exitCode: verifyWithoutLinks.exitCode, log: controlLog)
        #expect(verdict == .differs(itemized: controlLog.itemized) && controlLog.itemized.contains { $0.hasSuffix("links/first") || $0.hasSuffix("files/second-name") },
                "\(verdict)")

        // A second pass converges on a changed source: the final copy sends only what changed
        // and deletes what went, and a second verify pass (its pod of the first one deleted, as
        // a copy step does) proves it.
        let changer = try await run(Self.moverPod("changer", claim: "source", script: """
            cd /data && printf more >> files/random-3 && rm files/nested/random-1 && printf new > added && setfattr -n user.repave -v changed xattr-file
            sh -s -- /data <<'EOF'
            \(DataFidelity.manifestScript)
            EOF
            """), in: namespace)
        #expect(changer.exitCode == 0, "changer: \(changer.text)")
        let changed = try FidelityManifest(log: changer.text)
        #expect(changed.differences(from: source).count >= 4)
        let final = try await run(CopyPod(pass: .final, namespace: namespace, sourceClaim: "source", stagingClaim: "staging", runID: "test-\(namespace)", copy: Self.copy).manifest, in: namespace)
        var finalLog = RsyncLog()
        for line in final.log { finalLog.read(line) }
        #expect(CopyVerdict(pass: .final, exitCode: final.exitCode, log: finalLog) == .accepted(code: 0, namedFiles: []), "\(final.text)")
        #expect(finalLog.stats?.transferredFiles == 2 && finalLog.stats?.deletedFiles == 1, "\(String(describing: finalLog.stats))")
        let firstVerify = Pod(try await client.get(.pods, named: verifyPod.name, in: namespace))
        try await client.delete(.pods, named: verifyPod.name, in: namespace, uid: firstVerify.uid)
        try await client.wait(for: .pods, named: verifyPod.name, in: namespace, timeout: .seconds(60), describedAs: "the first verify pod gone") { $0 == nil }
        async let verifiedAgain = run(verifyPod.manifest, in: namespace)
        async let copyManifestAgain = manifest(of: "staging", in: namespace, pod: "staging-manifest-2")
        let (secondVerify, secondDestination) = try await (verifiedAgain, copyManifestAgain)
        var secondLog = RsyncLog()
        for line in secondVerify.log { secondLog.read(line) }
        #expect(CopyVerdict(pass: .verify, exitCode: secondVerify.exitCode, log: secondLog) == .accepted(code: 0, namedFiles: []), "\(secondVerify.text)")
        #expect(secondDestination.differences(from: changed) == [])

        print("copy pod: \(copyLog.stats.map { "\($0.files) entries, \($0.transferredSize) bytes" } ?? "no stats"), rsync \(copyLog.version ?? "?"), "
              + "\(progressLines) progress lines; final pass \(finalLog.stats.map { "\($0.transferredFiles) sent, \($0.deletedFiles) deleted" } ?? "no stats"); without -H: \(differences.count) differences, verify itemized \(controlLog.itemized)")
    }
}
