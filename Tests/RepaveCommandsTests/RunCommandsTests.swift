import Foundation
import RepaveCore
import Journal
@testable import RepaveCore
import RepaveTestSupport
import Testing


/// `repave plan`, `repave journal show` and `repave status` as an operator runs them.
@Suite("plan, journal and status commands", .blockingCallsAllowed)
struct RunCommandsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    func repave(_ arguments: [String], environment: [String: String?] = [:]) async throws -> ProcessResult {
        try await runProcess(try repaveBinary(), arguments, environment: environment)
    }

    @Test("plan --offline: the devpod plan with its defaults and digest, without touching a cluster")
    func plan() async throws {
        // No kubeconfig at all: --offline must not need one; without it, the preflight says so.
        let home = try ScratchDirectory()
        let live = try await repave(["plan", Self.root + "/plans/devpod-home.yaml"], environment: ["HOME": home.path, "KUBECONFIG": nil])
        #expect(live.status == 5)
        #expect(live.standardError.contains("hint: pass --kubeconfig FILE, set KUBECONFIG, or create ~/.kube/config; or without the cluster: repave plan \(Self.root)/plans/devpod-home.yaml --offline"), "\(live.standardError)")
        let result = try await repave(["plan", Self.root + "/plans/devpod-home.yaml", "--offline"], environment: ["HOME": home.path, "KUBECONFIG": nil])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("target:        devpod/coder-jeda-codespace-home in context ardenone-cluster"))
        #expect(result.standardOutput.contains("timeouts:      scaleDown 5m, claimDeletion 5m, bind 5m, rollout 10m, verify 10m"))
        let json = try await repave(["plan", Self.root + "/plans/devpod-home.yaml", "-o", "json", "--offline"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
        #expect((object["digest"] as? String)?.count == 64)
        #expect(result.standardOutput.contains("digest sha256:\(object["digest"] as? String ?? "?")"))
    }

    @Test("plan: a broken plan is exit 2 with one error line naming file, line, column and key")
    func brokenPlan() async throws {
        let scratch = try ScratchDirectory()
        let file = scratch.file("bad.yaml")
        try "apiVersion: repave/v1\nkind: RecreatePlan\nmetadata: {name: x}\ntarget: {namespace: devpod, claims: home}\n".write(toFile: file, atomically: true, encoding: .utf8)
        let result = try await repave(["plan", file])
        #expect(result.status == 2)
        #expect(result.standardError == "error[plan.invalid]: \(file):4:29: target.claims: unknown key (did you mean 'claim'?)\nhint: valid keys here: namespace, claim, workloads\n")
    }

    @Test("journal show and status read a run; a missing run is exit 4")
    func journalAndStatus() async throws {
        let scratch = try ScratchDirectory()
        let directory = scratch.file("runs/demo-20261128T020000Z")
        let header = RunHeader(strategy: "recreate", plan: "demo", planDigest: "d", cluster: .init(server: "s", kubeSystemUID: "u"), targets: [:], tlsVerified: true)
        var journal: Journal? = try Journal.create(directory: directory, run: "r1", header: header)
        struct Intent: Encodable { var verb = "PATCH", path = "/apis/apps/v1/namespaces/devpod/deployments/ws", attempt = 1, dryRun = false }
        try journal?.append(kind: "intent", step: "scale-down", data: Intent())
        let running = try await repave(["status", directory, "-o", "json"])
        #expect(running.standardOutput.contains(#""state":"running""#), "the lock is held: \(running.standardOutput)")
        journal = nil   // the process that held the run is gone
        let show = try await repave(["journal", "show", directory])
        #expect(show.status == 0)
        #expect(show.standardOutput.contains("intent [scale-down]  {\"attempt\":1,\"dryRun\":false,\"path\""), "\(show.standardOutput)")
        let json = try await repave(["journal", "show", directory, "-o", "json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
        #expect((object["records"] as? [[String: Any]])?.count == 2)

        let status = try await repave(["status", directory, "-o", "json"], environment: [:])
        let state = try #require(try JSONSerialization.jsonObject(with: Data(status.standardOutput.utf8)) as? [String: Any])
        #expect(state["state"] as? String == "interrupted")
        #expect(state["inProgress"] as? String == "scale-down")

        let latest = try await repave(["status"], environment: ["XDG_STATE_HOME": scratch.path + "/state"])
        #expect(latest.status == 2)
        let missing = try await repave(["journal", "show", scratch.file("runs/nope")])
        #expect(missing.status == 4)
        #expect(missing.standardError.hasPrefix("error[journal.unreadable]: "), "\(missing.standardError)")
        #expect(missing.standardError.contains(scratch.file("runs/nope")))

        // A record the engine cannot read is an error naming it, never left out.
        let broken = try Journal.open(directory: directory)
        try broken.append(kind: "outcome", step: "scale-down", data: ["verdict": "fine"])
        let refused = try await repave(["status", directory, "-o", "json"])
        #expect(refused.status == 4)
        let error = try #require((try JSONSerialization.jsonObject(with: Data(refused.standardOutput.utf8)) as? [String: Any])?["error"] as? [String: Any])
        #expect(error["code"] as? String == "journal.unreadable")
        #expect((error["message"] as? String)?.contains("outcome record (seq 3) does not decode") == true, "\(error)")
    }
}

@Suite("runbook")
struct RunbookTests {
    @Test("runbooks/devpod-home.md is what `repave runbook plans/devpod-home.yaml --offline` writes (regenerate it when this fails)")
    func devpodRunbookIsCurrent() async throws {
        let root = RunCommandsTests.root
        let result = try await runProcess(try repaveBinary(), ["runbook", "plans/devpod-home.yaml", "--offline"], workingDirectory: root)
        #expect(result.status == 0, "\(result.standardError)")
        let committed = try String(contentsOfFile: root + "/runbooks/devpod-home.md", encoding: .utf8)
        #expect(result.standardOutput == committed)
        #expect(committed.contains("| `delete-claim` **(point of no return)** |"))
        #expect(committed.contains("repave abort <run>"))
        #expect(committed.contains("`repave finalize <run>` deletes it with its Longhorn volume"))
        let again = try await runProcess(try repaveBinary(), ["runbook", "plans/devpod-home.yaml", "--offline"], workingDirectory: root)
        #expect(again.standardOutput == result.standardOutput)
    }

    @Test("runbooks/devpod-home-migrate.md is what `repave runbook plans/devpod-home-migrate.yaml --offline` writes (regenerate it when this fails)")
    func devpodMigrateRunbookIsCurrent() async throws {
        let root = RunCommandsTests.root
        let result = try await runProcess(try repaveBinary(), ["runbook", "plans/devpod-home-migrate.yaml", "--offline"], workingDirectory: root)
        #expect(result.status == 0, "\(result.standardError)")
        let committed = try String(contentsOfFile: root + "/runbooks/devpod-home-migrate.md", encoding: .utf8)
        #expect(result.standardOutput == committed)
        #expect(committed.contains("| `delete-claim` (point of no return) |") && committed.contains("| `warm-copy` |"))
        let plan = try await runProcess(try repaveBinary(), ["plan", "plans/devpod-home-migrate.yaml", "--offline"], workingDirectory: root)
        #expect(plan.status == 0 && plan.standardOutput.contains("strategy:      migrate"), "\(plan.standardError)")
    }
}
