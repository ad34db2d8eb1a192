import CFuzzDriver
import Foundation
import KubeAPI

// An exec credential plugin's standard output → token and expiry. Beyond "no crash, no hang":
// a token is returned only when the output holds a non-empty status.token, and an error does not
// depend on the token's value, so it cannot quote it (a plugin that half-works must not leak its
// credential in the error).
let exec: ExecConfig = {
    let config = try! Kubeconfig.parse("""
        apiVersion: v1
        kind: Config
        clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
        users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: get-token, interactiveMode: Never}}}]
        contexts: [{name: x, context: {cluster: c, user: u}}]
        current-context: x
        """, file: "/fuzz/kubeconfig")
    return config.users["u"]!.exec!
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzExecCredential(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Data(UnsafeRawBufferPointer(start: start, count: count))
    let output = String(decoding: bytes, as: UTF8.self)
    let parsed = try? JSON.decode(Data(output.utf8))
    let tokenInOutput = parsed?[path: "status", "token"]?.stringValue
    do {
        let (token, _) = try exec.decodeCredential(output)
        guard !token.isEmpty, token == tokenInOutput else { fatalError("a token that is not the output's status.token") }
    } catch let error as KubeconfigError {
        // The same output with another token of the same length must fail with the same words.
        // (A token that is also the apiVersion is the one case where the words may differ: the
        // version is then never quoted, see decodeCredential.)
        if var object = parsed, var status = object["status"], let secret = tokenInOutput, !secret.isEmpty,
           secret != parsed?["apiVersion"]?.stringValue {
            status["token"] = .string(String(repeating: secret.first == "x" ? "y" : "x", count: secret.count))
            object["status"] = status
            do {
                _ = try exec.decodeCredential(String(decoding: object.encoded(), as: UTF8.self))
                fatalError("another token of the same length was accepted where this one was refused")
            } catch let other as KubeconfigError {
                guard other.description == error.description else { fatalError("an error depends on the plugin's token") }
            } catch {
                fatalError("an error that is not a KubeconfigError: \(type(of: error))")
            }
        }
    } catch {
        fatalError("an error that is not a KubeconfigError: \(type(of: error))")
    }
    return 0
}

exit(repave_fuzz_main(CommandLine.argc, CommandLine.unsafeArgv))
