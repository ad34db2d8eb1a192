import CFuzzDriver
import Foundation
import Journal

// Journal bytes → Journal.scan (what `open` and `read` run on the file's contents).
//
// Random bytes almost never carry a valid CRC, so an input that starts with "F" is a list of
// record bodies, one per line, that this harness frames with their real length and CRC-32C
// (writing the previous record's checksum wherever a body says "prev":"________"); a body that
// starts with "~" is appended raw, unframed, to make torn or damaged lines. Everything else is
// scanned as it is.
//
// Properties, checked against this file's own decoder (a differential check):
// - every accepted record's line is framed exactly: `{"c":"<crc>","n":<n>,"r":<n bytes>}\n`, the
//   CRC-32C of those bytes is `c`, and the lines end exactly at `validBytes`;
// - the fixed fields agree with Foundation's JSONSerialization reading the same bytes, and the
//   `data` payload is the JSON value of the "data" key;
// - sequences run 1, 2, 3…, each record chains to the checksum before it, the first is a header;
// - scanning only the valid prefix finds the same records, with nothing torn.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJournal(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var bytes = [UInt8](UnsafeRawBufferPointer(start: start, count: count))
    if bytes.first == UInt8(ascii: "F") { bytes = frame(bytes.dropFirst()) }
    let scan: Journal.Scan
    do {
        scan = try Journal.scan(Data(bytes), path: "fuzz/journal.jsonl")
    } catch {
        _ = error.description
        return 0
    }
    check(scan, bytes)
    return 0
}

func check(_ scan: Journal.Scan, _ bytes: [UInt8]) {
    guard scan.validBytes >= 0, scan.validBytes <= bytes.count else { fatalError("validBytes \(scan.validBytes) outside the input") }
    var offset = 0
    for (index, record) in scan.records.enumerated() {
        guard let (body, end) = line(bytes, at: offset) else { fatalError("record \(index + 1) accepted from a malformed line at \(offset)") }
        guard hex(crc32c(body)) == record.checksum else { fatalError("record \(index + 1) accepted with a wrong checksum") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed]) as? [String: Any] else {
            fatalError("record \(index + 1) accepted, but its body is not a JSON object")
        }
        guard object["v"] as? Int == record.version, object["seq"] as? Int == record.sequence,
              object["prev"] as? String == record.previous, object["run"] as? String == record.run,
              object["t"] as? String == record.time, object["kind"] as? String == record.kind,
              (object["step"] as? String) == record.step, object["crit"] as? Bool == record.critical
        else { fatalError("record \(index + 1)'s fields differ from JSONSerialization's reading: \(String(decoding: body, as: UTF8.self))") }
        guard let payload = object["data"],
              let ours = try? JSONSerialization.jsonObject(with: record.data, options: [.fragmentsAllowed]),
              canonical(ours) == canonical(payload)
        else { fatalError("record \(index + 1)'s data is not its \"data\" value: \(String(decoding: body, as: UTF8.self))") }
        guard record.sequence == index + 1, record.previous == (index == 0 ? "00000000" : scan.records[index - 1].checksum) else {
            fatalError("record \(index + 1) accepted out of sequence or off the chain")
        }
        if index == 0, record.kind != "header" { fatalError("a journal accepted without a header first") }
        offset = end
    }
    guard offset == scan.validBytes else { fatalError("the records end at \(offset), validBytes says \(scan.validBytes)") }
    guard let again = try? Journal.scan(Data(bytes[..<scan.validBytes]), path: "fuzz/journal.jsonl"),
          again.records == scan.records, again.validBytes == scan.validBytes
    else { fatalError("the valid prefix scans differently from the whole") }
}

func canonical(_ value: Any) -> Data? {
    try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])
}

/// `{"c":"<8 hex>","n":<digits>,"r":<n bytes>}\n` at `start`: the body and where the line ends.
func line(_ bytes: [UInt8], at start: Int) -> ([UInt8], Int)? {
    let text = bytes[start...]
    let head = Array(#"{"c":""#.utf8)
    guard text.starts(with: head) else { return nil }
    var index = start + head.count
    guard index + 8 <= bytes.count else { return nil }
    let checksum = bytes[index..<index + 8]
    index += 8
    let middle = Array(#"","n":"#.utf8)
    guard bytes[index...].starts(with: middle) else { return nil }
    index += middle.count
    var length = 0
    while index < bytes.count, let digit = Int(String(UnicodeScalar(bytes[index]))), bytes[index] < 128 {
        length = length * 10 + digit
        index += 1
        if length > 1 << 24 { return nil }
    }
    let tail = Array(#","r":"#.utf8)
    guard bytes[index...].starts(with: tail) else { return nil }
    index += tail.count
    guard index + length + 2 <= bytes.count else { return nil }
    let body = Array(bytes[index..<index + length])
    index += length
    guard bytes[index] == UInt8(ascii: "}"), bytes[index + 1] == UInt8(ascii: "\n") else { return nil }
    guard String(decoding: checksum, as: UTF8.self) == hex(crc32c(body)) else { return nil }
    return (body, index + 2)
}

/// The harness's framing mode (see the top of this file).
func frame(_ input: ArraySlice<UInt8>) -> [UInt8] {
    var output: [UInt8] = []
    var previous = "00000000"
    let placeholder = Array(#""prev":"________""#.utf8)
    for part in input.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
        if part.first == UInt8(ascii: "~") {
            output += part.dropFirst()
            continue
        }
        var body = Array(part)
        if let at = firstIndex(of: placeholder, in: body) {
            body.replaceSubrange(at..<at + placeholder.count, with: Array(#""prev":"\#(previous)""#.utf8))
        }
        let checksum = hex(crc32c(body))
        output += Array(#"{"c":"\#(checksum)","n":\#(body.count),"r":"#.utf8) + body + Array("}\n".utf8)
        previous = checksum
    }
    return output
}

func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
    guard haystack.count >= needle.count else { return nil }
    for start in 0...(haystack.count - needle.count) where haystack[start..<start + needle.count].elementsEqual(needle) { return start }
    return nil
}

/// CRC-32C written out bit by bit, independently of the journal's table-driven one.
func crc32c(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
    }
    return ~crc
}

func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 8 - digits.count) + digits
}

exit(repave_fuzz_main(CommandLine.argc, CommandLine.unsafeArgv))
