import Foundation
import Journal
import KubeAPI

// The replicas strategy's steps, ensures like recreate's: `observe` reads the cluster and says
// whether the goal holds; `apply` changes it through `context.mutate`; `await` waits.

struct ReplicasPreflight: Step {
    let replicas: ReplicasRun
    var id: String { preflightStepID }
    var mutates: Bool { false }
    var summary: String { "check the claim's Longhorn volume: not faulted, attached or rebuildable, enough Longhorn nodes" }
    var estimate: Duration { .seconds(30) }
    var permissions: [KubeClient.AccessQuestion] {
        let longhorn = replicas.longhornNamespace
        return [.init("get", .persistentVolumeClaims, namespace: replicas.namespace), .init("get", .persistentVolumes),
                .init("get", .longhornVolumes, namespace: longhorn), .init("list", .longhornNodes, namespace: longhorn),
                .init("list", .longhornSettings, namespace: longhorn)]
    }

    func rehearse(_ context: StepContext) async throws -> [CheckResult] {
        try await checkPermissions(context)
        let findings = try await ReplicasCheck.run(checks, context)
        return findings.said.map { CheckResult(check: $0) }
    }

    func observe(_ context: StepContext) async throws -> Bool {
        try await checkPermissions(context)
        let findings = try await ReplicasCheck.run(checks, context)
        for line in findings.said { context.logger.notice("preflight: \(line)") }
        return true
    }

    func apply(_ context: StepContext) async throws {}

    /// Permissions first: every missing one is listed at once, before anything else is read.
    private func checkPermissions(_ context: StepContext) async throws {
        guard !replicas.permissionsChecked else { return }
        try await MaintenanceSession.checkPermissions(ReplicasStrategy(plan: replicas.plan).permissions(), client: context.client)
    }

    /// The shared claim check, then the volume's: Longhorn's, not faulted, rebuildable now (or
    /// waited for), and enough nodes for its replicas.
    var checks: [ReplicasCheck] {
        let target = replicas.target
        let claimBound = target.claimBound
        return [
            ReplicasCheck("claim-bound") { findings, context in
                var shared = PreflightFindings()
                try await claimBound.run(&shared, context)
                findings.claim = shared.claim
                findings.said.append("claim \(replicas.namespace)/\(replicas.claim) is Bound to \(shared.claim?.volumeName ?? "?")")
            },
            longhornVolume, notFaulted, rebuildable, enoughNodes,
        ]
    }

    /// The claim's PV is a Longhorn volume, and that volume exists.
    var longhornVolume: ReplicasCheck {
        ReplicasCheck("longhorn-volume") { findings, context in
            let pvName = findings.claim?.volumeName ?? ""
            let pv = PersistentVolume(try await context.readExisting(.persistentVolumes, named: pvName))
            guard pv.csiDriver == ReplicasRun.longhornDriver, let handle = pv.volumeHandle, !handle.isEmpty else {
                throw RepaveError(.notLonghorn, "persistentvolume \(pvName) is not a Longhorn volume (its CSI driver is \(pv.csiDriver ?? "none"))",
                                  hint: "strategy: replicas changes a Longhorn volume's replica count; for another driver use strategy: recreate")
            }
            guard let object = try await context.read(.longhornVolumes, named: handle, in: replicas.longhornNamespace) else {
                throw RepaveError(.notLonghorn, "persistentvolume \(pvName) names Longhorn volume \(handle), which is not in \(replicas.longhornNamespace)",
                                  hint: "check verify.longhorn.namespace in the plan (Longhorn's namespace)")
            }
            findings.longhorn = LonghornVolume(object)
            findings.said.append("volume \(handle) is Longhorn's, at \(LonghornVolume(object).numberOfReplicas) replicas; the plan asks for \(replicas.plan.replicas)")
        }
    }

    var notFaulted: ReplicasCheck {
        ReplicasCheck("not-faulted") { findings, _ in
            guard let longhorn = findings.longhorn else { return }
            if longhorn.robustness == "faulted" {
                throw RepaveError(.volumeFaulted, "Longhorn volume \(longhorn.name) is faulted: no replica holds its data, so there is nothing to rebuild from",
                                  hint: "recover the volume in Longhorn first (salvage a replica or restore a backup), then plan again")
            }
        }
    }

