import Foundation
import KubeAPI
import RepaveTestSupport
import Testing

/// deploy/rbac.yaml is exactly what Repave needs, for each strategy: its roles bound to a user of
/// its own (the admin impersonating it), the devpod run goes through; with any single verb of any
/// rule taken away, `repave run` refuses in its preflight, naming that permission, and changes
/// nothing.
@Suite("least privilege: deploy/rbac.yaml, exactly", .serialized)
struct LeastPrivilegeTests: DevpodTesting {
    let lab: Lab
    let client: KubeClient

    init() throws {
        lab = try Lab.current()
        client = try lab.adminClient(userAgent: "repave-test/least-privilege")
    }

    static let rbacFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../deploy/rbac.yaml").standardized.path

    func kubectl(_ arguments: [String], input: String? = nil, scratch: ScratchDirectory) async throws -> ProcessResult {
        var arguments = arguments + ["--kubeconfig", lab.adminKubeconfig]
        if let input {
            let file = scratch.file("kubectl-\(UUID().uuidString).yaml")
            try input.write(toFile: file, atomically: true, encoding: .utf8)
            arguments += ["-f", file]
        }
        return try await runProcess("kubectl", arguments)
    }

    static let roles = ResourceType(group: "rbac.authorization.k8s.io", version: "v1", plural: "roles", kind: "Role", namespaced: true)
    static let clusterRoles = ResourceType(group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterroles", kind: "ClusterRole", namespaced: false)

    /// Replaces a role's rules (a fresh read, so the update carries its resourceVersion).
    func setRules(_ role: RoleObject, _ rules: [JSON]) async throws {
        let type = role.namespace == nil ? Self.clusterRoles : Self.roles
        var object = try await client.get(type, named: role.name, in: role.namespace)
        object["rules"] = .array(rules)
        try await client.update(type, object)
    }

    /// One of the three objects in rbac.yaml as applied for this test: kind, name, namespace.
    struct RoleObject {
        let kind: String, name: String, namespace: String?
        var scope: [String] { namespace.map { ["-n", $0] } ?? [] }
    }

    @Test("bound alone, deploy/rbac.yaml's recreate roles run the devpod scenario (oldVolume: delete); without any one of their verbs, preflight refuses naming it, with nothing changed")
    func exactlyEnough() async throws {
        try await withDevpod(planExtra: "oldVolume: delete") { world in
            let variants = try await exercise(world, roles: "repave", longhornRole: "repave-longhorn", plan: world.planFile)
            #expect(variants >= 25)
            // With exactly the file, the whole maintenance.
            let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: world.original.name, in: world.namespace))
            #expect(claim.uid != world.original.uid && claim.storageClassName == world.newClass && claim.isBound)
            let deployment = Deployment(try await client.get(.deployments, named: "coder-jeda-codespace", in: world.namespace))
            #expect(deployment.replicas == 1 && deployment.availableReplicas == 1)
            #expect(try await client.getIfPresent(.persistentVolumes, named: world.oldVolume) == nil)
        }
    }

    @Test("bound alone, deploy/rbac.yaml's replicas roles raise the devpod volume to 3 replicas; without any one of their verbs, preflight refuses naming it, with nothing changed")
    func exactlyEnoughForReplicas() async throws {
        try await withDevpod { world in
            let plan = try replicasPlan(world)
            let variants = try await exercise(world, roles: "repave-replicas", longhornRole: "repave-replicas-longhorn", plan: plan)
            #expect(variants >= 17)
            let longhorn = LonghornVolume(try await client.get(.longhornVolumes, named: world.oldVolume, in: "longhorn-system"))
            #expect(longhorn.numberOfReplicas == 3 && longhorn.robustness == "healthy")
            let claim = PersistentVolumeClaim(try await client.get(.persistentVolumeClaims, named: world.original.name, in: world.namespace))
            #expect(claim.uid == world.original.uid && claim.metadata.annotations["repave/replicas"] == "3")
        }
    }

    @Test("bound alone, deploy/rbac.yaml's recreate roles also finalize a run that kept its old volume; without delete persistentvolumes finalize refuses naming it, with nothing changed")
    func finalizeNeedsNothingMore() async throws {
        try await withDevpod { world in
            do {
                let (roles, kubeconfig) = try await bindRoles(world, roles: "repave", longhornRole: "repave-longhorn")
                func repave(_ arguments: [String]) async throws -> ProcessResult {
                    try await runProcess(try repaveBinary(), arguments + ["--kubeconfig", kubeconfig])
                }
                let run = try await repave(["run", world.planFile, "--yes", "--state-dir", world.scratch.file("runs")])
                #expect(run.status == 0, "\(run.standardError)")
                let directory = try world.runDirectory()
                // One verb finalize needs taken away: refused, naming it, before anything changes.
                let clusterRole = try #require(roles.first { $0.namespace == nil })
                let full = try await client.get(Self.clusterRoles, named: clusterRole.name)
                let rules = full["rules"]?.arrayValue ?? []
                let index = try #require(rules.firstIndex { $0["resources"]?.arrayValue?.first?.stringValue == "persistentvolumes" })
                var reduced = rules
                reduced[index]["verbs"] = .array((rules[index]["verbs"]?.arrayValue ?? []).filter { $0.stringValue != "delete" })
                let asUser = try KubeClient(connection: try KubeconfigLoader(explicitPath: kubeconfig).load(), userAgent: "repave-test/least-privilege")
                let question = KubeClient.AccessQuestion("delete", .persistentVolumes)
                try await setRules(clusterRole, reduced)
                try await poll(attempts: 100, every: .milliseconds(50)) { !(try await asUser.accessReview(question).allowed) }
                let refused = try await repave(["finalize", directory, "--yes"])
                #expect(refused.status == 2 && refused.standardError.contains("error[preflight.permissions]: ") && refused.standardError.contains("delete persistentvolumes"),
                        "\(refused.standardError)")
                #expect(try await client.getIfPresent(.persistentVolumes, named: world.oldVolume).map(PersistentVolume.init)?.reclaimPolicy == "Retain")
                try await setRules(clusterRole, rules)
                try await poll(attempts: 100, every: .milliseconds(50)) { try await asUser.accessReview(question).allowed }
                let finalized = try await repave(["finalize", directory, "--yes"])
                #expect(finalized.status == 0, "\(finalized.standardError)")
                let gone = try await poll(attempts: 60, every: .milliseconds(250)) {
                    let volume = try await client.getIfPresent(.persistentVolumes, named: world.oldVolume)
                    let longhorn = try await client.getIfPresent(.longhornVolumes, named: world.oldVolume, in: "longhorn-system")
                    return volume == nil && longhorn == nil
                }
                #expect(gone)
            } catch {
                await removeCrossNamespaceRBAC(world, roles: "repave", longhornRole: "repave-longhorn")
                throw error
            }
            await removeCrossNamespaceRBAC(world, roles: "repave", longhornRole: "repave-longhorn")
        }
    }

    @Test("bound with recreate's roles, deploy/rbac.yaml's repave-migrate roles let a migrate run make its staging claim and abort it; without any one of their verbs, preflight refuses naming it, with nothing changed")
    func exactlyEnoughForMigrate() async throws {
        try await withDevpod { world in
            // No warm copy (the simulated kubelet runs no rsync) and a window a day away: the run
            // makes and retains its staging claim, then stops before scale-down.
            let plan = world.scratch.file("migrate.yaml")
            let start = ISO8601DateFormatter().string(from: Date().addingTimeInterval(86_400))
            try (self.plan(namespace: world.namespace, newClass: world.newClass).replacingOccurrences(of: "kind: RecreatePlan", with: "kind: Plan\nstrategy: migrate")
                + "\ncopy: {image: lab/mover:1, warm: false}\nwindow: {start: \"\(start)\", duration: 2h}\n").write(toFile: plan, atomically: true, encoding: .utf8)
            let variants = try await exercise(world, roles: "repave", longhornRole: "repave-longhorn", plan: plan, extra: "repave-migrate") { repave in
                let run = try await repave(["run", plan, "--yes", "--state-dir", world.scratch.file("runs")])
                #expect(run.status == 3 && run.standardError.contains("not starting scale-down: the maintenance window opens in"), "\(run.standardError)")
                let runs = try FileManager.default.contentsOfDirectory(atPath: world.scratch.file("runs"))
                let claims = try await client.list(.persistentVolumeClaims, in: world.namespace).items.map { PersistentVolumeClaim($0).name }
                #expect(claims.count == 2 && claims.contains { $0.contains("-repave-") }, "\(claims)")
                let aborted = try await repave(["abort", world.scratch.file("runs/" + (try #require(runs.first)))])
                #expect(aborted.status == 0, "\(aborted.standardError)")
            }
            #expect(variants == 6)
            let claims = try await client.list(.persistentVolumeClaims, in: world.namespace).items.map(PersistentVolumeClaim.init)
            #expect(claims.map(\.name) == [world.original.name] && claims.first?.uid == world.original.uid)
            let old = PersistentVolume(try await client.get(.persistentVolumes, named: world.oldVolume))
            #expect(old.reclaimPolicy == "Delete")
        }
    }

    /// The three objects of deploy/rbac.yaml named `roles` (a Role in the claim's namespace and a
    /// ClusterRole) and `longhornRole` (a Role in longhorn-system) bound to a user of this test's
    /// own, each verb taken away in turn, then `repave run PLAN` with all of them, which must
    /// succeed. Returns how many verbs were taken away.
    /// - Parameters:
    ///   - extra: the name of a further Role and ClusterRole of the file (`repave-migrate`), bound too;
    ///     then only its verbs are taken away, and `finish` runs the maintenance instead of `repave run PLAN`.
    func exercise(_ world: World, roles name: String, longhornRole: String, plan: String, extra: String? = nil,
                  finish: ((_ repave: @escaping ([String]) async throws -> ProcessResult) async throws -> Void)? = nil) async throws -> Int {
        do {
            let variants = try await exerciseBound(world, roles: name, longhornRole: longhornRole, plan: plan, extra: extra, finish: finish)
            await removeCrossNamespaceRBAC(world, roles: name, longhornRole: longhornRole, extra: extra)
            return variants
        } catch {
            await removeCrossNamespaceRBAC(world, roles: name, longhornRole: longhornRole, extra: extra)
            throw error
        }
    }

    /// What the namespace's deletion does not take along.
    func removeCrossNamespaceRBAC(_ world: World, roles name: String, longhornRole: String, extra: String? = nil) async {
        let more = extra.map { [["clusterrole", "\($0)-\(world.id)"], ["clusterrolebinding", "\($0)-\(world.id)"]] } ?? []
        for arguments in [["role", "\(longhornRole)-\(world.id)", "-n", "longhorn-system"], ["rolebinding", "\(name)-\(world.id)", "-n", "longhorn-system"],
                          ["clusterrole", "\(name)-\(world.id)"], ["clusterrolebinding", "\(name)-\(world.id)"]] + more {
            _ = try? await runProcess("kubectl", ["delete"] + arguments + ["--ignore-not-found", "--kubeconfig", lab.adminKubeconfig])
        }
    }

    /// The documents of deploy/rbac.yaml whose `metadata.name` is one of `names`, as an operator
    /// applies them, each renamed `<name>-<id>`.
    static func documents(named names: [String], id: String, namespace: String) throws -> String {
        try String(contentsOfFile: rbacFile, encoding: .utf8).components(separatedBy: "\n---\n").compactMap { document -> String? in
            guard let line = document.split(separator: "\n").first(where: { $0.hasPrefix("  name: ") }),
                  names.contains(String(line.dropFirst("  name: ".count))) else { return nil }
            let name = String(line.dropFirst("  name: ".count))
            return document.replacingOccurrences(of: "NAMESPACE", with: namespace).replacingOccurrences(of: "  name: \(name)\n", with: "  name: \(name)-\(id)\n")
        }.joined(separator: "\n---\n")
    }

    /// deploy/rbac.yaml's `roles` and `longhornRole` (and `extra`'s Role and ClusterRole) as an
    /// operator applies them, bound to a user of this test's own; the roles whose verbs a test
    /// takes away (with `extra`, only its), and a kubeconfig acting as that user.
    func bindRoles(_ world: World, roles name: String, longhornRole: String, extra: String? = nil) async throws -> (roles: [RoleObject], kubeconfig: String) {
        let user = "repave-lp-\(world.id)"
        // The file as an operator applies it, with names of this test's own.
        let yaml = try Self.documents(named: [name, longhornRole] + (extra.map { [$0] } ?? []), id: world.id, namespace: world.namespace)
        let base = [RoleObject(kind: "role", name: "\(name)-\(world.id)", namespace: world.namespace),
                    RoleObject(kind: "role", name: "\(longhornRole)-\(world.id)", namespace: "longhorn-system"),
                    RoleObject(kind: "clusterrole", name: "\(name)-\(world.id)", namespace: nil)]
        let more = extra.map { [RoleObject(kind: "role", name: "\($0)-\(world.id)", namespace: world.namespace),
                                RoleObject(kind: "clusterrole", name: "\($0)-\(world.id)", namespace: nil)] } ?? []
        #expect(yaml.components(separatedBy: "\n---\n").count == base.count + more.count, "\(yaml)")
        let applied = try await kubectl(["apply"], input: yaml, scratch: world.scratch)
        #expect(applied.status == 0, "\(applied.standardError)")
        let bindings = [["rolebinding", "--role"], ["rolebinding", "--role"], ["clusterrolebinding", "--clusterrole"], ["rolebinding", "--role"], ["clusterrolebinding", "--clusterrole"]]
        for (index, (role, binding)) in zip(base + more, bindings).enumerated() {
            let bindingName = (index < base.count ? name : extra ?? name) + "-\(world.id)"
            let bound = try await kubectl(["create", binding[0], bindingName, "\(binding[1])=\(role.name)", "--user=\(user)"] + role.scope, scratch: world.scratch)
            #expect(bound.status == 0, "\(bound.standardError)")
        }
        // With a further role, only its verbs are taken away (the base ones are exercised by their own test).
        let roles = extra == nil ? base : more
        // Repave acting as that user: the admin's kubeconfig, impersonating it.
        let kubeconfig = world.scratch.file("as-user.kubeconfig")
        try String(contentsOfFile: lab.adminKubeconfig, encoding: .utf8)
            .replacingOccurrences(of: "  user:\n", with: "  user:\n    as: \(user)\n")
            .write(toFile: kubeconfig, atomically: true, encoding: .utf8)
        return (roles, kubeconfig)
    }

    func exerciseBound(_ world: World, roles name: String, longhornRole: String, plan: String, extra: String? = nil,
                       finish: ((_ repave: @escaping ([String]) async throws -> ProcessResult) async throws -> Void)? = nil) async throws -> Int {
        let (roles, kubeconfig) = try await bindRoles(world, roles: name, longhornRole: longhornRole, extra: extra)
        func repave(_ arguments: [String]) async throws -> ProcessResult {
            try await runProcess(try repaveBinary(), arguments + ["--kubeconfig", kubeconfig])
        }

        // Every verb of every rule, taken away one at a time (a rule of one verb goes whole).
        let asUser = try KubeClient(connection: try KubeconfigLoader(explicitPath: kubeconfig).load(), userAgent: "repave-test/least-privilege")
        var variants = 0, refusedNamingIt = 0
        for role in roles {
            let full = try await client.get(role.namespace == nil ? Self.clusterRoles : Self.roles, named: role.name, in: role.namespace)
            let rules = full["rules"]?.arrayValue ?? []
            for (ruleIndex, rule) in rules.enumerated() {
                let verbs = rule["verbs"]?.arrayValue?.compactMap(\.stringValue) ?? []
                let group = rule["apiGroups"]?.arrayValue?.first?.stringValue ?? ""
                let resources = rule["resources"]?.arrayValue?.compactMap(\.stringValue) ?? []
                let name = rule["resourceNames"]?.arrayValue?.first?.stringValue
                // The resource the devpod plan uses (its workloads are Deployments).
                let resource = resources.first { $0 != "statefulsets" } ?? resources[0]
                let qualified = group.isEmpty ? resource : "\(resource).\(group)"
                let type = ResourceType(group: group, version: "v1", plural: resource, kind: "", namespaced: role.namespace != nil)
                for verb in verbs {
                    variants += 1
                    let label = "\(role.kind) \(role.name) without \(verb) \(qualified)"
                    var reduced = rules
                    let remaining = verbs.filter { $0 != verb }
                    if remaining.isEmpty { reduced.remove(at: ruleIndex) } else { reduced[ruleIndex]["verbs"] = .array(remaining.map { .string($0) }) }
                    try await setRules(role, reduced)
                    let question = KubeClient.AccessQuestion(verb, type, namespace: role.namespace, name: name)
                    try await poll(attempts: 100, every: .milliseconds(50)) { !(try await asUser.accessReview(question).allowed) }
                    let mark = try lab.auditMark()
                    let refused = try await repave(["run", plan, "--yes", "--state-dir", world.scratch.file("refused")])
                    let named = refused.standardError.contains("missing 1 permissions") && refused.standardError.contains("\(verb) \(qualified)")
                    let writes = try lab.repaveWrites(since: mark, namespace: world.namespace, clusterScoped: [world.newClass, world.oldVolume])
                    if refused.status == 2 && named && writes.isEmpty { refusedNamingIt += 1 } else {
                        Issue.record("\(label): exit \(refused.status), writes \(writes.map { "\($0.verb) \($0.objectRef?.resource ?? "")" }): \(refused.standardError)")
                    }
                    try await setRules(role, rules)
                    try await poll(attempts: 100, every: .milliseconds(50)) { try await asUser.accessReview(question).allowed }
                }
            }
        }
        print("least privilege: \(variants) rules' verbs removed one at a time, \(refusedNamingIt) refused by preflight naming the missing one, nothing changed")
        #expect(refusedNamingIt == variants)

        // With exactly the file, the whole maintenance.
        if let finish {
            try await finish(repave)
        } else {
            let run = try await repave(["run", plan, "--yes", "--state-dir", world.scratch.file("runs")])
            #expect(run.status == 0, "\(run.standardError)")
        }
        return variants
    }
}
