import Foundation
import KubeAPI
import RepaveTestSupport
import Testing

@testable import RepaveCore

/// Migrate's copy pods without a cluster: the manifest, the script, reading rsync's real output
/// (Fixtures/rsync, made with the host's rsync, the binary `lab/mover:1` carries) and the exit
/// rules.
@Suite("copy pods and rsync's output")
struct CopyPodTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/rsync")

    static func fixture(_ name: String) throws -> [String] {
        try String(contentsOf: fixtures.appendingPathComponent(name), encoding: .utf8).components(separatedBy: "\n")
    }

    static func read(_ lines: [String]) -> RsyncLog {
        var log = RsyncLog()
        for line in lines { log.read(line) }
        return log
    }

    static let copy = MigratePlan.Copy(
        image: "lab/mover:1", warm: true, verify: .checksum, imagePullPolicy: "IfNotPresent",
        nodeSelector: ["disk": "ssd"], tolerations: [.init(key: "dedicated", operator: "Equal", value: "storage", effect: "NoSchedule", tolerationSeconds: nil)],
        resources: .init(requests: ["cpu": "100m"], limits: ["memory": "1Gi"]), extraArgs: ["--exclude=it's here", "--bwlimit=50m", "--include=*.keep"])

    static func pod(_ pass: CopyPod.Pass, node: String? = "node-1", staging: String = "home-repave-0123abcd") -> CopyPod {
        CopyPod(pass: pass, namespace: "devpod", sourceClaim: "home", stagingClaim: staging, runID: "20261207-0123abcd", node: node, copy: copy)
    }

    @Test("the pod: bare, Never restarted, named after the staging claim and the pass, labelled with the run, root, source read-only, pinned, the plan's scheduling")
    func manifest() throws {
        let manifest = Self.pod(.warm).manifest
        #expect(manifest[path: "metadata", "name"] == "home-repave-0123abcd-warm")
        #expect(manifest[path: "metadata", "namespace"] == "devpod")
        #expect(manifest[path: "metadata", "labels"] == ["repave/run-id": "20261207-0123abcd", "repave/copy": "warm"])
        #expect(manifest[path: "metadata", "ownerReferences"] == nil)
        let spec = try #require(manifest["spec"])
        #expect(spec["restartPolicy"] == "Never")
        #expect(spec["nodeName"] == "node-1")
        #expect(spec["nodeSelector"] == ["disk": "ssd"])
        #expect(spec["tolerations"] == [["key": "dedicated", "operator": "Equal", "value": "storage", "effect": "NoSchedule"]])
        #expect(spec["volumes"] == [
            ["name": "source", "persistentVolumeClaim": ["claimName": "home", "readOnly": true]],
            ["name": "dest", "persistentVolumeClaim": ["claimName": "home-repave-0123abcd"]],
        ])
        let container = try #require(spec[path: "containers"]?[0])
        #expect(container["image"] == "lab/mover:1" && container["imagePullPolicy"] == "IfNotPresent")
        #expect(container[path: "securityContext", "runAsUser"] == 0)
        #expect(container["resources"] == ["requests": ["cpu": "100m"], "limits": ["memory": "1Gi"]])
        #expect(container["volumeMounts"] == [
            ["name": "source", "mountPath": "/source", "readOnly": true],
            ["name": "dest", "mountPath": "/dest"],
        ])
        #expect(container["command"]?[0] == "/bin/sh" && container["command"]?[1] == "-c")
        #expect(container["command"]?[2]?.stringValue == Self.pod(.warm).script)

        #expect(Self.pod(.final, node: nil).manifest[path: "spec", "nodeName"] == nil)
        #expect(Self.pod(.verify).name == "home-repave-0123abcd-verify")
        let long = Self.pod(.verify, staging: String(repeating: "a", count: 240) + "-" + String(repeating: "b", count: 12)).name
        #expect(long.count <= 253 && long.hasSuffix("-verify") && !long.contains("--"), "\(long)")
    }

    @Test("the scripts: the exact rsync command with extraArgs shell-quoted, the verify dry run, and the tool check first")
    func scripts() {
        let warm = Self.pod(.warm).script
        #expect(warm.hasSuffix("""
            set -o pipefail; rsync -aHAXS --numeric-ids --delete --partial --info=progress2 --no-inc-recursive --stats \
            '--exclude=it'\\''s here' --bwlimit=50m '--include=*.keep' /source/ /dest/ 2>&1 | tr '\\r' '\\n'
            """), "\(warm)")
        #expect(warm.hasPrefix("(set -o pipefail) 2>/dev/null || { echo \"repave: the image has no sh with pipefail\"; exit 127; }\nfor tool in rsync tr; do command -v \"$tool\""),
                "\(warm)")
        #expect(warm.contains("\nrsync --version 2>&1\n"))
        #expect(Self.pod(.final).script == warm)
        // The verify pass carries extraArgs' filters, in their order, and nothing else of them.
        // Its output is held, then printed; rsync's failure is its exit code, anything it itemized
        // is exit 99.
        #expect(Self.pod(.verify).script.hasSuffix("""

            out=$(rsync -aHAXS --numeric-ids -n -c -i --delete '--exclude=it'\\''s here' '--include=*.keep' /source/ /dest/ 2>&1); code=$?
            [ -z "$out" ] || printf '%s\\n' "$out"
            [ "$code" -eq 0 ] || exit "$code"
            [ -z "$out" ] || exit 99
            """), "\(Self.pod(.verify).script)")
        var plain = Self.copy
        plain.extraArgs = ["--bwlimit=50m", "-W"]
        let bare = CopyPod(pass: .verify, namespace: "devpod", sourceClaim: "home", stagingClaim: "s", runID: "r", copy: plain).script
        #expect(bare.contains("\nout=$(rsync -aHAXS --numeric-ids -n -c -i --delete /source/ /dest/ 2>&1); code=$?\n"), "\(bare)")
        #expect(CopyPod.shellQuoted("plain-word_1.0") == "plain-word_1.0")
        #expect(CopyPod.shellQuoted("a b") == "'a b'")
        #expect(CopyPod.shellQuoted("$(rm -rf /)") == "'$(rm -rf /)'")
        #expect(CopyPod.shellQuoted("") == "''")
    }

    @Test("the script really runs under busybox sh: tools checked, version printed, extraArgs reach rsync unchanged")
    func scriptRunsUnderBusybox() async throws {
        let scratch = try ScratchDirectory()
        // rsync replaced by a stand-in that prints its arguments, one a line.
        let bin = scratch.file("bin")
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'rsync  version 3.5.0  protocol version 32'; exit 0; fi\nfor a; do echo \"arg:$a\"; done\n"
            .write(toFile: bin + "/rsync", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: bin + "/rsync")
        for tool in ["sh", "tr"] { try FileManager.default.createSymbolicLink(atPath: bin + "/" + tool, withDestinationPath: "/usr/bin/busybox") }
        let result = try await runProcess("/usr/bin/busybox", ["sh", "-c", Self.pod(.warm).script], environment: ["PATH": bin])
        #expect(result.status == 0, "\(result.standardError)")
        let lines = result.standardOutput.components(separatedBy: "\n")
        #expect(lines.first == "rsync  version 3.5.0  protocol version 32")
        #expect(lines.filter { $0.hasPrefix("arg:") } == (CopyPod.copyOptions + ["--exclude=it's here", "--bwlimit=50m", "--include=*.keep", "/source/", "/dest/"]).map { "arg:" + $0 })
        // The verify pass gets the filters, unchanged, and not the rate limit.
        // (This rsync prints its arguments: to the verify script, lines it itemized, so the
        // pod's exit code says the copy differs.)
        let verify = try await runProcess("/usr/bin/busybox", ["sh", "-c", Self.pod(.verify).script], environment: ["PATH": bin])
        #expect(verify.status == CopyPod.differsExitCode, "\(verify.standardError)")
        #expect(verify.standardOutput.components(separatedBy: "\n").filter { $0.hasPrefix("arg:") }
            == (CopyPod.verifyOptions + ["--exclude=it's here", "--include=*.keep", "/source/", "/dest/"]).map { "arg:" + $0 })
        // An rsync that itemizes nothing: 0; one that fails: its own code, with what it said.
        for (body, status, output) in [("exit 0", Int32(0), ""), ("echo 'rsync: read error' >&2; exit 23", 23, "rsync: read error")] {
            try "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'rsync  version 3.5.0  protocol version 32'; exit 0; fi\n\(body)\n"
                .write(toFile: bin + "/rsync", atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: bin + "/rsync")
            let result = try await runProcess("/usr/bin/busybox", ["sh", "-c", Self.pod(.verify).script], environment: ["PATH": bin])
            #expect(result.status == status, "\(body): \(result.standardOutput)")
            #expect(result.standardOutput.components(separatedBy: "\n").dropFirst().filter { !$0.isEmpty } == (output.isEmpty ? [] : [output]))
        }

        // (busybox sh finds its own applets, tr among them, whatever PATH says: take rsync away.)
        try FileManager.default.removeItem(atPath: bin + "/rsync")
        let missing = try await runProcess("/usr/bin/busybox", ["sh", "-c", Self.pod(.warm).script], environment: ["PATH": bin])
        #expect(missing.status == 127)
        let log = Self.read(missing.standardOutput.components(separatedBy: "\n"))
        #expect(log.unsuitable == "the copy image has no rsync")
        #expect(CopyVerdict(pass: .warm, exitCode: 127, log: log) == .refused(code: 127, meaning: "the copy image has no rsync", namedFiles: []))
    }

    @Test("a shell without pipefail is named as what the image lacks (exit 127, copy.image-unsuitable), not exit 2's 'protocol incompatibility'")
    func shellWithoutPipefail() async throws {
        // The line the script's first check prints, and its verdict.
        let output = "repave: the image has no sh with pipefail"
        let log = Self.read([output])
        #expect(log.unsuitable == "the copy image has no sh with pipefail")
        let verdict = CopyVerdict(pass: .final, exitCode: 127, log: log)
        #expect(verdict == .refused(code: 127, meaning: "the copy image has no sh with pipefail", namedFiles: []))
        let error = try #require(verdict.error(pass: .final, log: log, pod: "p", namespace: "n"))
        #expect(error.errorCode == .copyImageUnsuitable && error.message == "final-copy: the copy image has no sh with pipefail", "\(error.message)")

        // The script prints exactly that line under a shell without pipefail: Debian's dash
        // 0.5.12 has none (`set: Illegal option -o pipefail`, exit 2); busybox sh has it and
        // goes on to the copy (scriptRunsUnderBusybox).
        let dash = "/usr/bin/dash"
        guard FileManager.default.isExecutableFile(atPath: dash) else { return }
        let probe = try await runProcess(dash, ["-c", "set -o pipefail"], environment: ["PATH": "/usr/bin:/bin"])
        let run = try await runProcess(dash, ["-c", Self.pod(.final).script], environment: ["PATH": "/nonexistent"])
        if probe.status != 0 {
            #expect(run.status == 127, "\(run.standardError)")
            #expect(run.standardOutput == output + "\n")
            #expect(run.standardError.isEmpty, "the probe's complaint is silenced: \(run.standardError)")
        } else {
            // A dash with pipefail passes the probe and stops at the next check: no rsync on PATH.
            #expect(run.status == 127 && run.standardOutput == "repave: the image has no rsync\n", "\(run.standardOutput)")
        }
    }

    @Test("progress2 lines of a real copy: bytes, percent, rate, ETA, transfers, files to check")
    func progressLines() throws {
        let progress = try Self.fixture("full.txt").compactMap(RsyncProgress.init(line:))
        #expect(progress.count >= 30)
        #expect(progress[1].bytes == 20_086_784 && progress[1].percent == 60 && progress[1].eta == 0)
        #expect(abs(progress[1].bytesPerSecond - 18.97 * 1_048_576) < 1)
        #expect(progress[1].transferred == nil && progress[1].toCheck == nil)
        #expect(progress[2].transferred == 1 && progress[2].toCheck?.remaining == 34 && progress[2].toCheck?.total == 36)
        #expect(progress.map(\.bytes) == progress.map(\.bytes).sorted(), "bytes only grow")
        #expect(progress.last?.toCheck?.remaining == 0)
        #expect(RsyncProgress(line: "  1,234,567,890  45%  512.00kB/s    1:02:03")?.eta == 3723)
        #expect(RsyncProgress(line: "  1,234,567,890  45%  1.50GB/s    ??:??:??")?.bytesPerSecond == 1.5 * 1_073_741_824)
        for line in ["Number of files: 36 (reg: 32, dir: 3, link: 1)", "sent 33,265,028 bytes  received 640 bytes  13,306,267.20 bytes/sec",
                     ">f+++++++++ a/f7", "", "rsync: [sender] send_files failed to open \"/source/x\": Permission denied (13)"] {
            #expect(RsyncProgress(line: line) == nil, "\(line)")
        }
    }

    @Test("a whole copy log: version and capabilities, progress, the stats block, nothing itemized")
    func wholeLog() throws {
        let version = """
            rsync  version 3.5.0  protocol version 32
            Copyright (C) 1996-2026 by Andrew Tridgell, Wayne Davison, and others.
            Web site: https://rsync.samba.org/
            Capabilities:
                64-bit files, 64-bit inums, 64-bit timestamps, 64-bit long ints,
                socketpairs, symlinks, symtimes, hardlinks, hardlink-specials,
                hardlink-symlinks, IPv6, atimes, batchfiles, inplace, append, ACLs,
                ACL-at, xattrs, optional secluded-args, iconv, prealloc, stop-at,
                no crtimes
            Optimizations:
                SIMD-roll, no asm-roll, openssl-crypto, no asm-MD5
            Checksum list:
                xxh128 xxh3 xxh64 (xxhash) md5 md4 sha1 none
            Compress list:
                zstd lz4 zlibx zlib none
            Daemon auth list:
                sha512 sha256 sha1 md5 md4

            rsync comes with ABSOLUTELY NO WARRANTY.  This is free software, and you
            are welcome to redistribute it under certain conditions.  See the GNU
            General Public Licence for details.
            """.components(separatedBy: "\n")
        let log = Self.read(version + (try Self.fixture("full.txt")))
        #expect(log.version == "3.5.0")
        #expect(log.capabilities.contains("ACLs") && log.capabilities.contains("xattrs") && log.capabilities.contains("no crtimes"))
        #expect(log.unsuitable == nil)
        #expect(log.stats == RsyncStats(files: 36, regularFiles: 32, createdFiles: 35, deletedFiles: 0, transferredFiles: 31,
                                        totalSize: 33_262_004, transferredSize: 33_255_000))
        #expect(log.lastProgress?.bytes == 33_255_000)
        #expect(log.itemized.isEmpty, "\(log.itemized)")
        #expect(log.problems.isEmpty)
        #expect(CopyVerdict(pass: .final, exitCode: 0, log: log) == .accepted(code: 0, namedFiles: []))

        let delta = Self.read(version + (try Self.fixture("delta.txt")))
        #expect(delta.stats?.transferredFiles == 1 && delta.stats?.files == 35 && delta.stats?.transferredSize == 21_008)

        // An old or ACL-less rsync is named.
        let old = Self.read(["rsync  version 3.0.9  protocol version 30", "Capabilities:", "    64-bit files, ACLs, xattrs"])
        #expect(old.unsuitable == "the copy image's rsync is 3.0.9; migrate needs 3.1 or later")
        let bare = Self.read(["rsync  version 3.2.7  protocol version 31", "Capabilities:", "    64-bit files, no ACLs, no xattrs"])
        #expect(bare.unsuitable == "the copy image's rsync 3.2.7 was built without ACLs and xattrs")
        #expect(Self.read(["sh: rsync: not found"]).unsuitable == "the copy image's rsync printed no version")

        // Builds from a git tag print `version v3.2.7`: the number is still 3.2.7, and suitable.
        let tagged = Self.read(try Self.fixture("version-v3.2.7.txt") + (try Self.fixture("small.txt")))
        #expect(tagged.version == "3.2.7")
        #expect(tagged.capabilities.contains("ACLs") && tagged.capabilities.contains("xattrs"))
        #expect(tagged.unsuitable == nil, "\(tagged.unsuitable ?? "")")
        #expect(tagged.itemized.isEmpty, "\(tagged.itemized)")
        #expect(Self.read(["rsync  version v3.0.9  protocol version 30", "Capabilities:", "    ACLs, xattrs"]).unsuitable
            == "the copy image's rsync is 3.0.9; migrate needs 3.1 or later")
    }

    @Test("exit 23: the warm copy accepts it and journals the files; the final copy refuses and names them")
    func partialTransfer() throws {
        let log = Self.read(try Self.fixture("partial23.txt"))
        #expect(log.namedFiles == ["/dest/.", "/source/d/locked"])
        #expect(log.stats?.files == 4)
        #expect(log.itemized.isEmpty, "\(log.itemized)")
        #expect(CopyVerdict(pass: .warm, exitCode: 23, log: log) == .accepted(code: 23, namedFiles: ["/dest/.", "/source/d/locked"]))
        #expect(CopyVerdict(pass: .final, exitCode: 23, log: log)
            == .refused(code: 23, meaning: "partial transfer due to error", namedFiles: ["/dest/.", "/source/d/locked"]))
        #expect(CopyVerdict(pass: .verify, exitCode: 23, log: log) == .refused(code: 23, meaning: "partial transfer due to error", namedFiles: ["/dest/.", "/source/d/locked"]))
        // rsync's wording for a file that went away during a live copy (generator.c/sender.c).
        let vanished = Self.read(["file has vanished: \"/source/tmp/build.lock\"", "rsync warning: some files vanished before they could be transferred (code 24) at main.c(1338) [sender=3.5.0]"])
        #expect(CopyVerdict(pass: .warm, exitCode: 24, log: vanished) == .accepted(code: 24, namedFiles: ["/source/tmp/build.lock"]))
        #expect(CopyVerdict(pass: .final, exitCode: 24, log: vanished) == .refused(code: 24, meaning: "partial transfer due to vanished source files", namedFiles: ["/source/tmp/build.lock"]))
        #expect(CopyVerdict(pass: .warm, exitCode: 11, log: RsyncLog()) == .refused(code: 11, meaning: "error in file I/O", namedFiles: []))
        // The final pass's hint says which side failed, from what rsync named.
        #expect(CopyVerdict.cause(of: 23, files: log.namedFiles, problems: log.problems) == "a file could not be read or written, or something still writes to the claim")
        #expect(CopyVerdict.cause(of: 24, files: ["/source/tmp/build.lock"], problems: vanished.problems) == "files of the claim vanished: something still writes to it")
        #expect(CopyVerdict.cause(of: 23, files: ["/dest/."], problems: ["rsync: [generator] failed to set times on \"/dest/.\": Operation not permitted (1)"])
            == "rsync could not write the new volume")
        #expect(CopyVerdict.cause(of: 23, files: ["/source/d/locked"], problems: []) == "rsync could not read files of the claim")
        let readOnly = Self.read(["rsync: [receiver] mkstemp \"/dest/.a.XXXXXX\" failed: Read-only file system (30)"])
        #expect(CopyVerdict.cause(of: 23, files: readOnly.namedFiles, problems: readOnly.problems) == "the new volume is read-only in the copy pod (rsync: Read-only file system)")
        let error = CopyVerdict(pass: .final, exitCode: 23, log: readOnly).error(pass: .final, log: readOnly, pod: "p", namespace: "ns", versionRecorded: true)
        #expect(error?.hint?.hasPrefix("the new volume is read-only in the copy pod") == true, "\(error?.hint ?? "")")
        #expect(CopyVerdict(pass: .warm, exitCode: 137, log: RsyncLog()) == .refused(code: 137, meaning: "killed (SIGKILL: out of memory, or the pod was deleted)", namedFiles: []))
    }

    @Test("the verify pass: every itemized line is a difference; none means the copy is proven")
    func verifyItemizes() throws {
        let dirty = Self.read(["rsync  version 3.5.0  protocol version 32"] + (try Self.fixture("verify-dirty.txt")))
        #expect(dirty.itemized == [".d..t...... ./", ">f+++++++++ new", ".d..t...... a/", ">fcst...... a/f5", ".f..t...... a/f6",
                                   ">f+++++++++ a/f7", ".f...p..... a/f8", ">fc........ a/f9"])
        #expect(CopyVerdict(pass: .verify, exitCode: 0, log: dirty) == .differs(itemized: dirty.itemized))
        let clean = Self.read(["rsync  version 3.5.0  protocol version 32", "Copyright (C) 1996-2026 by Andrew Tridgell, Wayne Davison, and others."])
        #expect(CopyVerdict(pass: .verify, exitCode: 0, log: clean) == .accepted(code: 0, namedFiles: []))
        // The pod's verdict holds when its log was cut (a resumed run reading a rotated log).
        let capable = Self.read(try Self.fixture("version-v3.2.7.txt"))
        let verdict = CopyVerdict(pass: .verify, exitCode: CopyPod.differsExitCode, log: capable)
        #expect(verdict == .differs(itemized: []))
        let error = verdict.error(pass: .verify, log: capable, pod: "p", namespace: "ns")
        #expect(error?.errorCode == .copyDiffers && error?.message == "verify-copy: the copy differs from the source (the pod exited 99; its log no longer lists where)")
        #expect(CopyVerdict(pass: .final, exitCode: CopyPod.differsExitCode, log: clean) == .refused(code: 99, meaning: "exit code 99", namedFiles: []))
    }

    @Test("a finished pod's exit code is the rsync container's")
    func exitCode() {
        let pod: JSON = ["status": ["containerStatuses": [["name": "rsync", "state": ["terminated": ["exitCode": 23]]]]]]
        #expect(CopyPod.exitCode(of: pod) == 23)
        #expect(CopyPod.exitCode(of: ["status": ["containerStatuses": [["name": "rsync", "state": ["running": [:]]]]]]) == nil)
        #expect(CopyPod.exitCode(of: ["status": [:]]) == nil)
    }

    @Test("pods/log is followed line by line, as text, and a missing pod is the API's 404")
    func logLines() async throws {
        let scratch = try ScratchDirectory()
        let server = RecordingTransport()
        let client = try KubeClient(connection: try scratch.unreachableConnection(), userAgent: "repave-test/logs", transport: server,
                                    retryPolicy: RetryPolicy(maxRetries: 0, maxConnectionRetries: 0))
        server.on(.get, "/api/v1/namespaces/devpod/pods/copy/log", .text(["one", "two 2", "naïve"]))
        var lines: [String] = []
        for try await line in client.logLines(ofPod: "copy", in: "devpod", container: "rsync") { lines.append(line) }
        #expect(lines == ["one", "two 2", "naïve"])
        #expect(server.requests == ["GET /api/v1/namespaces/devpod/pods/copy/log?follow=true&container=rsync"])
        #expect(server.sent.first?.accept == "text/plain, application/json")

        server.on(.get, "/api/v1/namespaces/devpod/pods/gone/log", .failure(404, reason: "NotFound", message: "pods \"gone\" not found"))
        await #expect(throws: KubeAPIError.self) {
            for try await _ in client.logLines(ofPod: "gone", in: "devpod", follow: false) {}
        }
        #expect(server.requests.last == "GET /api/v1/namespaces/devpod/pods/gone/log")
    }
}

extension CopyPodTests {
    @Test("a verdict that stops the run is one error with its code, the step, rsync's code, the files it named, and the pod's log to read")
    func verdictErrors() throws {
        let version = ["rsync  version 3.5.0  protocol version 32", "Capabilities:", "    ACLs, xattrs"]
        let partial = Self.read(version + (try Self.fixture("partial23.txt")))
        let final = try #require(CopyVerdict(pass: .final, exitCode: 23, log: partial).error(pass: .final, log: partial, pod: "home-repave-1-final", namespace: "devpod"))
        #expect(final.errorCode == .copyFailed)
        for name in ["final-copy", "23", "/dest/.", "/source/d/locked"] { #expect(final.message.contains(name), "\(name): \(final.message)") }
        #expect(final.hint?.contains("kubectl logs -n devpod home-repave-1-final") == true)
        #expect(CopyVerdict(pass: .warm, exitCode: 23, log: partial).error(pass: .warm, log: partial, pod: "p", namespace: "n") == nil)

        let dirty = Self.read(version + (try Self.fixture("verify-dirty.txt")))
        let differs = try #require(CopyVerdict(pass: .verify, exitCode: 0, log: dirty).error(pass: .verify, log: dirty, pod: "p", namespace: "n"))
        #expect(differs.errorCode == .copyDiffers)
        for name in ["verify-copy", " 8 ", ">f+++++++++ new", ">fc........ a/f9"] { #expect(differs.message.contains(name), "\(name): \(differs.message)") }

        let old = Self.read(["rsync  version 3.0.9  protocol version 30", "Capabilities:", "    ACLs, xattrs"])
        let image = try #require(CopyVerdict(pass: .warm, exitCode: 0, log: old).error(pass: .warm, log: old, pod: "p", namespace: "n"))
        #expect(image.errorCode == .copyImageUnsuitable && image.message.contains("3.0.9"), "\(image.message)")

        // A log that lost its `rsync --version` lines (the kubelet keeps about 10 MiB; a re-read
        // of a long copy's finished pod starts mid-copy): refused unless the run recorded the version.
        let truncated = Self.read(try Self.fixture("delta.txt"))
        #expect(truncated.version == nil && truncated.stats != nil)
        let accepted = CopyVerdict(pass: .final, exitCode: 0, log: truncated)
        let unrecorded = try #require(accepted.error(pass: .final, log: truncated, pod: "p", namespace: "n"))
        #expect(unrecorded.errorCode == .copyImageUnsuitable && unrecorded.message == "final-copy: the copy image's rsync printed no version", "\(unrecorded.message)")
        #expect(accepted.error(pass: .final, log: truncated, pod: "p", namespace: "n", versionRecorded: true) == nil)
        #expect(truncated.unsuitable(versionRecorded: true) == nil)
        // Recorded or not, what the log does say still counts.
        #expect(old.unsuitable(versionRecorded: true) == "the copy image's rsync is 3.0.9; migrate needs 3.1 or later")
        #expect(Self.read(["repave: the image has no tr"]).unsuitable(versionRecorded: true) == "the copy image has no tr")
        let failed = try #require(CopyVerdict(pass: .final, exitCode: 11, log: truncated)
            .error(pass: .final, log: truncated, pod: "p", namespace: "n", versionRecorded: true))
        #expect(failed.errorCode == .copyFailed, "\(failed.message)")

        // Many files: the first ten, and how many more.
        let many = try #require(CopyVerdict.refused(code: 11, meaning: "error in file I/O", namedFiles: (1...12).map { "/source/f\($0)" })
            .error(pass: .final, log: Self.read(version), pod: "p", namespace: "n"))
        #expect(many.errorCode == .copyFailed && many.message.contains("/source/f10") && !many.message.contains("/source/f11") && many.message.contains("2 more"),
                "\(many.message)")
    }
}

extension CopyPodTests {
    @Test("the staging claim: <claim>-repave-<8 characters of the run id>, at most 253 characters, never ending in '-' or '.'")
    func stagingName() {
        let run = "0123abcd-4567-89ef-0123-456789abcdef"
        #expect(StagingClaim.name(claim: "coder-jeda-codespace-home", runID: run) == "coder-jeda-codespace-home-repave-0123abcd")
        let long = StagingClaim.name(claim: String(repeating: "a", count: 236) + ".b" + String(repeating: "c", count: 15), runID: run)
        #expect(long.count <= 253 && long.hasSuffix("a-repave-0123abcd"), "\(long)")
        #expect(StagingClaim.name(claim: String(repeating: "d", count: 253), runID: run).count == 253)
    }
}
