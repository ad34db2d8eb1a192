import CFuzzDriver
import Foundation
import KubeAPI

// Kubeconfig YAML → Kubeconfig. Beyond "no crash, no hang, bounded memory": an error names the
// file, and parsing reads no file the kubeconfig names (the paths are only resolved as text).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKubeconfig(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    do {
        let config = try Kubeconfig.parse(text, file: "/fuzz/kubeconfig")
        for path in config.clusters.values.compactMap(\.certificateAuthority) + config.users.values.flatMap({ [$0.clientCertificate, $0.clientKey, $0.tokenFile].compactMap { $0 } }) {
            guard path.hasPrefix("/") else { fatalError("a relative path left unresolved: \(path)") }
        }
    } catch {
        guard error.file == "/fuzz/kubeconfig", error.description.hasPrefix("/fuzz/kubeconfig") else {
            fatalError("an error that does not name the file: \(error.description)")
        }
    }
    return 0
}

exit(repave_fuzz_main(CommandLine.argc, CommandLine.unsafeArgv))
