import CFuzzDriver
import Curl
import Foundation
import KubeAPI

// A failed response → KubeAPIError. The input is: two bytes of HTTP status (modulo 600), a
// Retry-After value up to the first newline, then the body.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStatus(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    guard bytes.count >= 2 else { return 0 }
    let status = (Int(bytes[0]) << 8 | Int(bytes[1])) % 600
    let rest = bytes[2...]
    let newline = rest.firstIndex(of: UInt8(ascii: "\n")) ?? rest.endIndex
    let retryAfter = String(decoding: rest[..<newline], as: UTF8.self)
    let body = Data(rest[min(newline + 1, rest.endIndex)...])
    let response = HTTPResponse(status: status, headers: retryAfter.isEmpty ? [:] : ["retry-after": [retryAfter]], body: body,
                                newConnections: 0, httpVersion: "2")
    let error = KubeAPIError(response: response, verb: "PATCH", path: "/apis/apps/v1/namespaces/devpod/deployments/ws/scale")
    guard error.httpStatus == status, !error.message.isEmpty else { fatalError("a Status error lost its HTTP status or message: \(error)") }
    if let wait = error.retryAfter, wait < .zero { fatalError("a negative Retry-After: \(retryAfter)") }
    _ = error.description
    _ = error.isRetriable
    return 0
}

exit(repave_fuzz_main(CommandLine.argc, CommandLine.unsafeArgv))
