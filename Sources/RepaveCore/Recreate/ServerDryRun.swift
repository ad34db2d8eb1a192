import Foundation
import Journal
import KubeAPI
import Logging

extension Recreate {
    /// `repave plan`: the live preflight (read-only); with `writes` (`--server-dry-run`) also every
    /// change the run would make sent with `dryRun=All`, so admission, RBAC, quotas and webhooks
    /// are checked by the API server itself. Nothing is stored; the scratch journal is removed.
    /// Returns one line per check; a refused preflight throws its refusal.
    public static func serverDryRun(plan: RecreatePlan, client: KubeClient, writes: Bool = true, logger: Logger = Logger(label: "repave.dry-run")) async throws -> [String] {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("repave-dry-run-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let journal = try Journal.create(directory: scratch + "/run", run: "dry-run", header: ["dryRun": true])
        let recreate = Recreate(plan: plan, run: "dry-run", runDirectory: scratch + "/run")
        let context = StepContext(client: client, journal: journal, dryRun: true, facts: [:], logger: logger)
        var lines: [String] = []
        context.currentStep = "preflight"
        _ = try await Preflight(recreate: recreate).observe(context)
        lines.append("ok   preflight: claim Bound, mounted only by the plan's workloads, reconcilers dealt with, class compatible, git check passed, permissions present")
        guard writes else { return lines }
        context.currentStep = "save-manifests"
        _ = try await SaveManifests(recreate: recreate).observe(context)

        func check(_ what: String, _ request: () async throws -> Void) async {
            do {
                try await request()
                lines.append("ok   \(what)")
            } catch let error as KubeAPIError {
                lines.append("FAIL \(what): \(error.reason.rawValue): \(error.message)")
            } catch {
                lines.append("FAIL \(what): \(error)")
            }
        }
        let ns = plan.target.namespace
        if try await client.getIfPresent(.storageClasses, named: plan.storageClass.name) == nil {
            await check("create storageclass \(plan.storageClass.name)") { try await EnsureStorageClass(recreate: recreate).apply(context) }
        } else {
            lines.append("ok   storageclass \(plan.storageClass.name) exists with the plan's settings")
        }
        await check("set the old volume's reclaim policy to Retain") { try await RetainOldVolume(recreate: recreate).apply(context) }
        await check("scale the workloads to 0") { try await ScaleDown(recreate: recreate).apply(context) }
        await check("delete the claim (uid-guarded)") { try await DeleteClaim(recreate: recreate).apply(context) }
        // The claim still exists, so its re-creation is checked under a stand-in name.
        await check("create the claim on \(plan.storageClass.name) (checked as \(plan.target.claim)-dry-run: the claim still exists)") {
            let saved = try JSON.decode(Data(contentsOf: URL(fileURLWithPath: recreate.runDirectory + "/manifests/persistentvolumeclaim-\(plan.target.claim).json")))
            var object = CreateClaim.recreated(from: saved, storageClass: plan.storageClass.name, run: "dry-run")
            object["metadata"]?["name"] = .string(String((plan.target.claim + "-dry-run").prefix(253)))
            try await client.create(.persistentVolumeClaims, in: ns, object, dryRun: true)
        }
        await check("restore the workloads' replicas") { try await ScaleUp(recreate: recreate).apply(context) }
        if plan.oldVolume == .delete {
            await check("delete the old volume") { try await ReleaseOldVolume(recreate: recreate).apply(context) }
        }
        return lines
    }
}
