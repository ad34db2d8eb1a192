import Foundation
import Testing

@testable import KubeAPI

/// `JSON.decode` parses with ``JSONParser``; `JSONDecoder` into ``JSON`` is the reference it must
/// agree with, on what it accepts and what it builds.
@Suite("JSON parser")
struct JSONParserTests {
    func reference(_ text: String) -> JSON? { try? JSONDecoder().decode(JSON.self, from: Data(text.utf8)) }
    func parsed(_ text: String) -> JSON? { try? JSONParser.parse(Data(text.utf8)) }

    static let accepted = [
        #"{}"#, #"[]"#, #"null"#, #"true"#, #"false"#, #"0"#, #"-0"#, #"12"#, #"-7"#, #"1.5"#, #"1.0"#, #"1e3"#, #"2E-2"#, #"-1.25e+2"#,
        #"9223372036854775807"#, #"-9223372036854775808"#, #"9223372036854775808"#, #"1e300"#, #"0.1"#, #"123456789.125"#,
        #"12345678901345678901224337e-7"#, #"1.20e1"#, #"100e-2"#, #"0.0"#, #"-0.0e5"#, #"9.223372036854775808e18"#,
        #"123456789012345678.901234567890"#, #"1e18"#, #"1e19"#, #"-1e18"#, #"5e-1"#, #"18446744073709551615"#,
        #""""#, #""plain""#, #""esc \" \\ \/ \b \f \n \r \t""#, #""\u00e9\u4e2d""#, #""\ud83d\ude00 smile""#, #""naïve 日本""#,
        #"  { "a" : [ 1 , 2 , { "b" : null } ] , "c" : "d" }  "#, "\t[\n1\r\n]\n",
        #"[[[[[[[[[[]]]]]]]]]]"#,
        #"{"metadata":{"name":"x","resourceVersion":"42","generation":3},"spec":{"replicas":1,"ratio":0.5,"on":true,"off":false,"none":null}}"#,
    ]

    @Test("what both accept, both build the same tree", arguments: accepted)
    func agreesOnValid(_ text: String) throws {
        let expected = try #require(reference(text), "the reference refuses \(text)")
        #expect(parsed(text) == expected)
    }

    static let refused = [
        "", " ", "{", "01", "1.", ".5", "+1", "1e", "-", "NaN", "Infinity", "tru", "nul", #""unterminated"#,
        "\"tab\there\"", #""\x""#, #""\u12""#, #""\ud800""#, #""\udc00 low""#, #"{"a" 1}"#, #"{1:2}"#, "[1 2]", "1 2", "{} x", "1e400",
    ]

    @Test("what the reference refuses, the parser refuses", arguments: refused)
    func refusesInvalid(_ text: String) {
        #expect(reference(text) == nil, "the reference accepts \(text.debugDescription)")
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(Data(text.utf8)) }
    }

    /// Where the two differ, on purpose: the parser is strict RFC 8259 (`JSONDecoder` tolerates a
    /// trailing comma), a repeated key keeps its last value, as Go's decoder (the API server's)
    /// does (`JSONDecoder` keeps the first), and a whole number at Int64's edge written with an
    /// exponent stays exact.
    @Test("stricter than the reference on trailing commas; a repeated key keeps its last value, as Kubernetes reads it")
    func differences() throws {
        for text in ["[1,]", #"{"a":1,}"#] {
            #expect(reference(text) != nil)
            #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(Data(text.utf8)) }
        }
        #expect(parsed(#"{"uid":"first","uid":"second"}"#) == ["uid": "second"])
        // Int64.max written with an exponent: exactly, where the reference gives the nearest double.
        #expect(parsed("9.223372036854775807e18") == .integer(.max))
        // An exponent of Int.min once trapped (abs() overflows): a fuzz finding. Zero, not a crash;
        // an exponent past Double's range is refused.
        #expect(parsed("1e-9223372036854775808") == .double(0))
        #expect(parsed("[-1e-9223372036854775808]") != nil)
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(Data("1e9223372036854775807".utf8)) }
    }

    @Test("invalid UTF-8 in a string, and nesting past 512 levels, are refused with where")
    func limits() {
        let invalid = Data([0x22, 0x61, 0xFF, 0x62, 0x22])   // "a\xFFb"
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(invalid) }
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        let error = #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(Data(deep.utf8)) }
        #expect(error?.offset == JSONParser.maxDepth)
        let ok = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        #expect(throws: Never.self) { try JSONParser.parse(Data(ok.utf8)) }
    }

    /// A seeded random tree, written by `JSONEncoder`, parsed by both.
    @Test("random documents: the same tree as the reference (500 seeded documents)")
    func randomDocuments() throws {
        var generator = SplitMix64(seed: 20261207)
        for round in 0..<500 {
            let tree = Self.randomTree(depth: 0, &generator)
            let text = String(decoding: tree.encoded(), as: UTF8.self)
            let expected = try #require(reference(text))
            #expect(parsed(text) == expected, "round \(round): \(text)")
        }
    }

    static func randomTree(depth: Int, _ generator: inout SplitMix64) -> JSON {
        let pick = depth > 4 ? Int.random(in: 0..<5, using: &generator) : Int.random(in: 0..<7, using: &generator)
        switch pick {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &generator))
        case 2: return .integer(Int64.random(in: Int64.min...Int64.max, using: &generator) >> Int64.random(in: 0...62, using: &generator))
        case 3: return .double(Double.random(in: -1e6...1e6, using: &generator))
        case 4:
            let alphabet = Array("az AZ09\"\\/\n\t\u{1}é中😀")
            return .string(String((0..<Int.random(in: 0...12, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }))
        case 5: return .array((0..<Int.random(in: 0...4, using: &generator)).map { _ in randomTree(depth: depth + 1, &generator) })
        default:
            var members: [String: JSON] = [:]
            for index in 0..<Int.random(in: 0...4, using: &generator) { members["k\(index)\(depth)"] = randomTree(depth: depth + 1, &generator) }
            return .object(members)
        }
    }
}
