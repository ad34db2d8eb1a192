import Curl
import Foundation
import Git
import RepaveCore
import Testing

@testable import RepaveCommands

@Suite("error renderer")
struct ErrorRendererTests {
    let conflict = RepaveError(
        .kube("Conflict", unavailable: false), "failed to delete persistentvolumeclaim 'devpod/home'",
        causes: ["conflict: the object has been modified", "precondition failed: uid 1234 != 5678"],
        hint: "run 'repave resume devpod-home-20261128T020000Z'; the step re-reads the claim first",
        exitStatus: .stoppedMidRun)

    @Test("text: error with its code, each cause, then the hint")
    func text() {
        #expect(ErrorRenderer.text(conflict) == """
            error[kube.conflict]: failed to delete persistentvolumeclaim 'devpod/home'
            caused by: conflict: the object has been modified
            caused by: precondition failed: uid 1234 != 5678
            hint: run 'repave resume devpod-home-20261128T020000Z'; the step re-reads the claim first

            """)
    }

    @Test("text: a line break or a terminal escape from the input or the server stays on its line, escaped")
    func controlCharacters() {
        let hostile = RepaveError(.planInvalid, "unknown key 'a\nerror: all good'", causes: ["Status: \u{1B}[2Jcleared\r"], exitStatus: .refused)
        #expect(ErrorRenderer.text(hostile) == "error[plan.invalid]: unknown key 'a\\nerror: all good'\ncaused by: Status: \\u{1b}[2Jcleared\\r\n")
    }

    @Test("json: one envelope with the same fields and the exit status")
    func json() throws {
        let data = Data(ErrorRenderer.json(conflict).utf8)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let error = try #require(object["error"] as? [String: Any])
        #expect(error["code"] as? String == "kube.conflict")
        #expect(error["message"] as? String == conflict.message)
        #expect(error["causes"] as? [String] == conflict.causes)
        #expect(error["hint"] as? String == conflict.hint)
        #expect(error["exitStatus"] as? Int == 3)
        #expect(ErrorRenderer.json(conflict).hasSuffix("}\n"))
    }

    @Test("transport failures mean the cluster is unavailable (exit 5) and say what to check")
    func curlErrors() {
        let failure = ErrorRenderer.userFacing(CurlError(code: 60, message: "SSL certificate problem: self-signed certificate in certificate chain", operation: "GET https://10.0.0.1:6443/version"))
        #expect(failure.exitStatus == .clusterUnavailable)
        #expect(failure.message == "failed to GET https://10.0.0.1:6443/version")
        #expect(failure.causes == ["curl error 60: SSL certificate problem: self-signed certificate in certificate chain"])
        #expect(failure.hint?.contains("certificate-authority") == true)
    }

    @Test("an unexpected error is an internal bug (exit 1) with a request to report it")
    func unexpected() {
        struct Surprise: Error {}
        let failure = ErrorRenderer.userFacing(Surprise())
        #expect(failure.exitStatus == .internalError)
        #expect(failure.message.hasPrefix("internal error: "))
        #expect(failure.hint?.contains("report") == true)
    }

    @Test("exit statuses are DESIGN.md's")
    func exitStatuses() {
        #expect(ExitStatus.allCases.map(\.rawValue) == [0, 1, 2, 3, 4, 5, 64, 130, 143])
    }

    @Test("-o json is recognised in every spelling before parsing")
    func jsonFlag() {
        #expect(RepaveMain.wantsJSON(["-o", "json"]))
        #expect(RepaveMain.wantsJSON(["--output", "json", "plan"]))
        #expect(RepaveMain.wantsJSON(["-ojson"]))
        #expect(RepaveMain.wantsJSON(["--output=json"]))
        #expect(!RepaveMain.wantsJSON(["-o", "text"]))
        #expect(!RepaveMain.wantsJSON(["--", "-o", "json"]))
    }

    @Test("the error-code catalog: every code once, each declared code in it, each listed in docs/journal-and-engine.md with its exit status")
    func catalog() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let names = ErrorCode.all.map(\.name)
        #expect(Set(names).count == names.count)
        let source = try String(contentsOfFile: root + "/Sources/RepaveCore/ErrorCode.swift", encoding: .utf8)
        let declared = source.components(separatedBy: "= ErrorCode(\"").count - 1
        #expect(declared == names.count, "\(declared) codes declared, \(names.count) in ErrorCode.all")
        let doc = try String(contentsOfFile: root + "/docs/journal-and-engine.md", encoding: .utf8)
        for code in ErrorCode.all {
            let exit = code == .runInterrupted ? "130/143" : "\(code.exitStatus.rawValue)"
            #expect(doc.contains("| `\(code.name)` | \(exit) |"), "\(code.name) is not in the catalog of docs/journal-and-engine.md")
        }
    }
}