    /// Longhorn rebuilds only while the volume is attached, or detached with offline rebuilding
    /// on (the volume's `spec.offlineRebuilding`, else the `offline-replica-rebuilding`
    /// setting); otherwise the plan must say `whenDetached: wait`.
    var rebuildable: ReplicasCheck {
        ReplicasCheck("rebuildable") { findings, context in
            guard let longhorn = findings.longhorn else { return }
            let settings = try await ReplicasRun.settings(context, in: replicas.longhornNamespace)
            findings.softAntiAffinity = settings["replica-soft-anti-affinity"] == "true"
            if longhorn.state == "attached" {
                findings.said.append("attached to \(longhorn.currentNodeID.isEmpty ? "a node" : longhorn.currentNodeID): Longhorn rebuilds the new replicas online, the workload keeps running")
                return
            }
            let global = settings["offline-replica-rebuilding"] ?? "false"
            let perVolume = longhorn.offlineRebuilding.isEmpty ? "ignored" : longhorn.offlineRebuilding
            let offline = perVolume == "enabled" || (perVolume != "disabled" && global == "true")
            if offline {
                findings.said.append("detached, and offline rebuilding is on (volume \(perVolume), setting \(global)): Longhorn attaches it itself to rebuild")
                return
            }
            switch replicas.plan.whenDetached {
            case .wait:
                findings.said.append("detached and offline rebuilding is off: the run patches the count and waits (up to \(replicas.plan.timeouts.rebuild)) for the next attach")
            case .refuse:
                throw RepaveError(.volumeDetached, "Longhorn volume \(longhorn.name) is detached, and Longhorn rebuilds replicas only while a volume is attached: "
                                  + "offline rebuilding is off (volume spec.offlineRebuilding: \(perVolume), setting offline-replica-rebuilding: \(global))",
                                  hint: "start the workload that mounts the claim; or enable offline rebuilding on the volume: kubectl -n \(replicas.longhornNamespace) patch volumes.longhorn.io \(longhorn.name) --type merge -p '{\"spec\":{\"offlineRebuilding\":\"enabled\"}}'; or set whenDetached: wait in the plan")
            }
        }
    }

    /// Under hard anti-affinity (`replica-soft-anti-affinity: false`, Longhorn's default) each
    /// replica needs a schedulable Longhorn node of its own.
    var enoughNodes: ReplicasCheck {
        ReplicasCheck("enough-longhorn-nodes") { findings, context in
            let nodes = try await context.client.list(.longhornNodes, in: replicas.longhornNamespace).items.map(LonghornNode.init)
            let schedulable = nodes.filter(\.isSchedulable).map(\.name).sorted()
            let wanted = replicas.plan.replicas
            let needed = findings.softAntiAffinity ? 1 : wanted
            guard schedulable.count >= needed else {
                let rule = findings.softAntiAffinity ? "at least one schedulable node" : "one schedulable node each under hard anti-affinity (replica-soft-anti-affinity: false)"
                throw RepaveError(.notEnoughNodes, "\(wanted) replicas need \(rule), and Longhorn has \(schedulable.count) schedulable of \(nodes.count) nodes"
                                  + (schedulable.isEmpty ? "" : " (\(schedulable.joined(separator: ", ")))"),
                                  hint: "lower replicas in the plan to \(max(1, schedulable.count)), or add Longhorn nodes (or allow scheduling on them), or set replica-soft-anti-affinity to true in Longhorn's settings")
            }
            findings.said.append("\(schedulable.count) schedulable Longhorn nodes for \(wanted) replicas under \(findings.softAntiAffinity ? "soft" : "hard") anti-affinity")
        }
    }
}

/// What the replicas preflight's checks have read, and what they say for `repave plan`.
struct ReplicasFindings: CheckFindings {
    var claim: PersistentVolumeClaim?
    var longhorn: LonghornVolume?
    var softAntiAffinity = false
    /// One plain line per case found (attached; detached with offline rebuilding; waited for).
    var said: [String] = []
    var stop: Bool { false }
}

typealias ReplicasCheck = NamedCheck<ReplicasFindings>

struct ReplicasSaveManifests: Step {
    let replicas: ReplicasRun
    var id: String { "save-manifests" }
    var mutates: Bool { false }
    var summary: String { "save the claim, volume, class and Longhorn volume as they are (raw JSON) into the run directory" }
    var estimate: Duration { .seconds(10) }
    var permissions: [KubeClient.AccessQuestion] { replicas.manifests.permissions }

    /// The patch's rehearsal needs the Longhorn volume's name.
    func rehearse(_ context: StepContext) async throws -> [CheckResult] {
        _ = try await observe(context)
        return []
    }

