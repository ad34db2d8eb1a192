import Foundation
import RepaveTestSupport
import Testing

/// The `repave` binary as a user runs it: version, usage errors, exit statuses.
@Suite("repave command line")
struct CLITests {
    func repave(_ arguments: [String]) async throws -> ProcessResult {
        try await runProcess(try repaveBinary(), arguments)
    }

    @Test("--version names the tool and the libraries it runs on")
    func version() async throws {
        let result = try await repave(["--version"])
        #expect(result.status == 0)
        #expect(result.standardOutput.hasPrefix("repave 0.1.0 (libcurl 7."))
        #expect(result.standardOutput.contains("libgit2 1."))
        #expect(result.standardError.isEmpty)
    }

    @Test("an unknown flag exits 64 with one error line and a hint")
    func unknownFlag() async throws {
        let result = try await repave(["--no-such-flag"])
        #expect(result.status == 64)
        #expect(result.standardError == "error[usage]: Unknown option '--no-such-flag'\nhint: see 'repave --help'\n")
        #expect(result.standardOutput.isEmpty)
    }

    @Test("with -o json a usage error is one JSON envelope on stdout")
    func usageErrorAsJSON() async throws {
        let result = try await repave(["-o", "json", "--log-level", "loud"])
        #expect(result.status == 64)
        #expect(result.standardError.isEmpty)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        let error = try #require(object["error"] as? [String: Any])
        #expect(error["code"] as? String == "usage")
        #expect(error["exitStatus"] as? Int == 64)
        #expect((error["message"] as? String)?.contains("'--log-level <level>'") == true)
        #expect(error["hint"] as? String == "see 'repave --help'")
    }

    @Test("--help lists the global options and the exit statuses")
    func help() async throws {
        let result = try await repave(["--help"])
        #expect(result.status == 0)
        for option in ["--kubeconfig", "--context", "--output", "--log-level", "--progress"] {
            #expect(result.standardOutput.contains(option), "missing \(option)")
        }
        #expect(result.standardOutput.contains("3 stopped mid-run"))
    }
}
