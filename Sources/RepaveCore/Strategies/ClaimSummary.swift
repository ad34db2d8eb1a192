import Foundation
import Journal
import KubeAPI

/// What recreate's and migrate's summaries share: old and new claim uid, the new volume's class,
/// replicas and robustness now, the downtime and the whole run as the journal measured them,
/// what became of the old volume, the strategy's own lines, and the notes the run journaled.
enum ClaimSummary {
    static func summary(of run: FinishedRun, plan: any ClaimPlan, client: KubeClient, headline: String, oldVolume kept: String,
                        extra: (Facts) -> [String] = { _ in [] }) async -> RunSummary {
        let target = MaintenanceTarget(namespace: plan.target.namespace, name: plan.target.claim)
        var summary = RunSummary(headline: "\(target.description) \(headline) (run \(run.directory))",
                                 fields: ["claim": target.description, "storageClass": plan.storageClass.name])
        guard let history = try? RunHistory(run.records) else { return summary }
        let facts = history.facts
        let times = RunbookEvidence.PreviousRun(directory: run.directory, records: run.records.map { ($0.time, $0.kind, $0.step) })
        var lines = ["claim:      old uid \(facts[ClaimFact.claimUID] ?? "?") -> new uid \(facts[RecreateFact.newClaimUID] ?? "?")"]
        // What verify read, when nothing changed after it in this process; else read now.
        func object(_ type: ResourceType, _ name: String, _ namespace: String) async -> JSON? {
            if let read = run.lastRead(type, named: name, in: namespace) { return read }
            return try? await client.getIfPresent(type, named: name, in: namespace)
        }
        let claim = await object(.persistentVolumeClaims, plan.target.claim, plan.target.namespace).map(PersistentVolumeClaim.init)
        if let volume = claim?.volumeName,
           let longhorn = await object(.longhornVolumes, volume, plan.verify.namespace).map(LonghornVolume.init) {
            lines.append("volume:     \(volume) on \(claim?.storageClassName ?? "?"): \(longhorn.numberOfReplicas) replicas, \(longhorn.robustness.isEmpty ? "robustness unknown" : longhorn.robustness)")
        }
        if let measured = run.measured {
            lines.append(String(format: "downtime:   %.1fs (scale-down to the workloads back); whole run %.1fs", measured.downtime.inSeconds, measured.total.inSeconds))
        } else {
            lines.append("downtime:   \(times.downtime.map(\.description) ?? "none") (scale-down to the workloads back, from the journal's whole-second times); whole run \(times.total)")
        }
        if let old = facts[ClaimFact.volume] {
            lines.append("old volume: \(old) " + (facts[RecreateFact.oldVolumeLost].map { "GONE: \($0)" } ?? kept))
        }
        lines += extra(facts)
        for case (_, .note(let fields)) in history.entries { if let note = fields["note"] { lines.append("note:       \(note)") } }
        summary.lines = lines
        return summary
    }
}
