import Curl
import Journal
import KubeAPI
import Testing

@testable import RepaveCore

@Suite("run machine")
struct RunMachineTests {
    let steps: [RunMachine.StepInfo] = [
        .init(id: "preflight", mutates: false, estimate: .seconds(10)),
        .init(id: "scale-down", mutates: true, estimate: .seconds(30)),
        .init(id: "delete-claim", mutates: true, pointOfNoReturn: true, estimate: .seconds(30)),
    ]

    /// The window open and the Lease held: the gate lets the change through.
    let open = RunMachine.Event.gated(window: .inside, lockLost: nil)

    /// A passing failure of the current action: a pause, then the action to retry from.
    func retry(_ machine: inout RunMachine, step: String, attempt: Int = 1) -> RunMachine.Action {
        let pause = machine.next(after: .failed(.passing("lost", retryAfter: nil)))
        #expect(pause == .pause(step, reason: "lost", delay: RunMachine.delay(attempt: attempt, retryAfter: nil), attempt: attempt))
        return machine.next(after: .paused)
    }

    @Test("a fresh run: observe, one confirmation naming the point of no return, gate, apply, await, record")
    func freshRun() {
        var machine = RunMachine(steps: steps, confirmationRequired: true)
        #expect(machine.next(after: .start) == .observe("preflight"))
        #expect(machine.next(after: .observed(goalHolds: true)) == .record("preflight"))
        #expect(machine.next(after: .recorded) == .observe("scale-down"))
        #expect(machine.next(after: .observed(goalHolds: false)) == .confirm(pointOfNoReturn: "delete-claim"))
        // The answer may have taken minutes: the step looks again before its change.
        #expect(machine.next(after: .confirmed(true)) == .observe("scale-down"))
        #expect(machine.next(after: .observed(goalHolds: false)) == .gate("scale-down", remaining: .seconds(60)))
        #expect(!machine.changed)
        #expect(machine.next(after: open) == .apply("scale-down", windowWarning: nil))
        #expect(machine.changed)
        #expect(machine.next(after: .applied) == .await("scale-down"))
        #expect(machine.next(after: .awaited) == .record("scale-down"))
        #expect(machine.next(after: .recorded) == .observe("delete-claim"))
        #expect(machine.next(after: .observed(goalHolds: false)) == .gate("delete-claim", remaining: .seconds(30)))   // asked once only
        #expect(machine.next(after: open) == .apply("delete-claim", windowWarning: nil))
        #expect(machine.next(after: .applied) == .await("delete-claim"))
        #expect(machine.next(after: .awaited) == .record("delete-claim"))
        #expect(machine.next(after: .recorded) == .finish)
    }

    @Test("a passing failure: a failed read observes again, a failed change is settled by observing before anything is sent again, a failed wait waits again")
    func retryFromTheRightPlace() {
        var machine = RunMachine(steps: steps, confirmationRequired: false)
        #expect(machine.next(after: .start) == .observe("preflight"))
        #expect(retry(&machine, step: "preflight") == .observe("preflight"))
        #expect(machine.next(after: .observed(goalHolds: true)) == .record("preflight"))
        #expect(machine.next(after: .recorded) == .observe("scale-down"))
        #expect(machine.next(after: .observed(goalHolds: false)) == .gate("scale-down", remaining: .seconds(60)))
        #expect(machine.next(after: open) == .apply("scale-down", windowWarning: nil))
        // The change may have been made: observe, and settle it like a resumed run would.
        #expect(retry(&machine, step: "scale-down") == .observe("scale-down"))
        #expect(machine.next(after: .observed(goalHolds: true)) == .settle("scale-down", applied: true))
        #expect(machine.next(after: .recorded) == .await("scale-down"))
        #expect(retry(&machine, step: "scale-down", attempt: 2) == .await("scale-down"))
        #expect(machine.next(after: .awaited) == .record("scale-down"))
        #expect(machine.next(after: .recorded) == .observe("delete-claim"))
        #expect(machine.next(after: .observed(goalHolds: false)) == .gate("delete-claim", remaining: .seconds(30)))
        #expect(machine.next(after: open) == .apply("delete-claim", windowWarning: nil))
        // Not made: applied again, once the observation said so (through the gate again).
        #expect(retry(&machine, step: "delete-claim") == .observe("delete-claim"))
        #expect(machine.next(after: .observed(goalHolds: false)) == .settle("delete-claim", applied: false))
        #expect(machine.next(after: .recorded) == .gate("delete-claim", remaining: .seconds(30)))
        #expect(machine.next(after: open) == .apply("delete-claim", windowWarning: nil))
        #expect(machine.next(after: .applied) == .await("delete-claim"))
        #expect(machine.next(after: .awaited) == .record("delete-claim"))
        #expect(machine.next(after: .recorded) == .finish)
        #expect(machine.retries == ["preflight": 1, "scale-down": 2, "delete-claim": 1])
    }