    func observe(_ context: StepContext) async throws -> Bool {
        if ClaimManifests.saved(context) { return true }
        let (claim, volume, longhorn) = try await replicas.manifests.saveClaim(context)
        guard let longhorn else {
            throw RepaveError(.longhornGone, "the Longhorn volume of persistentvolume \(volume.name) is gone since the preflight",
                              hint: "nothing was changed: find out what removed it, then plan again ('repave abort' ends this run)")
        }
        try await context.remember(ReplicasFact.longhornVolume, longhorn.name)
        if context.facts[ReplicasFact.originalReplicas] == nil {
            try await context.remember(ReplicasFact.originalReplicas, longhorn.numberOfReplicas)
        }
        try await replicas.manifests.remember(context, claim: claim, volume: volume)
        return true
    }

    func apply(_ context: StepContext) async throws {}
}

struct PatchReplicas: Step {
    let replicas: ReplicasRun
    var id: String { "patch-replicas" }
    var mutates: Bool { true }
    var summary: String { "set the Longhorn volume's spec.numberOfReplicas to \(replicas.plan.replicas) (resourceVersion-guarded) and annotate the claim \(ReplicasRun.annotation)" }
    var estimate: Duration { .seconds(30) }
    var permissions: [KubeClient.AccessQuestion] {
        [.init("get", .longhornVolumes, namespace: replicas.longhornNamespace), .init("patch", .longhornVolumes, namespace: replicas.longhornNamespace),
         .init("get", .persistentVolumeClaims, namespace: replicas.namespace), .init("patch", .persistentVolumeClaims, namespace: replicas.namespace)]
    }

    func rehearse(_ context: StepContext) async throws -> [CheckResult] {
        [await CheckResult.attempt("patch the Longhorn volume's numberOfReplicas to \(replicas.plan.replicas) and annotate the claim") { try await apply(context) }]
    }

    func observe(_ context: StepContext) async throws -> Bool {
        guard let name = context.facts[ReplicasFact.longhornVolume] else { return false }
        let longhorn = LonghornVolume(try await context.readExisting(.longhornVolumes, named: name, in: replicas.longhornNamespace))
        let claim = PersistentVolumeClaim(try await context.readExisting(.persistentVolumeClaims, named: replicas.claim, in: replicas.namespace))
        return longhorn.numberOfReplicas == replicas.plan.replicas && claim.metadata.annotations[ReplicasRun.annotation] == String(replicas.plan.replicas)
    }

    func apply(_ context: StepContext) async throws {
        guard let name = context.facts[ReplicasFact.longhornVolume] else {
            throw RepaveError(.replicasNoVolume, "the journal records no Longhorn volume for the claim (save-manifests journals it)",
                              hint: "the journal is incomplete: 'repave abort' this run and plan again")
        }
        let count = replicas.plan.replicas
        try await replicas.guardedPatch(context, .longhornVolumes, named: name, in: replicas.longhornNamespace, uid: context.facts[ClaimFact.longhornUID],
                                        done: { LonghornVolume($0).numberOfReplicas == count }) { _ in ["spec": ["numberOfReplicas": .integer(Int64(count))]] }
        try await replicas.guardedPatch(context, .persistentVolumeClaims, named: replicas.claim, in: replicas.namespace, uid: context.facts[ClaimFact.claimUID],
                                        done: { ObjectMeta($0["metadata"] ?? [:]).annotations[ReplicasRun.annotation] == String(count) }) { _ in
            ["metadata": ["annotations": [.init(ReplicasRun.annotation): .string(String(count))]]]
        }
    }

