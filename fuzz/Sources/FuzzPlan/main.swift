import CFuzzDriver
import Foundation
import RepaveCore

// Plan YAML → RecreatePlan. Properties beyond "no crash, no hang, bounded memory":
// - an error names the file first (it is one line: file:line:column: key: problem);
// - an accepted plan survives the canonical-JSON round trip that `run` saves and `resume`
//   reads back (plan.json), with the same digest, or a resumed run would refuse its own plan.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPlan(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let data = Data(bytes: start, count: count)
    let plan: RecreatePlan
    do {
        plan = try RecreatePlan.parse(data, file: "fuzz.yaml")
    } catch {
        guard error.message.hasPrefix("fuzz.yaml") else { fatalError("an error that does not name the file: \(error.message)") }
        return 0
    }
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .iso8601
    let saved = plan.canonicalJSON()
    let reread: RecreatePlan
    do {
        reread = try decoder.decode(RecreatePlan.self, from: saved)
    } catch {
        fatalError("an accepted plan's plan.json cannot be read back: \(error)\n\(String(decoding: saved, as: UTF8.self))")
    }
    guard reread == plan, reread.digest == plan.digest else {
        fatalError("plan.json reads back as a different plan:\n\(String(decoding: saved, as: UTF8.self))\n\(String(decoding: reread.canonicalJSON(), as: UTF8.self))")
    }
    return 0
}

exit(repave_fuzz_main(CommandLine.argc, CommandLine.unsafeArgv))
