import Foundation
import RepaveTestSupport
import Testing

@testable import RepaveCore

/// Inputs the plan fuzzer (fuzz/Sources/FuzzPlan) found or is seeded with, and the bounds on plan
/// files: every one fails fast, in one line naming the file.
@Suite("plan files: fuzz findings and input bounds")
struct PlanFuzzRegressionTests {
    func seed(_ name: String) throws -> Data {
        try fuzzSeed("plan/" + name)
    }

    @Test("an alias used as a mapping key is refused before Yams hashes its expansion (it hung the composer)")
    func aliasKeyBomb() throws {
        let data = try seed("alias-key-bomb.yaml")
        var error: PlanError?
        let time = elapsed { error = #expect(throws: PlanError.self) { try RecreatePlan.parse(data, file: "bomb.yaml") } }
        #expect(time < .milliseconds(100))
        #expect(error?.message == "bomb.yaml:8:30: more than 32 YAML aliases (a '*' after a space, bracket, comma or colon may start one)")
    }

    @Test("billion-laughs plans fail at their first unexpected node, in well under a second",
          arguments: ["billion-laughs.yaml", "billion-laughs-in-values.yaml"])
    func billionLaughs(_ name: String) throws {
        let data = try seed(name)
        let time = elapsed { #expect(throws: PlanError.self) { try RecreatePlan.parse(data, file: name) } }
        #expect(time < .milliseconds(100))
    }

    @Test("a few aliases and '*' inside scalars are not counted against the limit")
    func aliasesWithinTheLimit() throws {
        let globs = (1...40).map { "\"src\($0)/**\", a*b" }.joined(separator: ", ")
        let text = PlanTests.minimal.replacingOccurrences(of: "timeouts:", with: "gitPreflight: {paths: [/home], ignore: [\(globs)]}\ntimeouts:")
        let plan = try RecreatePlan.parse(Data(text.utf8), file: "p.yaml")
        #expect(plan.gitPreflight?.ignore.count == 80)
        let aliased = PlanTests.minimal.replacingOccurrences(of: "  claim: home", with: "  claim: &c home\nmetadata2: *c")
        #expect(throws: PlanError.self) { try RecreatePlan.parse(Data(aliased.utf8), file: "p.yaml") }
    }

    @Test("a megabyte-long unknown word is refused at once (the did-you-mean hint skips hopeless candidates)")
    func longUnknownWord() {
        let text = PlanTests.minimal + "\nacknowledge: [" + String(repeating: "k", count: 1_000_000) + "]\n"
        var error: PlanError?
        let time = elapsed { error = #expect(throws: PlanError.self) { try RecreatePlan.parse(Data(text.utf8), file: "p.yaml") } }
        #expect(time < .seconds(1))
        #expect(error?.problem.hasPrefix("unknown reconciler 'kkk") == true)
        #expect(error?.problem.contains("did you mean") == false)
        #expect(nearest("timeout", in: ["timeouts", "window"]) == "timeouts")
        #expect(nearest("x", in: ["timeouts"]) == nil)
    }

    @Test("a 245-character ignore glob parses and matches (its regex leaks in Foundation, fuzz/lsan.supp; fuzz/corpus/plan/finding-long-glob.yaml)")
    func longGlob() throws {
        let plan = try RecreatePlan.parse(try seed("finding-long-glob.yaml"), file: "p.yaml")
        let glob = try #require(plan.gitPreflight?.ignore.first)
        #expect(glob.count == 245)
        #expect(try GlobSet([glob]).matches(relative: "src/" + glob))
        #expect(try !GlobSet([glob]).matches(relative: "src/" + glob + "b"))
    }

    @Test("a 100 MB plan is refused from its size, unread: one line naming the file and the limit")
    func hugeFile() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.file("huge.yaml")
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        #expect(truncate(path, 100 << 20) == 0)
        var error: PlanError?
        let time = elapsed { error = #expect(throws: PlanError.self) { try RecreatePlan.load(contentsOf: path) } }
        #expect(time < .milliseconds(100))
        #expect(error?.message == "\(path): the file is 104857600 bytes; a plan is at most 1048576 bytes (1 MiB)")
        #expect(error?.hint == "check that this is a plan file")
    }

    @Test("a device or pipe is read no further than the limit")
    func endlessFile() {
        let error = #expect(throws: PlanError.self) { try RecreatePlan.load(contentsOf: "/dev/zero") }
        #expect(error?.message == "/dev/zero: the file is over 1048576 bytes; a plan is at most 1048576 bytes (1 MiB)")
        let directory = #expect(throws: PlanError.self) { try RecreatePlan.load(contentsOf: "/tmp") }
        #expect(directory?.message == "/tmp: cannot read the file: is a directory")
    }
}