    /// The count back to what it was and the annotation gone, but only what this run changed:
    /// the count when this run's patch was sent (journaled) and the volume still has the count
    /// it set; the annotation when this run wrote it and it still says this run's count. A count
    /// someone else changed since is left, and said. Longhorn keeps replicas it has already
    /// built: a lower count removes none.
    func undo(_ context: StepContext) async throws -> [String] {
        guard let name = context.facts[ReplicasFact.longhornVolume], let original = context.facts[ReplicasFact.originalReplicas] else { return [] }
        let count = replicas.plan.replicas
        let namespace = replicas.longhornNamespace
        var report: [String] = []
        if replicas.patchSent(context, .longhornVolumes, named: name, in: namespace),
           let object = try await context.read(.longhornVolumes, named: name, in: namespace) {
            let now = LonghornVolume(object).numberOfReplicas
            if now == count, count != original {
                try await replicas.guardedPatch(context, .longhornVolumes, named: name, in: namespace, uid: context.facts[ClaimFact.longhornUID],
                                                done: { LonghornVolume($0).numberOfReplicas != count }) { _ in ["spec": ["numberOfReplicas": .integer(Int64(original))]] }
                let built = try await ReplicasRun.replicas(of: name, context, in: namespace).filter(\.isHealthy).count
                report.append("volumes.longhorn.io \(name): numberOfReplicas back to \(original). Longhorn keeps the replicas it already built (\(built) healthy now): "
                              + "a lower count removes none; remove extras in Longhorn's UI (replicaRemove) or by deleting their replicas.longhorn.io objects")
            } else if now != count, now != original {
                report.append("volumes.longhorn.io \(name): numberOfReplicas left at \(now): someone else changed it after this run set \(count), "
                              + "so abort does not put back \(original)")
            }
        }
        if replicas.patchSent(context, .persistentVolumeClaims, named: replicas.claim, in: replicas.namespace),
           let object = try await context.read(.persistentVolumeClaims, named: replicas.claim, in: replicas.namespace),
           let value = ObjectMeta(object["metadata"] ?? [:]).annotations[ReplicasRun.annotation] {
            guard value == String(count) else {
                report.append("annotation \(ReplicasRun.annotation)=\(value) on persistentvolumeclaim \(replicas.namespace)/\(replicas.claim) left: "
                              + "someone else changed it after this run set \(count)")
                return report
            }
            try await replicas.guardedPatch(context, .persistentVolumeClaims, named: replicas.claim, in: replicas.namespace, uid: context.facts[ClaimFact.claimUID],
                                            done: { ObjectMeta($0["metadata"] ?? [:]).annotations[ReplicasRun.annotation] != String(count) }) { _ in
                ["metadata": ["annotations": [.init(ReplicasRun.annotation): .null]]]
            }
            report.append("annotation \(ReplicasRun.annotation) removed from persistentvolumeclaim \(replicas.namespace)/\(replicas.claim)")
        }
        return report
    }
}

struct AwaitRebuild: Step {
    let replicas: ReplicasRun
    var id: String { "await-rebuild" }
    var mutates: Bool { false }
    var summary: String {
        "wait until the Longhorn volume is Scheduled, \(replicas.plan.verify.robustness), with \(replicas.plan.verify.replicas) healthy running replicas on distinct nodes (rebuilt one at a time)"
    }
    var estimate: Duration { replicas.plan.timeouts.rebuild.duration }
    var permissions: [KubeClient.AccessQuestion] {
        let longhorn = replicas.longhornNamespace
        return ["get", "list", "watch"].map { .init($0, .longhornVolumes, namespace: longhorn) }
            + [.init("list", .longhornReplicas, namespace: longhorn), .init("list", .longhornEngines, namespace: longhorn)]
    }

    func observe(_ context: StepContext) async throws -> Bool {
        try await rebuild(context).problems.isEmpty
    }

    func apply(_ context: StepContext) async throws {}

    func await(_ context: StepContext) async throws {
        let deadline = context.deadline(estimate)
        var said = ""
        // How long to wait for the volume to change before looking at the replicas again:
        // short while the progress moves, longer while it does not.
        var interval = Duration.seconds(1)
        while true {
            let state = try await rebuild(context)
            if state.problems.isEmpty { return }
            if let count = state.countChanged {
                throw RepaveError(.rebuildCountChanged, "Longhorn volume \(state.volume)'s spec.numberOfReplicas is \(count), not the \(replicas.plan.replicas) this run set: someone else changed it",
                                  hint: "find out who (kubectl -n \(replicas.longhornNamespace) get volumes.longhorn.io \(state.volume) -o yaml); "
                                      + "'repave resume' sets \(replicas.plan.replicas) again and waits, 'repave abort' leaves their count")
            }
            if let failure = state.schedulingFailure {
                throw RepaveError(.replicasUnschedulable, "Longhorn cannot schedule the volume's replicas: \(failure)", causes: state.problems,
                                  hint: "give Longhorn room (schedulable nodes or disks, or replica-soft-anti-affinity: true), then 'repave resume'; or 'repave abort' to put the count back")
            }
            if said.isEmpty {
                context.waiting(state.progress)
            } else if state.progress == said {
                interval = min(interval * 2, .seconds(5))
            } else {
                interval = .seconds(1)
                // Each later change only redraws the line: how often Longhorn's progress changes
                // is its own timing, and the wait's failpoint (`in-wait:await-rebuild`) must be
                // passed the same number of times in every run (ReplicasTests' crash matrix).
                let (step, progress) = context.update { ($0.currentStep, $0.progress) }
                progress(.waiting(step: step, for: state.progress, since: .now))
            }
            said = state.progress
            let left = deadline - .now
            guard left > .zero else {
                throw RepaveError(.rebuildTimeout, "the Longhorn volume did not finish rebuilding within \(replicas.plan.timeouts.rebuild)", causes: state.problems,
                                  hint: "Longhorn goes on rebuilding by itself: run 'repave resume' to wait again, or 'repave abort' to put the count back")
            }
            // Woken by the volume's changes (robustness, conditions), and every few seconds to
            // look at the replicas and the engine's progress too.
            let seen = state.object
            do {
                try await context.client.wait(for: .longhornVolumes, named: state.volume, in: replicas.longhornNamespace, from: seen,
                                              timeout: min(left, interval), describedAs: "Longhorn volume \(state.volume) to change") { $0 != seen }
            } catch is WaitTimedOut {}
        }
    }

