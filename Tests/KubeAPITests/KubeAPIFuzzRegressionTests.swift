import Curl
import Foundation
import RepaveTestSupport
import Testing

@testable import KubeAPI

/// Inputs the kubeconfig, watch-line and Status fuzzers (fuzz/Sources) found or are seeded with,
/// and the bounds on kubeconfig files.
@Suite("kubeconfig and API answers: fuzz findings and input bounds")
struct KubeAPIFuzzRegressionTests {
    func seed(_ name: String) throws -> String {
        String(decoding: try fuzzSeed(name), as: UTF8.self)
    }

    @Test("an alias used as a mapping key is refused before Yams hashes its expansion (it hung the composer)")
    func aliasKeyBomb() throws {
        let text = try seed("kubeconfig/alias-key-bomb.kubeconfig")
        var error: KubeconfigError?
        let time = elapsed { error = #expect(throws: KubeconfigError.self) { try Kubeconfig.parse(text, file: "/cfg/bomb") } }
        #expect(time < .milliseconds(100))
        #expect(error?.description == "/cfg/bomb:6:30: more than 32 YAML aliases (a '*' after a space, bracket, comma or colon may start one)")
    }

    @Test("a billion-laughs kubeconfig fails at its first unexpected node, in well under a second")
    func billionLaughs() throws {
        let text = try seed("kubeconfig/billion-laughs.kubeconfig")
        let time = elapsed { #expect(throws: KubeconfigError.self) { try Kubeconfig.parse(text, file: "/cfg/bomb") } }
        #expect(time < .milliseconds(100))
    }

    func excess(_ text: String) -> [Int]? {
        YAMLAliasLimit.firstExcess(in: text).map { [$0.line, $0.column] }
    }

    @Test("the alias limit counts only a '*' that can start an alias")
    func aliasLimitCounting() {
        // Quoted globs are scalars, however many; bare aliases in a flow list count.
        let many = (1...40).map { "\"**/x\($0)\"" }.joined(separator: ", ")
        #expect(excess("a: [\(many)]") == nil)
        let aliases = (1...40).map { "*x\($0)" }.joined(separator: ", ")
        #expect(excess("a: [\(aliases)]") == [1, 188])
        #expect(excess(String(repeating: "a: x/**, b*c\n", count: 100)) == nil)
        #expect(excess(String(repeating: "- *a\n", count: 32)) == nil)
        #expect(excess(String(repeating: "- *a\n", count: 33)) == [33, 3])
        // Line breaks libyaml knows beyond \n (NEL, LS) and a BOM count as blanks.
        #expect(excess(String(repeating: "x:\u{2028}*a\u{85}*b\u{FEFF}*c", count: 11)) != nil)
    }

    @Test("a 100 MB kubeconfig is refused from its size, unread: one line naming the file and the limit")
    func hugeFile() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.file("config")
        #expect(FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]))
        #expect(truncate(path, 100 << 20) == 0)
        var error: KubeconfigError?
        let time = elapsed { error = #expect(throws: KubeconfigError.self) { try Kubeconfig.load(contentsOf: path) } }
        #expect(time < .milliseconds(100))
        #expect(error?.description == "\(path): the file is 104857600 bytes; a kubeconfig is at most 16777216 bytes (16 MiB)")
        let endless = #expect(throws: KubeconfigError.self) { try Kubeconfig.load(contentsOf: "/dev/zero") }
        #expect(endless?.description == "/dev/zero: the file is over 16777216 bytes; a kubeconfig is at most 16777216 bytes (16 MiB)")
    }

    @Test("a kubeconfig others may read or write is warned about, in the connection's warnings; 0600 is not")
    func exposedKubeconfig() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.file("config")
        let text = "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o644]))
        let loader = KubeconfigLoader(explicitPath: path, environment: [:], homeDirectory: scratch.path)
        #expect(try loader.load().warnings == ["\(path) is readable by group and others (mode 0644); a kubeconfig holds credentials: chmod 600 \(path)"])
        chmod(path, 0o620)
        #expect(try Kubeconfig.load(contentsOf: path).warnings == ["\(path) is writable by group (mode 0620); a kubeconfig holds credentials: chmod 600 \(path)"])
        chmod(path, 0o600)
        #expect(try loader.load().warnings.isEmpty)
    }

    @Test("a watch event's numbers survive a manifest round trip as numbers: integers exactly, doubles as the same float64 (fuzz/corpus/watch-line/finding-integral-double-*.json)")
    func integralDoubles() throws {
        for name in ["finding-integral-double-1.json", "finding-integral-double-2.json"] {
            guard case .added(let object) = try KubeClient.decodeWatchLine(Data(try seed("watch-line/" + name).utf8), verb: "WATCH", path: "/p") else {
                Issue.record("\(name) is not an ADDED event")
                continue
            }
            let again = try JSON.decode(object.encoded())
            for (before, after) in zip(object["a"]?.arrayValue ?? [], again["a"]?.arrayValue ?? []) {
                switch (before, after) {
                case (.integer(let x), _): #expect(after == .integer(x))
                case (.double(let y), .integer(let x)): #expect(Double(x) == y)
                default: #expect(after == before)
                }
            }
        }
        // 1.2345678901345678901224337e18 is a double; its shortest form reads back as an integer.
        let number = try JSON.decode(Data("12345678901345678901224337e-7".utf8))
        #expect(number == .double(1_234_567_890_134_567_936))
        #expect(try JSON.decode(number.encoded()) == .integer(1_234_567_890_134_568_000))
    }

    @Test("parsing resolves relative paths as text, whatever is or is not on disk")
    func parsingTouchesNoFile() throws {
        // A directory and a missing file resolve alike. That parsing makes no file system call at
        // all was checked with strace on fuzz/FuzzKubeconfig (it stat'ed each path before).
        let scratch = try ScratchDirectory()
        mkdir(scratch.file("ca.crt"), 0o700)
        let config = try Kubeconfig.parse("clusters: [{name: a, cluster: {certificate-authority: ca.crt}}, {name: b, cluster: {certificate-authority: ./no/../missing.crt}}]\n",
                                          file: scratch.file("config"))
        #expect(config.clusters["a"]?.certificateAuthority == scratch.file("ca.crt"))
        #expect(config.clusters["b"]?.certificateAuthority == scratch.file("missing.crt"))
    }

    @Test("an exec plugin's output: the seed's token and expiry come out; an error never quotes a token, even one put where the apiVersion goes")
    func execCredential() throws {
        let exec = try #require(try Kubeconfig.parse("""
            apiVersion: v1
            kind: Config
            users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: get-token, interactiveMode: Never}}}]
            """, file: "/cfg/exec").users["u"]?.exec)
        let (token, expires) = try exec.decodeCredential(try seed("exec-credential/token"))
        #expect(token == "abcdefghijklmnop0123")
        #expect(expires == Date(timeIntervalSince1970: 1_796_565_600))   // 2026-12-06T14:00:00Z
        let secret = "eyJhbGciOiJSUzI1NiJ9.payload+signature=="
        let misplaced = #"{"apiVersion":"\#(secret)","kind":"ExecCredential","status":{"token":"\#(secret)"}}"#
        let error = #expect(throws: KubeconfigError.self) { try exec.decodeCredential(misplaced) }
        #expect(error.map { !$0.description.contains(secret) && $0.description.contains("(not an API version)") } == true, "\(String(describing: error))")
        let shaped = #"{"apiVersion":"tokenlike/v1","kind":"ExecCredential","status":{"token":"tokenlike/v1"}}"#
        let shapedError = #expect(throws: KubeconfigError.self) { try exec.decodeCredential(shaped) }
        #expect(shapedError.map { !$0.description.contains("tokenlike") } == true, "\(String(describing: shapedError))")
        let wrongVersion = #"{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"\#(secret)"}}"#
        let versionError = #expect(throws: KubeconfigError.self) { try exec.decodeCredential(wrongVersion) }
        #expect(versionError?.description.contains("answered with apiVersion client.authentication.k8s.io/v1beta1, expected client.authentication.k8s.io/v1") == true)
        #expect(throws: KubeconfigError.self) { try exec.decodeCredential(try seed("exec-credential/certificate")) }
        #expect(throws: KubeconfigError.self) { try exec.decodeCredential(try seed("exec-credential/text")) }
    }
}
