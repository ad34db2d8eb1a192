import Foundation
import KubeAPI
import RepaveTestSupport
import Testing

extension LeastPrivilegeTests {
    /// deploy/rbac.yaml's ClusterRole `repave-audit`, as an operator applies it, renamed `name`.
    static func auditRole(named name: String) throws -> String {
        let documents = try String(contentsOfFile: rbacFile, encoding: .utf8).components(separatedBy: "\n---\n")
        let role = try #require(documents.first { $0.contains("\n  name: repave-audit\n") }, "deploy/rbac.yaml has no ClusterRole repave-audit")
        return role.replacingOccurrences(of: "\n  name: repave-audit\n", with: "\n  name: \(name)\n")
    }

    @Test("bound alone, the ClusterRole repave-audit (reads only) lets audit -A and --write-plans through; without any one of its verbs, the audit refuses naming it")
    func exactlyEnoughForAudit() async throws {
        let id = suffix()
        let name = "repave-audit-\(id)", user = "repave-lp-audit-\(id)", className = "longhorn-1r-lp-\(id)"
        let scratch = try ScratchDirectory()
        try await client.create(.storageClasses, LabFixtures.storageClass(className, replicas: 1))
        do {
            try await withTestNamespace(client, prefix: "audit-lp") { namespace in
                try await exerciseAudit(namespace: namespace, role: name, user: user, className: className, scratch: scratch)
            }
        } catch {
            await removeAuditRBAC(name, className: className)
            throw error
        }
        await removeAuditRBAC(name, className: className)
    }

    func removeAuditRBAC(_ name: String, className: String) async {
        for arguments in [["clusterrole", name], ["clusterrolebinding", name], ["storageclass", className]] {
            _ = try? await runProcess("kubectl", ["delete"] + arguments + ["--ignore-not-found", "--kubeconfig", lab.adminKubeconfig])
        }
    }

    func exerciseAudit(namespace: String, role name: String, user: String, className: String, scratch: ScratchDirectory) async throws {
        // One finding with a workload: a 1-replica volume mounted by a Deployment's pod.
        try await client.create(.persistentVolumeClaims, in: namespace, LabFixtures.claim("data", storageClass: className))
        try await client.create(.deployments, in: namespace, LabFixtures.deployment("app", claim: "data"))
        try await client.waitAvailable("app", in: namespace, describedAs: "app available")
        let yaml = try Self.auditRole(named: name)
        let applied = try await kubectl(["apply"], input: yaml, scratch: scratch)
        #expect(applied.status == 0, "\(applied.standardError)")
        let bound = try await kubectl(["create", "clusterrolebinding", name, "--clusterrole=\(name)", "--user=\(user)"], scratch: scratch)
        #expect(bound.status == 0, "\(bound.standardError)")
        let kubeconfig = scratch.file("as-user.kubeconfig")
        try String(contentsOfFile: lab.adminKubeconfig, encoding: .utf8)
            .replacingOccurrences(of: "  user:\n", with: "  user:\n    as: \(user)\n")
            .write(toFile: kubeconfig, atomically: true, encoding: .utf8)
        func audit(_ arguments: [String]) async throws -> ProcessResult {
            try await runProcess(try repaveBinary(), ["audit"] + arguments + ["--kubeconfig", kubeconfig])
        }
        var attempt = 0
        func writingPlans() async throws -> ProcessResult {
            attempt += 1
            return try await audit(["-n", namespace, "--write-plans", scratch.file("plans-\(attempt)"), "--strategy", "recreate", "--storage-class", "longhorn-3r"])
        }

        let full = try await writingPlans()
        #expect(full.status == 2 && full.standardOutput.contains("FINDING \(namespace)/data"), "\(full.standardOutput)\(full.standardError)")
        let plan = try String(contentsOfFile: scratch.file("plans-1/\(namespace)-data.yaml"), encoding: .utf8)
        #expect(plan.contains("- {kind: Deployment, name: \"app\"}"), "\(plan)")
        let everywhere = try await audit(["-A", "-o", "json"])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(everywhere.standardOutput.utf8)) as? [String: Any], "\(everywhere.standardOutput)")
        #expect(report["allNamespaces"] as? Bool == true && (report["unreadableNamespaces"] as? [Any])?.isEmpty == true && (report["notAssessed"] as? [Any])?.isEmpty == true)
        #expect((report["findings"] as? [[String: Any]])?.contains { $0["namespace"] as? String == namespace } == true)

        // Reads only: the role grants get and list, nothing else.
        let rules = try await client.get(Self.clusterRoles, named: name)["rules"]?.arrayValue ?? []
        let verbs = Set(rules.flatMap { $0["verbs"]?.arrayValue?.compactMap(\.stringValue) ?? [] })
        #expect(verbs.isSubset(of: ["get", "list"]) && rules.count == 8, "\(verbs) in \(rules.count) rules")

        let asUser = try KubeClient(connection: try KubeconfigLoader(explicitPath: kubeconfig).load(), userAgent: "repave-test/least-privilege")
        let role = RoleObject(kind: "clusterrole", name: name, namespace: nil)
        var variants = 0, refusedNamingIt = 0
        for (index, rule) in rules.enumerated() {
            let group = rule["apiGroups"]?.arrayValue?.first?.stringValue ?? ""
            let resource = rule["resources"]?.arrayValue?.first?.stringValue ?? ""
            let resourceName = rule["resourceNames"]?.arrayValue?.first?.stringValue
            let qualified = group.isEmpty ? resource : "\(resource).\(group)"
            let namespaced = !["persistentvolumes", "storageclasses"].contains(resource)
            let type = ResourceType(group: group, version: "v1", plural: resource, kind: "", namespaced: namespaced)
            for verb in rule["verbs"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
                variants += 1
                var reduced = rules
                reduced.remove(at: index)
                try await setRules(role, reduced)
                let scope = namespaced ? (group == "longhorn.io" ? "longhorn-system" : namespace) : nil
                let question = KubeClient.AccessQuestion(verb, type, namespace: scope, name: resourceName)
                try await poll(attempts: 100, every: .milliseconds(50)) { !(try await asUser.accessReview(question).allowed) }
                let refused = try await writingPlans()
                let named = refused.standardError.contains("missing 1 permissions") && refused.standardError.contains("\(verb) \(qualified)")
                if refused.status == 2 && named { refusedNamingIt += 1 } else {
                    Issue.record("without \(verb) \(qualified): exit \(refused.status): \(refused.standardError)")
                }
                try await setRules(role, rules)
                try await poll(attempts: 100, every: .milliseconds(50)) { try await asUser.accessReview(question).allowed }
            }
        }
        print("least privilege (audit): \(variants) verbs removed one at a time, \(refusedNamingIt) refused naming the missing one")
        #expect(variants == 8 && refusedNamingIt == variants)
    }
}