    /// The volume and its replicas now: what still keeps the rebuild from done, and a progress
    /// line naming the replica being rebuilt.
    struct Rebuild {
        var volume: String
        var object: JSON?
        var problems: [String] = []
        var schedulingFailure: String?
        /// The volume's count, when it is not the plan's: someone else changed it.
        var countChanged: Int?
        var progress = ""
    }

    func rebuild(_ context: StepContext) async throws -> Rebuild {
        guard let name = context.facts[ReplicasFact.longhornVolume] else { return Rebuild(volume: "", problems: ["no recorded Longhorn volume"]) }
        let verify = replicas.plan.verify
        var state = Rebuild(volume: name)
        guard let object = try await context.read(.longhornVolumes, named: name, in: replicas.longhornNamespace) else {
            state.problems.append("Longhorn volume \(replicas.longhornNamespace)/\(name) is gone")
            return state
        }
        state.object = object
        let longhorn = LonghornVolume(object)
        let all = try await ReplicasRun.replicas(of: name, context, in: replicas.longhornNamespace)
        let attached = longhorn.state == "attached"
        let nodes = Set(all.filter { $0.isHealthy(attached: attached) }.map(\.nodeID))
        if longhorn.numberOfReplicas != replicas.plan.replicas {
            state.problems.append("spec.numberOfReplicas is \(longhorn.numberOfReplicas), not \(replicas.plan.replicas)")
            state.countChanged = longhorn.numberOfReplicas
        }
        if let scheduled = longhorn.scheduled, scheduled.status != "True" {
            state.problems.append("Scheduled is \(scheduled.status.isEmpty ? "unset" : scheduled.status): \(scheduled.reason): \(scheduled.message)")
            if scheduled.status == "False", scheduled.reason == "ReplicaSchedulingFailure" {
                state.schedulingFailure = scheduled.message.isEmpty ? scheduled.reason : scheduled.message
            }
        } else if longhorn.scheduled == nil {
            state.problems.append("no Scheduled condition yet")
        }
        if attached, longhorn.robustness != verify.robustness {
            state.problems.append("robustness is \(longhorn.robustness), not \(verify.robustness)")
        }
        if nodes.count < verify.replicas {
            state.problems.append("\(nodes.count) of \(verify.replicas) replicas healthy on distinct nodes")
        }
        let rebuilding = all.filter(\.isRebuilding)
        if !attached, !rebuilding.isEmpty || nodes.count < verify.replicas, !longhorn.conditions.contains(where: { $0.type == "OfflineRebuilding" && $0.status == "True" }) {
            state.progress = "the volume to be attached: Longhorn rebuilds only then (\(nodes.count) of \(verify.replicas) healthy)"
        } else if let replica = rebuilding.first {
            let percent = try await ReplicasRun.rebuildProgress(of: replica, volume: name, context, in: replicas.longhornNamespace).map { " \($0)%" } ?? ""
            state.progress = "replica \(replica.name) rebuilding on \(replica.nodeID)\(percent) (\(nodes.count) of \(verify.replicas) healthy)"
        } else {
            state.progress = "Longhorn to rebuild (\(nodes.count) of \(verify.replicas) healthy, \(longhorn.robustness.isEmpty ? "robustness unknown" : longhorn.robustness))"
        }
        return state
    }
}

