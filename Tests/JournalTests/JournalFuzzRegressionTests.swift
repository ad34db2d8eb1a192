import Foundation
import RepaveTestSupport
import Testing

@testable import Journal

/// Journals the journal fuzzer (fuzz/Sources/FuzzJournal) found the reader accepting although
/// jq or a second reader would read them differently, and the bound on journal files.
@Suite("journal: fuzz findings and input bounds", .blockingCallsAllowed)
struct JournalFuzzRegressionTests {
    static let header = #"{"v":1,"seq":1,"prev":"00000000","run":"r","t":"2026-11-28T02:00:00Z","kind":"header","step":null,"crit":true,"data":{"plan":"p"}}"#

    /// A line framed as the writer frames it, with the real length and CRC-32C of `body`.
    func line(_ body: [UInt8]) -> [UInt8] {
        Array(#"{"c":"\#(CRC32C.hex(body))","n":\#(body.count),"r":"#.utf8) + body + Array("}\n".utf8)
    }

    func second(_ rest: String) -> [UInt8] {
        Array(#"{"v":1,"seq":2,"prev":"\#(CRC32C.hex(Array(Self.header.utf8)))","run":"r","t":"2026-11-28T02:00:00Z","kind":"intent","step":"S3","crit":true,"#.utf8)
            + Array(rest.utf8)
    }

    /// The record after the header is refused: as the last line it is a torn tail; followed by a
    /// valid line it is corruption.
    func expectRefused(_ body: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let head = line(Array(Self.header.utf8))
        let scan = try Journal.scan(Data(head + line(body)), path: "j")
        #expect(scan.records.count == 1, sourceLocation: sourceLocation)
        #expect(scan.validBytes == head.count, sourceLocation: sourceLocation)
        let writer = Array(#"{"v":1,"seq":2,"prev":"\#(CRC32C.hex(Array(Self.header.utf8)))","run":"r","t":"2026-11-28T02:00:00Z","kind":"note","step":null,"crit":false,"data":{}}"#.utf8)
        #expect(throws: JournalError.self, sourceLocation: sourceLocation) { try Journal.scan(Data(head + line(body) + line(writer)), path: "j") }
    }

    @Test("a record that is not UTF-8 is refused, though Foundation's JSONDecoder reads it (fuzz/corpus/journal/finding-invalid-utf8.txt)")
    func invalidUTF8() throws {
        try expectRefused(second(#""data":{"op":"PATC"#) + [0xFF, 0xFF] + Array(#"H"}}"#.utf8))
    }

    @Test("duplicate or reordered keys and a second data are refused: jq would read them otherwise (fuzz/corpus/journal/finding-duplicate-keys.txt)")
    func notAsWritten() throws {
        try expectRefused(second(#""data":"resume","step":null,"crit":true,"data":[1,2,{"a":null}]}"#))
        try expectRefused(second(#""data":{},"extra":1}"#))
        try expectRefused(Array(#"{"seq":2,"v":1,"prev":"x","run":"r","t":"t","kind":"k","step":null,"crit":true,"data":{}}"#.utf8))
        try expectRefused(second(#" "data":{}}"#))
        // As the writer writes it, the same record is accepted, payload intact.
        let accepted = try Journal.scan(Data(line(Array(Self.header.utf8)) + line(second(#""data":{"op":"PATCH","data":[1]}}"#))), path: "j")
        #expect(accepted.records.count == 2)
        #expect(String(decoding: accepted.records[1].data, as: UTF8.self) == #"{"op":"PATCH","data":[1]}"#)
    }

    @Test("a newer format version is still refused by its version, whatever its layout")
    func newerVersion() {
        let body = Array(#"{"seq":1,"v":2,"prev":"00000000","run":"r","t":"t","kind":"header","crit":true,"layout":"new"}"#.utf8)
        #expect(throws: JournalError.unsupportedVersion(path: "j", version: 2)) { try Journal.scan(Data(line(body)), path: "j") }
    }

    @Test("a 100 MB journal is refused from its size, unread, by read and open alike")
    func hugeJournal() throws {
        let scratch = try ScratchDirectory()
        let directory = scratch.file("run")
        _ = try Journal.create(directory: directory, run: "r", header: ["plan": "p"])
        let path = directory + "/" + Journal.fileName
        #expect(truncate(path, 100 << 20) == 0)
        let time = elapsed {
            #expect(throws: JournalError.tooLarge(path: path, bytes: 100 << 20, limit: 64 << 20)) { try Journal.read(directory: directory) }
            #expect(throws: JournalError.tooLarge(path: path, bytes: 100 << 20, limit: 64 << 20)) { try Journal.open(directory: directory) }
        }
        #expect(time < .milliseconds(200), "refused by its size, before reading it")
        #expect(JournalError.tooLarge(path: path, bytes: 100 << 20, limit: 64 << 20).description
            == "journal \(path) is 104857600 bytes; a journal is at most 67108864 bytes (64 MiB)")
    }
}
