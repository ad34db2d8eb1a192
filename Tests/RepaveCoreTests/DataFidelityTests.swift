import Foundation
import RepaveTestSupport
import Testing

/// The data-fidelity manifest itself, on the host: the tree and manifest scripts run under the
/// host's busybox (the one `lab/mover:1` carries, with the same getfattr and getfacl), the copies
/// are made by the host's rsync, and each copy that leaves out one of -H, -A, -X, -S is caught by
/// the comparison for what it lost. Needs root (the tree has a directory owned by uid 1001).
@Suite("data-fidelity manifests")
struct DataFidelityTests {
    /// A directory of busybox's applets and the attribute tools, as `lab/mover:1` has them.
    static func toolbox(in scratch: ScratchDirectory) throws -> String {
        let bin = scratch.file("bin")
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        for tool in ["getfattr", "setfattr", "getfacl", "setfacl", "rsync", "busybox"] {
            try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/" + tool), "/usr/bin/\(tool) is needed (the lab's image recipe copies it too)")
            if tool != "busybox" { try FileManager.default.createSymbolicLink(atPath: bin + "/" + tool, withDestinationPath: "/usr/bin/" + tool) }
        }
        return bin
    }

    func sh(_ script: String, _ arguments: [String], bin: String) async throws -> ProcessResult {
        // busybox sh runs its own applets (find, stat, sha256sum, awk…) before PATH's.
        try await runProcess("/usr/bin/busybox", ["sh", "-c", script, "sh"] + arguments, environment: ["PATH": bin])
    }

    func manifest(_ directory: String, bin: String) async throws -> FidelityManifest {
        let result = try await sh(DataFidelity.manifestScript, [directory], bin: bin)
        #expect(result.status == 0, "\(result.standardError)")
        return try FidelityManifest(log: result.standardOutput)
    }

    @Test("a full copy matches; copies without -H, -A, -X or -S, a changed byte and a lost file are each caught for what they lost")
    func everyLossIsCaught() async throws {
        let scratch = try ScratchDirectory()
        let bin = try Self.toolbox(in: scratch)
        let source = scratch.file("source")
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        let tree = try await sh(DataFidelity.treeScript, [source, "1"], bin: bin)
        #expect(tree.status == 0, "\(tree.standardError)")
        let original = try await manifest(source, bin: bin)
        #expect(original.entries.count == 45)
        #expect(original.entries["./sparse"]?.isSparse == true)

        func copy(_ options: String, then change: String = "") async throws -> [String] {
            let destination = scratch.file("copy" + options + String(change.count))
            let result = try await runProcess("/bin/sh", ["-c", "rsync \(options) --numeric-ids '\(source)/' '\(destination)/' && cd '\(destination)' && \(change.isEmpty ? ":" : change)"])
            #expect(result.status == 0, "\(result.standardError)")
            return try await manifest(destination, bin: bin).differences(from: original)
        }
        #expect(try await copy("-aHAXS") == [])
        let withoutH = try await copy("-aAXS")
        #expect(withoutH.contains("hard links ./files/second-name = ./links/first are not one file in the copy"), "\(withoutH)")
        let withoutA = try await copy("-aHXS")
        #expect(withoutA.contains { $0.hasPrefix("./acl-file: ACL") } && withoutA.contains { $0.hasPrefix("./acl-dir: ACL") }, "\(withoutA)")
        let withoutX = try await copy("-aHAS")
        #expect(withoutX == ["./files: xattrs [\"user.on-a-directory=0x796573\"] became []",
                             "./xattr-file: xattrs [\"user.binary=0x00ff10\", \"user.repave=0x6d696772617465\"] became []"], "\(withoutX)")
        let withoutS = try await copy("-aHAX")
        #expect(withoutS.count == 1 && withoutS.first?.hasPrefix("./sparse: sparse file takes") == true, "\(withoutS)")
        let changed = try await copy("-aHAXS", then: "printf x | dd of=large bs=1 seek=5 conv=notrunc 2>/dev/null && touch -r ../source/large large && rm files/nested/random-1 && touch -r ../source/files/nested files/nested && touch -d '2001-01-01' old-file")
        #expect(changed.count == 3 && changed.contains { $0.hasPrefix("./large: sha256 ") } && changed.contains("./files/nested/random-1: missing from the copy")
                && changed.contains("./old-file: mtime 981173106 became 978307200"), "\(changed)")

        #expect(throws: FidelityManifest.ManifestError.self) { try FidelityManifest(log: "S|directory|755|0|0|4096|1|2|3|8|512|.\n") }
        #expect(throws: FidelityManifest.ManifestError.self) { try FidelityManifest(log: "H|abc  ./nowhere\nEND\n") }
    }
}