    @Test("the machine owns attempts: six retries of a step with growing pauses or the server's Retry-After, then it stops; a final failure stops at once")
    func attempts() {
        var machine = RunMachine(steps: steps, confirmationRequired: false)
        #expect(machine.next(after: .start) == .observe("preflight"))
        for attempt in 1...RunMachine.maxRetries {
            let pause = machine.next(after: .failed(.passing("503", retryAfter: attempt == 2 ? .seconds(7) : nil)))
            #expect(pause == .pause("preflight", reason: "503", delay: attempt == 2 ? .seconds(7) : .milliseconds(250 * (1 << min(attempt - 1, 4))), attempt: attempt))
            #expect(machine.next(after: .paused) == .observe("preflight"))
        }
        #expect(machine.next(after: .failed(.passing("503", retryAfter: nil))) == .stop("503"))
        #expect(RunMachine.delay(attempt: 1, retryAfter: .seconds(90)) == .seconds(30))
        var other = RunMachine(steps: steps, confirmationRequired: false)
        _ = other.next(after: .start)
        #expect(other.next(after: .failed(.final("forbidden"))) == .stop("forbidden"))
    }

    @Test("the window gates every change: refused before the first one, only a warning once the run has changed the cluster; a lost Lease stops before the next change")
    func gate() {
        let closed = WindowCheck.closed(closedFor: 60)
        var fresh = RunMachine(steps: steps, confirmationRequired: false)
        _ = fresh.next(after: .start)
        _ = fresh.next(after: .observed(goalHolds: true))
        _ = fresh.next(after: .recorded)
        #expect(fresh.next(after: .observed(goalHolds: false)) == .gate("scale-down", remaining: .seconds(60)))
        #expect(fresh.next(after: .gated(window: closed, lockLost: nil)) == .stop("not starting scale-down: the maintenance window closed 1m ago"))
        #expect(!fresh.changed)

        var started = RunMachine(steps: steps, confirmationRequired: false)
        #expect(started.next(after: .resume(done: ["preflight", "scale-down"], dangling: nil, changed: true)) == .observe("delete-claim"))
        #expect(started.next(after: .observed(goalHolds: false)) == .gate("delete-claim", remaining: .seconds(30)))
        #expect(started.next(after: .gated(window: closed, lockLost: nil)) == .apply("delete-claim", windowWarning: "the maintenance window closed 1m ago"))

        var lost = RunMachine(steps: steps, confirmationRequired: false)
        _ = lost.next(after: .resume(done: ["preflight"], dangling: nil, changed: true))
        _ = lost.next(after: .observed(goalHolds: false))
        #expect(lost.next(after: .gated(window: .inside, lockLost: "the cluster lock was taken by r2")) == .stop("not starting scale-down: the cluster lock was taken by r2"))
    }

