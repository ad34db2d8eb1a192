import CFuzzDriver
import Foundation
import KubeAPI

// One line of a watch stream → WatchEvent or KubeAPIError. Beyond "no crash": an object from an
// event survives the round trip that saved manifests make (decode, encode, decode), since
// Repave re-creates objects from that raw tree.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWatchLine(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let line = Data(bytes: start, count: count)
    let event: WatchEvent
    do {
        event = try KubeClient.decodeWatchLine(line, verb: "WATCH", path: "/api/v1/namespaces/devpod/persistentvolumeclaims")
    } catch let error as KubeAPIError {
        _ = error.description
        _ = error.isRetriable
        return 0
    } catch {
        fatalError("decodeWatchLine threw something other than KubeAPIError: \(error)")
    }
    switch event {
    case .added(let object), .modified(let object), .deleted(let object):
        let encoded = object.encoded()
        guard let again = try? JSON.decode(encoded) else {
            fatalError("an event's object does not decode after encoding: \(String(decoding: encoded, as: UTF8.self))")
        }
        guard sameValues(again, object) else {
            fatalError("an event's object changes in a round trip: \(String(decoding: encoded, as: UTF8.self))")
        }
    case .bookmark:
        break
    }
    return 0
}

/// `after` (the object decoded again) holds what `before` held. Integers must stay exactly the
/// same integers; a double may come back as an integer with the same float64 value: JSON has one
/// number type, `1.234567890134568e+18` reads back as the integer 1234567890134568000, and the
/// API server (float64 for non-integer fields) sees the same number. Found by this target twice
/// (fuzz/corpus/watch-line/finding-integral-double*.json).
func sameValues(_ after: JSON, _ before: JSON) -> Bool {
    switch (after, before) {
    case (.integer(let x), .double(let y)): Double(x) == y
    case (.array(let x), .array(let y)): x.count == y.count && zip(x, y).allSatisfy(sameValues)
    case (.object(let x), .object(let y)): x.count == y.count && x.allSatisfy { key, value in y[key].map { sameValues(value, $0) } ?? false }
    default: after == before
    }
}

exit(repave_fuzz_main(CommandLine.argc, CommandLine.unsafeArgv))