extension ReplicasRun {
    static let longhornDriver = "driver.longhorn.io"

    /// Longhorn's settings by name (absent ones are Longhorn's defaults).
    static func settings(_ context: StepContext, in namespace: String) async throws -> [String: String] {
        let items = try await context.client.list(.longhornSettings, in: namespace).items.map(LonghornSetting.init)
        return Dictionary(items.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
    }

    /// The volume's replicas (label `longhornvolume=<volume>`, as Longhorn sets it).
    static func replicas(of volume: String, _ context: StepContext, in namespace: String) async throws -> [LonghornReplica] {
        try await context.client.list(.longhornReplicas, in: namespace, labelSelector: "longhornvolume=\(volume)").items.map(LonghornReplica.init)
            .filter { $0.volumeName == volume }
    }

    /// A replica's rebuild progress as its volume's engine reports it (`status.rebuildStatus`,
    /// by the replica's address); nil when Longhorn reports none (or has no engines CRD).
    static func rebuildProgress(of replica: LonghornReplica, volume: String, _ context: StepContext, in namespace: String) async throws -> Int? {
        guard let address = replica.address else { return nil }
        let engines: [JSON]
        do {
            engines = try await context.client.list(.longhornEngines, in: namespace, labelSelector: "longhornvolume=\(volume)").items
        } catch let error as KubeAPIError where error.reason == .notFound {
            return nil
        }
        return engines.lazy.compactMap { LonghornEngine($0).rebuildProgress(of: address) }.first
    }

    /// A merge patch guarded by the object's resourceVersion, each try its own journaled
    /// request. Longhorn rewrites its volumes often, so a conflict is answered, after a short
    /// jittered pause, by reading the object again and, unless it is done by then, patching
    /// again: at most ``patchAttempts`` tries, then the last conflict is thrown, which the
    /// engine (and abort) treat as passing and try again with their backoff. `uid`, when known,
    /// must still be the object's.
    func guardedPatch(_ context: StepContext, _ type: ResourceType, named name: String, in namespace: String, uid: String?,
                      done: (JSON) -> Bool, _ patch: (JSON) -> JSON) async throws {
        var attempt = 1
        while true {
            let object = try await context.readExisting(type, named: name, in: namespace)
            let meta = ObjectMeta(object["metadata"] ?? [:])
            if let uid, meta.uid != uid {
                throw RepaveError(.replicasReplaced, "\(type) \(namespace)/\(name) is another object now (uid \(uid) at the start, \(meta.uid) now)",
                                  hint: "inspect it; repave does not change an object it did not save")
            }
            if done(object) { return }
            var body = patch(object)
            var metadata = body["metadata"] ?? [:]
            metadata["resourceVersion"] = .string(meta.resourceVersion)
            body["metadata"] = metadata
            do {
                let answer = try await context.mutate("PATCH", type.path(namespace: namespace, name: name), precondition: meta.resourceVersion) {
                    try await context.client.patch(type, named: name, in: namespace, .merge(body), dryRun: context.dryRun)
                }
                if !context.dryRun { context.saw(answer, type, named: name, in: namespace) }
                return
            } catch let error as KubeAPIError where TransientFailure.isConflict(error) && attempt < Self.patchAttempts {
                context.logger.info("\(type) \(namespace)/\(name) changed under patch \(attempt) of \(Self.patchAttempts): reading it again")
                try await Task.sleep(for: Self.conflictPause(attempt))
                attempt += 1
            }
        }
    }

    /// The pause after the `attempt`th conflict: 50-150 ms, doubling, so two writers that met
    /// once do not meet again.
    static func conflictPause(_ attempt: Int) -> Duration {
        .milliseconds(Int.random(in: 50...150) << min(attempt - 1, 4))
    }

    /// Whether this run (not a rehearsal) sent patch-replicas' PATCH of the object: its intent
    /// is in the journal, sent or not. Abort undoes only what this run may have changed.
    func patchSent(_ context: StepContext, _ type: ResourceType, named name: String, in namespace: String) -> Bool {
        let path = type.path(namespace: namespace, name: name)
        return context.journal.records.contains { record in
            guard record.step == "patch-replicas", case .intent(let intent)? = try? EngineRecord(decoding: record) else { return false }
            return intent.verb == "PATCH" && intent.path == path && !intent.dryRun
        }
    }
}
