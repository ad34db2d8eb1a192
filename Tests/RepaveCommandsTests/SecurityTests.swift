import Foundation
import Journal
import KubeAPI
import RepaveTestSupport
import Testing

/// The security promises a run keeps, end to end: TLS verified unless the kubeconfig itself says
/// otherwise (then warned and journaled), and a run directory only its owner can read.
@Suite("security of a run")
struct SecurityTests: DevpodTesting {
    let lab: Lab
    let client: KubeClient

    init() throws {
        lab = try Lab.current()
        client = try lab.adminClient(userAgent: "repave-test/security")
    }

    /// The admin kubeconfig with its CA line replaced by `replacement`.
    func kubeconfig(_ world: World, _ name: String, caLine replacement: String) throws -> String {
        let text = try String(contentsOfFile: lab.adminKubeconfig, encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.trimmingCharacters(in: .whitespaces).hasPrefix("certificate-authority-data:") ? "    " + replacement : String(line)
        }
        let path = world.scratch.file(name)
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o600)
        return path
    }

    @Test("TLS: a server the CA does not vouch for is refused, and nothing in the environment or on the command line turns verification off; only the kubeconfig's insecure-skip-tls-verify does, warned and journaled")
    func tlsVerification() async throws {
        try await withDevpod { world in
            let wrongCA = try kubeconfig(world, "wrong-ca.kubeconfig", caLine: "certificate-authority: \(lab.otherCACertificate)")
            let runs = world.scratch.file("runs")
            // What a user might try: curl's and OpenSSL's variables, pointing at nothing useful.
            let environment = ["CURL_CA_BUNDLE": "", "SSL_CERT_FILE": "/dev/null", "SSL_CERT_DIR": "/nonexistent", "CURL_INSECURE": "1", "GIT_SSL_NO_VERIFY": "1"]
            let refused = try await runProcess(try repaveBinary(), ["run", world.planFile, "--yes", "--kubeconfig", wrongCA, "--state-dir", runs], environment: environment)
            #expect(refused.status != 0)
            #expect(refused.standardError.lowercased().contains("certificate"), "\(refused.standardError)")
            #expect(!FileManager.default.fileExists(atPath: runs), "a run directory was made although nothing could be verified")
            let flag = try await runProcess(try repaveBinary(), ["run", world.planFile, "--yes", "--kubeconfig", wrongCA, "--insecure-skip-tls-verify"])
            #expect(flag.status != 0 && flag.standardError.contains("--insecure-skip-tls-verify"), "\(flag.standardError)")
            #expect(PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: world.original.name, in: world.namespace)).uid == world.original.uid)

            let insecure = try kubeconfig(world, "insecure.kubeconfig", caLine: "insecure-skip-tls-verify: true")
            let run = try await runProcess(try repaveBinary(), ["run", world.planFile, "--yes", "--kubeconfig", insecure, "--state-dir", runs])
            #expect(run.status == 0, "\(run.standardError)")
            #expect(run.standardError.contains("insecure-skip-tls-verify"), "no warning: \(run.standardError)")
            let header = try Journal.read(directory: try world.runDirectory()).records[0]
            #expect(String(decoding: header.data, as: UTF8.self).contains(#""tlsVerified":false"#), "\(String(decoding: header.data, as: UTF8.self))")
        }
    }

    @Test("a run directory is 0700 and everything in it 0600: journal, lock, plan copy, manifests")
    func runDirectoryModes() async throws {
        try await withDevpod { world in
            let run = try await runProcess(try repaveBinary(), ["run", world.planFile, "--yes", "--kubeconfig", lab.adminKubeconfig, "--state-dir", world.scratch.file("runs")])
            #expect(run.status == 0, "\(run.standardError)")
            let directory = try world.runDirectory()
            func mode(_ path: String) throws -> Int {
                ((try FileManager.default.attributesOfItem(atPath: path))[.posixPermissions] as? NSNumber)?.intValue ?? -1
            }
            #expect(try mode(directory) == 0o700)
            #expect(try mode(directory + "/manifests") == 0o700)
            let files = try FileManager.default.subpathsOfDirectory(atPath: directory).filter { $0 != "manifests" }
            #expect(files.count >= 7, "\(files)")
            for file in files { #expect(try mode(directory + "/" + file) == 0o600, "\(file)") }
        }
    }
}
