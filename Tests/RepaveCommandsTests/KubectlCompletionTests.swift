import Testing
@testable import RepaveCommands

/// `kubectl repave <TAB>`: Cobra's `__complete` answers from the real command tree. The installed
/// link and kubectl itself are exercised by scripts/test-install.
@Suite("kubectl_complete-repave")
struct KubectlCompletionTests {
    func candidates(_ words: [String]) -> (names: [String], directive: Int) {
        let (lines, directive) = KubectlCompletion.complete(words, in: KubectlCompletion.tree)
        return (lines.map { String($0.split(separator: "\t").first ?? "") }, directive.rawValue)
    }

    @Test("a new word offers every subcommand, with its abstract, and no files")
    func subcommands() {
        let (names, directive) = candidates([""])
        #expect(names == ["plan", "run", "resume", "abort", "rollback", "finalize", "status", "runbook", "journal", "config", "git-check", "audit", "help"])
        #expect(directive == 4)
        let answer = KubectlCompletion.answer(["ru"])
        #expect(answer.hasPrefix("run\tRun the plan: preflight"))
        #expect(answer.hasSuffix("\n:4\n"))
    }

    @Test("a prefix narrows the subcommands: ru offers run and runbook")
    func prefix() {
        #expect(candidates(["ru"]).names == ["run", "runbook"])
    }

    @Test("flags are the subcommand's own, after the words already typed")
    func flags() {
        let (names, directive) = candidates(["--kubeconfig", "k.yaml", "plan", "--of"])
        #expect(names == ["--offline"])
        #expect(directive == 4)
        #expect(candidates(["journal", "show", "--"]).names.contains("--kubeconfig"))
    }

    @Test("an option's value: its cases when it has them, the shell's files when not")
    func optionValues() {
        #expect(candidates(["plan", "-o", ""]).names == ["text", "json"])
        #expect(candidates(["plan", "--output=j"]).names == ["--output=json"])
        #expect(candidates(["plan", "--kubeconfig", ""]) == ([], 0))
    }

    @Test("a positional argument (the plan file) is left to the shell")
    func positional() {
        #expect(candidates(["plan", ""]) == ([], 0))
        #expect(candidates(["plan", "p.yaml", ""]) == ([], 0))
    }

    @Test("only kubectl_complete-repave or a leading __complete start completion")
    func invocation() {
        #expect(KubectlCompletion.words(invokedAs: "/usr/bin/kubectl_complete-repave", arguments: ["ru"]) == ["ru"])
        #expect(KubectlCompletion.words(invokedAs: "repave", arguments: ["__complete", "plan", ""]) == ["plan", ""])
        #expect(KubectlCompletion.words(invokedAs: "/usr/bin/kubectl-repave", arguments: ["plan"]) == nil)
        #expect(KubectlCompletion.words(invokedAs: "repave", arguments: ["plan", "__complete"]) == nil)
    }
}
