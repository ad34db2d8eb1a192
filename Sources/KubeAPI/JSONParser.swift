import Foundation

/// Where and why a document is not JSON.
public struct JSONSyntaxError: Error, CustomStringConvertible, Sendable {
    /// The byte offset where parsing stopped.
    public let offset: Int
    public let problem: String

    public var description: String { "not JSON at byte \(offset): \(problem)" }
}

/// A strict RFC 8259 parser straight into ``JSON``, for everything the API server sends.
///
/// `JSONDecoder` into ``JSON`` (its `Decodable` conformance) finds each value's type by trying
/// them in turn, and every failed try builds and throws an error: a list of 1,000 pods took
/// seconds. This reads the bytes once. The tree is the one `JSONDecoder` builds (a test compares
/// them): integers that fit `Int64` stay integers (also when written 1.0 or 1e3), other numbers
/// are doubles. It is strict RFC 8259 where `JSONDecoder` is lenient: a trailing comma, invalid
/// UTF-8, a lone surrogate, a control character in a string, trailing data and more than 512
/// levels of nesting are errors. A repeated key keeps its last value, as Go's decoder (the API
/// server's) reads it; `JSONDecoder` keeps the first.
struct JSONParser {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private var depth = 0
    static let maxDepth = 512

    private init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    static func parse(_ data: Data) throws(JSONSyntaxError) -> JSON {
        let result: Result<JSON, JSONSyntaxError> = data.withUnsafeBytes { raw in
            var parser = JSONParser(raw.bindMemory(to: UInt8.self))
            do throws(JSONSyntaxError) {
                parser.skipSpace()
                let value = try parser.value()
                parser.skipSpace()
                guard parser.index == parser.bytes.count else { throw parser.fail("data after the value") }
                return .success(value)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private func fail(_ problem: String) -> JSONSyntaxError {
        JSONSyntaxError(offset: index, problem: problem)
    }

    private var atEnd: Bool { index >= bytes.count }

    private mutating func skipSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    private mutating func value() throws(JSONSyntaxError) -> JSON {
        guard !atEnd else { throw fail("unexpected end") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default: return try number()
        }
    }

    private mutating func literal(_ word: StaticString) throws(JSONSyntaxError) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw fail("unexpected end") }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { throw fail("unexpected character") }
        index += count
    }

    private mutating func nest() throws(JSONSyntaxError) {
        depth += 1
        guard depth <= Self.maxDepth else { throw fail("nested more than \(Self.maxDepth) levels") }
        index += 1
        skipSpace()
    }

    private mutating func object() throws(JSONSyntaxError) -> JSON {
        try nest()
        defer { depth -= 1 }
        var members: [String: JSON] = [:]
        if !atEnd, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            guard !atEnd, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a key") }
            let key = try string()
            skipSpace()
            guard !atEnd, bytes[index] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            index += 1
            skipSpace()
            members[key] = try value()
            skipSpace()
            guard !atEnd else { throw fail("unexpected end") }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1; skipSpace()
            case UInt8(ascii: "}"): index += 1; return .object(members)
            default: throw fail("expected ',' or '}'")
            }
        }
    }

    private mutating func array() throws(JSONSyntaxError) -> JSON {
        try nest()
        defer { depth -= 1 }
        var elements: [JSON] = []
        if !atEnd, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            elements.append(try value())
            skipSpace()
            guard !atEnd else { throw fail("unexpected end") }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1; skipSpace()
            case UInt8(ascii: "]"): index += 1; return .array(elements)
            default: throw fail("expected ',' or ']'")
            }
        }
    }

    private mutating func string() throws(JSONSyntaxError) -> String {
        index += 1   // the opening quote
        let start = index
        // Most strings hold no escape: one slice of the input.
        while !atEnd {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let text = try utf8(bytes[start..<index], at: start)
                index += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            guard byte >= 0x20 else { throw fail("a control character in a string") }
            index += 1
        }
        var unescaped = Array(bytes[start..<index])
        while !atEnd {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return try utf8(unescaped[...], at: start)
            }
            guard byte >= 0x20 else { throw fail("a control character in a string") }
            index += 1
            guard byte == UInt8(ascii: "\\") else {
                unescaped.append(byte)
                continue
            }
            guard !atEnd else { break }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): unescaped.append(escape)
            case UInt8(ascii: "b"): unescaped.append(0x08)
            case UInt8(ascii: "f"): unescaped.append(0x0C)
            case UInt8(ascii: "n"): unescaped.append(0x0A)
            case UInt8(ascii: "r"): unescaped.append(0x0D)
            case UInt8(ascii: "t"): unescaped.append(0x09)
            case UInt8(ascii: "u"):
                var code = try hex4()
                if (0xD800...0xDBFF).contains(code) {
                    guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                        throw fail("a lone surrogate")
                    }
                    index += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw fail("a lone surrogate") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(code) {
                    throw fail("a lone surrogate")
                }
                guard let scalar = Unicode.Scalar(code) else { throw fail("an invalid \\u escape") }
                unescaped.append(contentsOf: UTF8.encode(scalar)!)
            default:
                throw fail("an invalid escape")
            }
        }
        throw fail("an unterminated string")
    }

    private func utf8(_ slice: some Collection<UInt8>, at start: Int) throws(JSONSyntaxError) -> String {
        guard let text = String(validating: slice, as: UTF8.self) else { throw JSONSyntaxError(offset: start, problem: "invalid UTF-8 in a string") }
        return text
    }

    private mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw fail("unexpected end") }
        var code: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw fail("an invalid \\u escape")
            }
            code = code << 4 | digit
            index += 1
        }
        return code
    }

    private mutating func digits() throws(JSONSyntaxError) {
        guard !atEnd, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else { throw fail("a digit expected") }
        while !atEnd, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
    }

    private mutating func number() throws(JSONSyntaxError) -> JSON {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard !atEnd, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else { throw fail("unexpected character") }
        if bytes[index] == UInt8(ascii: "0") { index += 1 } else { try digits() }
        var integral = true
        if !atEnd, bytes[index] == UInt8(ascii: ".") {
            integral = false
            index += 1
            try digits()
        }
        if !atEnd, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            integral = false
            index += 1
            if !atEnd, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            try digits()
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        if integral, let value = Int64(text) { return .integer(value) }
        // As `JSONDecoder` does: a number whose decimal value is whole and fits (1.0, 1e3) is an
        // integer; judged on the text, not on the nearest double.
        if !integral, let value = Self.wholeNumber(text) { return .integer(value) }
        guard let value = Double(text), value.isFinite else { throw JSONSyntaxError(offset: start, problem: "a number out of range") }
        return .double(value)
    }

    /// The number's exact value when it is a whole number that fits `Int64` (`text` is valid).
    static func wholeNumber(_ text: String) -> Int64? {
        let negative = text.hasPrefix("-")
        let body = negative ? text.dropFirst() : text[...]
        let parts = body.split(maxSplits: 1, omittingEmptySubsequences: false, whereSeparator: { $0 == "e" || $0 == "E" })
        guard let exponent = parts.count == 2 ? Int(parts[1].hasPrefix("+") ? parts[1].dropFirst() : parts[1]) : 0,
              exponent > -100, exponent < 100 else { return nil }   // not abs(): Int.min would trap (a fuzz finding)
        let mantissa = parts[0].split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let fraction = mantissa.count == 2 ? mantissa[1] : ""
        var digits = Array(mantissa[0] + fraction).drop { $0 == "0" }
        var scale = exponent - fraction.count
        while scale < 0, digits.last == "0" {
            digits.removeLast()
            scale += 1
        }
        if digits.isEmpty { return 0 }
        guard scale >= 0, digits.count + scale <= 19 else { return nil }
        return Int64((negative ? "-" : "") + String(digits) + String(repeating: "0", count: scale))
    }
}
