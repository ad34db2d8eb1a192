import Foundation
import Journal
import KubeAPI
import Logging

extension Recreate {
    /// `repave abort`: before the point of no return, puts the workloads and the old volume back
    /// as they were (each change journaled like any other), releases the lease, and records the
    /// run as aborted. After the point of no return only `resume` goes forward.
    public func abort(journal: Journal, client: KubeClient, logger: Logger = Logger(label: "repave.abort")) async throws -> [String] {
        if journal.records.contains(where: { $0.kind == "pnr" }) {
            throw RepaveError(code: "abort.past-pnr", "the run has passed its point of no return (the claim was deleted): it cannot be undone",
                              hint: "finish it with 'repave resume \(runDirectory)'", exitStatus: .journalRefused)
        }
        if journal.records.contains(where: { $0.kind == "finished" }) {
            throw RepaveError(code: "abort.ended", "the run has already finished: there is nothing to abort", exitStatus: .journalRefused)
        }
        // Aborting again (say after the first abort was killed once done) changes nothing; resume
        // refuses an aborted run, so nothing can have changed after it.
        if let aborted = journal.records.last(where: { $0.kind == "aborted" }) {
            return (try? aborted.decode([String: String].self))?["undone"].map { $0.isEmpty ? [] : ["already aborted: " + $0] } ?? []
        }
        // Passing failures (a conflict with the controller updating the workload, a lost
        // connection) are tried again from the top: every change below reads before it writes.
        return try await TransientFailure.retrying("abort", logger: logger) {
            try await undo(journal: journal, client: client, logger: logger)
        }
    }

    private func undo(journal: Journal, client: KubeClient, logger: Logger) async throws -> [String] {
        let context = StepContext(client: client, journal: journal, dryRun: false, facts: Runner.facts(in: journal.records), logger: logger)
        context.currentStep = "abort"
        var report: [String] = []
        for workload in workloads(context) {
            let type = workloadType(workload.kind)
            guard let object = try await client.getIfPresent(type, named: workload.name, in: namespace),
                  let original = context.facts[Fact.replicas("\(workload.kind.rawValue)/\(workload.name)")].flatMap(Int.init)
            else { continue }
            let meta = ObjectMeta(object["metadata"] ?? [:])
            let replicas = Recreate.replicas(workload.kind, object)
            guard replicas != original || meta.annotations[Recreate.replicasAnnotation] != nil else { continue }
            try await context.mutate("PATCH", type.path(namespace: namespace, name: workload.name)) {
                try await client.patch(type, named: workload.name, in: namespace, .merge([
                    "metadata": ["resourceVersion": .string(meta.resourceVersion), "annotations": [.init(Recreate.replicasAnnotation): .null]],
                    "spec": ["replicas": .integer(Int64(original))],
                ]))
            }
            report.append("\(workload.kind.rawValue)/\(workload.name) back to \(original) replicas")
        }
        if let name = context.facts[Fact.volume], let policy = context.facts[Fact.reclaimPolicy],
           let volume = try await client.getIfPresent(.persistentVolumes, named: name).map(PersistentVolume.init),
           volume.uid == context.facts[Fact.volumeUID], volume.reclaimPolicy != policy {
            try await context.mutate("PATCH", ResourceType.persistentVolumes.path(name: name)) {
                try await client.patch(.persistentVolumes, named: name, .merge([
                    "metadata": ["resourceVersion": .string(volume.resourceVersion)],
                    "spec": ["persistentVolumeReclaimPolicy": .string(policy)],
                ]))
            }
            report.append("persistentvolume \(name) reclaim policy back to \(policy)")
        }
        if let created = try await client.getIfPresent(.storageClasses, named: plan.storageClass.name),
           ObjectMeta(created["metadata"] ?? [:]).annotations[Recreate.runAnnotation] == run {
            report.append("storageclass \(plan.storageClass.name), created by this run, is kept (delete it with kubectl delete storageclass \(plan.storageClass.name) if unwanted)")
        }
        let lock = ClusterLock(client: client, namespace: namespace, claim: claim, holder: run)
        try journal.appendLock(lock, intent: "release")
        try await lock.release()
        try journal.append(kind: "aborted", data: ["undone": report.joined(separator: "; ")])
        return report
    }
}