    @Test("which failures the engine tries again: a resourceVersion conflict and a change whose answer was lost; not a read the client already retried, a refusal, a failed uid precondition or a deadline")
    func classification() {
        func api(_ status: Int, _ reason: KubeAPIError.Reason, _ message: String = "", retryAfter: Duration? = nil) -> KubeAPIError {
            KubeAPIError(reason: reason, httpStatus: status, verb: "PATCH", path: "/", message: message, retryAfter: retryAfter)
        }
        func passes(_ error: any Error) -> Bool { if case .passing = TransientFailure.classify(error) { true } else { false } }
        #expect(passes(api(409, .conflict, "the object has been modified")))
        #expect(TransientFailure.classify(api(409, .conflict, "modified", retryAfter: .seconds(2))) == .passing("\(api(409, .conflict, "modified", retryAfter: .seconds(2)))", retryAfter: .seconds(2)))
        #expect(passes(UnsettledWrite(verb: "PATCH", path: "/", cause: api(503, .serviceUnavailable))))
        // The server's Retry-After on a write whose answer said 503 is kept for the pause.
        let later = UnsettledWrite(verb: "PATCH", path: "/", cause: api(503, .serviceUnavailable, retryAfter: .seconds(3)))
        #expect(TransientFailure.classify(later) == .passing("\(later)", retryAfter: .seconds(3)))
        #expect(!passes(api(409, .conflict, "Precondition failed: UID in precondition: a, UID in object meta: b")))
        // A DELETE guarded by a resourceVersion that moved on: a fresh look, as any conflict.
        #expect(passes(api(409, .conflict, "StorageError: invalid object, Code: 4, Key: /registry/persistentvolumes/pv, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: ResourceVersion in precondition: 44901, ResourceVersion in object meta: 44907")))
        #expect(!passes(api(409, .alreadyExists)))
        #expect(!passes(api(403, .forbidden)))
        #expect(!passes(api(422, .invalid)))
        // The client already sent a read as often as its policy allows: the engine does not again.
        #expect(!passes(api(503, .serviceUnavailable)))
        #expect(!passes(CurlError(code: 56, message: "", operation: "")))
        #expect(!passes(RepaveError(.verifyFailed, "timed out waiting")))
        // Which failures of a write leave its outcome unknown.
        #expect(TransientFailure.leavesOutcomeUnknown(CurlError(code: 56, message: "", operation: "")))
        #expect(TransientFailure.leavesOutcomeUnknown(CurlError(code: 28, message: "", operation: "")))
        #expect(!TransientFailure.leavesOutcomeUnknown(CurlError(code: 60, message: "", operation: "")))
        for status in [500, 502, 503, 504] { #expect(TransientFailure.leavesOutcomeUnknown(api(status, .unknown))) }
        #expect(!TransientFailure.leavesOutcomeUnknown(api(409, .conflict)))
        #expect(!TransientFailure.leavesOutcomeUnknown(api(429, .tooManyRequests)))
    }

    @Test("nothing to do: every goal already holds, no confirmation asked")
    func nothingToDo() {
        var machine = RunMachine(steps: steps, confirmationRequired: true)
        var actions: [RunMachine.Action] = [machine.next(after: .start)]
        while actions.last != .finish {
            let event: RunMachine.Event = if case .observe = actions.last! { .observed(goalHolds: true) } else { .recorded }
            actions.append(machine.next(after: event))
        }
        #expect(!actions.contains { if case .confirm = $0 { true } else { false } })
        #expect(actions.filter { if case .apply = $0 { true } else { false } }.isEmpty)
    }

    @Test("refusing the confirmation stops before any change; --yes never asks; a failure stops")
    func refusalsAndFailures() {
        var machine = RunMachine(steps: steps, confirmationRequired: true)
        _ = machine.next(after: .start)
        _ = machine.next(after: .observed(goalHolds: true))
        _ = machine.next(after: .recorded)
        #expect(machine.next(after: .observed(goalHolds: false)) == .confirm(pointOfNoReturn: "delete-claim"))
        #expect(machine.next(after: .confirmed(false)) == .stop("not confirmed; nothing was changed"))

        var yes = RunMachine(steps: steps, confirmationRequired: false)
        _ = yes.next(after: .start)
        _ = yes.next(after: .observed(goalHolds: true))
        _ = yes.next(after: .recorded)
        #expect(yes.next(after: .observed(goalHolds: false)) == .gate("scale-down", remaining: .seconds(60)))
        #expect(yes.next(after: open) == .apply("scale-down", windowWarning: nil))
        #expect(yes.next(after: .failed(.final("boom"))) == .stop("boom"))
    }

    @Test("resume with a dangling intent whose change happened: settled as applied, then recorded")
    func resumeApplied() {
        var machine = RunMachine(steps: steps, confirmationRequired: true)
        #expect(machine.next(after: .resume(done: ["preflight"], dangling: "scale-down")) == .observe("scale-down"))
        #expect(machine.next(after: .observed(goalHolds: true)) == .settle("scale-down", applied: true))
        #expect(machine.next(after: .recorded) == .await("scale-down"))
        #expect(machine.next(after: .awaited) == .record("scale-down"))
        #expect(machine.next(after: .recorded) == .observe("delete-claim"))
    }

    @Test("resume of a step whose change was made but whose wait was cut short: straight back to the wait, no second change")
    func resumeIntoWait() {
        var machine = RunMachine(steps: steps, confirmationRequired: true)
        #expect(machine.next(after: .resume(done: ["preflight"], dangling: nil, applied: ["scale-down"])) == .await("scale-down"))
        #expect(machine.next(after: .awaited) == .record("scale-down"))
        #expect(machine.next(after: .recorded) == .observe("delete-claim"))
    }

    @Test("resume with a dangling intent whose change did not happen: settled, then applied again without asking")
    func resumeNotApplied() {
        var machine = RunMachine(steps: steps, confirmationRequired: true)
        #expect(machine.next(after: .resume(done: ["preflight"], dangling: "scale-down")) == .observe("scale-down"))
        #expect(machine.next(after: .observed(goalHolds: false)) == .settle("scale-down", applied: false))
        #expect(machine.next(after: .recorded) == .gate("scale-down", remaining: .seconds(60)))
    }

    /// A whole run simulated the way the runner journals it, then resumed from every prefix of
    /// its journal, in a world where a dangling intent was either applied or lost. Every resume
    /// finishes, and no step's change is made twice.
    @Test("resume from every possible last record converges, each change made once")
    func resumeFromEveryRecord() {
        func simulate(_ machine: inout RunMachine, first: RunMachine.Event, world: inout Set<String>, applies: inout [String], journal: inout [(String, String?)]) {
            var action = machine.next(after: first)
            var guardCount = 0
            while guardCount < 100 {
                guardCount += 1
                switch action {
                case .finish, .stop: return
                case .observe(let id): action = machine.next(after: .observed(goalHolds: steps.first { $0.id == id }!.mutates ? world.contains(id) : true))
                case .confirm: action = machine.next(after: .confirmed(true))
                case .gate: action = machine.next(after: .gated(window: .inside, lockLost: nil))
                case .pause: action = machine.next(after: .paused)
                case .apply(let id, _):
                    journal.append(("intent", id))
                    if world.contains(id) { applies.append("DUPLICATE \(id)") }
                    world.insert(id)
                    applies.append(id)
                    journal.append(("outcome", id))
                    journal.append(("applied", id))
                    action = machine.next(after: .applied)
                case .await: action = machine.next(after: .awaited)
                case .settle(let id, _): journal.append(("resolved", id)); action = machine.next(after: .recorded)
                case .record(let id): journal.append(("step_done", id)); action = machine.next(after: .recorded)
                }
            }
            Issue.record("the machine did not finish within 100 actions")
        }
        var full = RunMachine(steps: steps, confirmationRequired: false)
        var world = Set<String>(), applies: [String] = [], journal: [(String, String?)] = [("header", nil)]
        simulate(&full, first: .start, world: &world, applies: &applies, journal: &journal)
        #expect(applies == ["scale-down", "delete-claim"])

        for cut in 1...journal.count {
            let prefix = Array(journal.prefix(cut))
            for danglingApplied in [true, false] {
                // The world holds every change whose outcome (or a later record) is in the prefix;
                // a dangling intent's change may or may not have reached the server.
                var world = Set(prefix.filter { $0.0 == "outcome" }.compactMap(\.1))
                let dangling = prefix.last?.0 == "intent" ? prefix.last?.1 : nil
                if let dangling, danglingApplied { world.insert(dangling) }
                let done = Set(prefix.filter { $0.0 == "step_done" }.compactMap(\.1))
                let applied = Set(prefix.filter { $0.0 == "applied" }.compactMap(\.1)).subtracting(done)
                var machine = RunMachine(steps: steps, confirmationRequired: true)
                var applies: [String] = []
                var rest: [(String, String?)] = []
                simulate(&machine, first: .resume(done: done, dangling: dangling, applied: applied), world: &world, applies: &applies, journal: &rest)
                #expect(!applies.contains { $0.hasPrefix("DUPLICATE") }, "cut \(cut), dangling applied \(danglingApplied): \(applies)")
                #expect(world == ["scale-down", "delete-claim"], "cut \(cut)")
                #expect(machine.done.union(rest.filter { $0.0 == "step_done" }.compactMap(\.1)) == Set(steps.map(\.id)), "cut \(cut)")
            }
        }
    }

    @Test("the engine folds a journal into done steps, a dangling intent and attempts")
    func folding() throws {
        func record(_ kind: String, _ step: String?) -> JournalRecord {
            let data = kind == "intent" ? #"{"verb":"PATCH","path":"/p","attempt":1,"dryRun":false}"# : #"{"step":"\#(step ?? "")"}"#
            return JournalRecord(version: 1, sequence: 0, previous: "", run: "r", time: "", kind: kind, step: step, critical: true, data: Data(data.utf8), checksum: "")
        }
        func outcome(_ step: String, _ result: String) -> JournalRecord {
            var r = record("outcome", step)
            r.data = Data(#"{"result":"\#(result)"}"#.utf8)
            return r
        }
        var header = record("header", nil)
        header.data = Data(#"{"schema":2,"tool":"t","strategy":"recreate","plan":"p","planDigest":"d","cluster":{"server":"s","kubeSystemUID":"u"},"targets":{},"tlsVerified":true}"#.utf8)
        let state = try RunHistory([
            header, record("intent", "a"), outcome("a", "ok"), record("applied", "a"), record("step_done", "a"),
            record("intent", "b"), outcome("b", "ok"), record("applied", "b"), record("intent", "c"), outcome("c", "error"),
        ]).state
        #expect(state.done == ["a"])
        #expect(state.applied == ["b"])
        #expect(state.dangling == "c")      // an error outcome may have reached the server
        #expect(state.attempts == ["a": 1, "b": 1, "c": 1])
        #expect(state.changed)
    }
}

import Foundation

@Suite("window and run binding")
struct WindowAndBindingTests {
    let start = Date(timeIntervalSince1970: 1_795_831_200)   // 2026-11-28T02:00:00Z

    @Test("window: not yet open, inside, too short for the remaining steps, closed; none means no limit")
    func window() {
        let window = RecreatePlan.Window(start: start, duration: PlanDuration(minutes: 45))
        #expect(WindowCheck.evaluate(window, now: start.addingTimeInterval(-60), remaining: 60) == .notYetOpen(opensIn: 60))
        #expect(WindowCheck.evaluate(window, now: start.addingTimeInterval(60), remaining: 600) == .inside)
        #expect(WindowCheck.evaluate(window, now: start.addingTimeInterval(44 * 60), remaining: 600) == .tooShort(left: 60, needed: 600))
        #expect(WindowCheck.evaluate(window, now: start.addingTimeInterval(50 * 60), remaining: 0) == .closed(closedFor: 300))
        #expect(WindowCheck.evaluate(nil, now: start, remaining: 1e9) == .inside)
        #expect(WindowCheck.tooShort(left: 60, needed: 600).explanation == "the window has 1m left and the remaining steps may take up to 10m (their timeouts)")
    }

    @Test("binding: the plan digest, the cluster and the target uids must still match on resume")
    func binding() {
        let header = RunHeader(strategy: "recreate", plan: "devpod-home", planDigest: "aaaa", cluster: .init(server: "https://a:6443", kubeSystemUID: "u1"),
                               targets: ["persistentvolumeclaim/devpod/home": "c1"], tlsVerified: true)
        #expect(header.mismatches(header).isEmpty)
        var other = header
        other.planDigest = "bbbb"
        other.cluster.kubeSystemUID = "u2"
        other.targets["persistentvolumeclaim/devpod/home"] = "c2"
        let problems = header.mismatches(other)
        #expect(problems.count == 3)
        #expect(problems[1] == "this is another cluster (kube-system uid u1 at the start, u2 now)")
        #expect(problems[2].hasPrefix("persistentvolumeclaim/devpod/home is another object now"))
    }
}

@Suite("recreate decisions")
struct RecreateDecisionTests {
    @Test("repave refuses to run inside a pod that mounts the claim")
    func insideThePod() {
        let pods = ["coder-jeda-codespace-7d9f-abcde"]
        let env = ["KUBERNETES_SERVICE_HOST": "10.0.0.1"]
        #expect(ClaimTarget.insidePodMountingClaim(pods: pods, namespace: "devpod", hostname: pods[0], environment: env, serviceAccountNamespace: "devpod\n") == pods[0])
        #expect(ClaimTarget.insidePodMountingClaim(pods: pods, namespace: "devpod", hostname: "ops-box", environment: env, serviceAccountNamespace: "devpod") == nil)
        #expect(ClaimTarget.insidePodMountingClaim(pods: pods, namespace: "devpod", hostname: pods[0], environment: [:], serviceAccountNamespace: "devpod") == nil)
        #expect(ClaimTarget.insidePodMountingClaim(pods: pods, namespace: "devpod", hostname: pods[0], environment: env, serviceAccountNamespace: "other") == nil)
    }

    @Test("the run directory must not be on the claim's own volume (by /proc/self/mountinfo)")
    func runDirectoryOnVolume() {
        let volume = "pvc-6f1c2a9e-1b7d-4c1e-9a55-0d2b7e1f3c44"
        // Inside the workspace pod: the claim is /home/coder, a Longhorn device.
        let pod = """
            2360 2200 0:310 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/containerd/l1
            2361 2360 8:1 /var/lib/kubelet/pods/81a/etc-hosts /etc/hosts rw,relatime - ext4 /dev/sda1 rw
            2362 2360 8:48 / /home/coder rw,relatime - ext4 /dev/longhorn/\(volume) rw
            2363 2362 0:55 / /home/coder/.cache/with\\040space rw - tmpfs tmpfs rw
            """
        #expect(ClaimTarget.runDirectoryOnVolume("/home/coder/repave-runs/r1", volume: volume, mountInfo: pod) == "/home/coder")
        #expect(ClaimTarget.runDirectoryOnVolume("/home/coder", volume: volume, mountInfo: pod) == "/home/coder")
        #expect(ClaimTarget.runDirectoryOnVolume("/home/coderx/runs", volume: volume, mountInfo: pod) == nil)
        #expect(ClaimTarget.runDirectoryOnVolume("/tmp/runs", volume: volume, mountInfo: pod) == nil)
        #expect(ClaimTarget.runDirectoryOnVolume("/home/coder/.cache/with space/r", volume: volume, mountInfo: pod) == nil)
        #expect(ClaimTarget.runDirectoryOnVolume("/home/coder/runs", volume: "pvc-other", mountInfo: pod) == nil)
        // On the node: kubelet's per-pod CSI mount of the volume.
        let node = """
            25 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
            900 25 8:48 / /var/lib/kubelet/pods/81a/volumes/kubernetes.io~csi/\(volume)/mount rw - ext4 /dev/longhorn/\(volume) rw
            """
        #expect(ClaimTarget.runDirectoryOnVolume("/var/lib/kubelet/pods/81a/volumes/kubernetes.io~csi/\(volume)/mount/runs", volume: volume, mountInfo: node) != nil)
        #expect(ClaimTarget.runDirectoryOnVolume("/root/runs", volume: volume, mountInfo: node) == nil)
        // This machine: the test's scratch directory is not on a Longhorn volume.
        let own = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        #expect(!own.isEmpty)
        #expect(ClaimTarget.runDirectoryOnVolume(FileManager.default.temporaryDirectory.path, volume: volume, mountInfo: own) == nil)
    }

    @Test("the re-created claim keeps name, labels, size and modes, drops binding annotations, carries the run id")
    func recreatedClaim() {
        let saved: JSON = [
            "metadata": ["name": "home", "namespace": "devpod", "uid": "old", "resourceVersion": "9",
                         "labels": ["com.coder.resource": "true"],
                         "annotations": ["pv.kubernetes.io/bind-completed": "yes", "volume.beta.kubernetes.io/storage-provisioner": "driver.longhorn.io",
                                         "volume.kubernetes.io/selected-node": "n1", "team": "dev"],
                         "finalizers": ["kubernetes.io/pvc-protection"]],
            "spec": ["accessModes": ["ReadWriteOnce"], "resources": ["requests": ["storage": "60Gi"]], "storageClassName": "longhorn-1r",
                     "volumeName": "pvc-old", "volumeMode": "Filesystem"],
            "status": ["phase": "Bound"],
        ]
        let made = CreateClaim.recreated(from: saved, storageClass: "longhorn-3r", run: "run-1")
        #expect(made[path: "metadata", "annotations"] == ["team": "dev", "repave/run-id": "run-1"])
        #expect(made[path: "metadata", "labels"] == ["com.coder.resource": "true"])
        #expect(made[path: "metadata", "uid"] == nil)
        #expect(made[path: "metadata", "finalizers"] == nil)
        #expect(made[path: "spec", "storageClassName"] == "longhorn-3r")
        #expect(made[path: "spec", "volumeName"] == nil)
        #expect(made[path: "spec", "resources", "requests", "storage"] == "60Gi")
        #expect(made[path: "spec", "volumeMode"] == "Filesystem")
        #expect(made["status"] == nil)
    }
}
