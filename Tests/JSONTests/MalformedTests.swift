// Malformed inputs: each must be refused with the expected reason at the expected byte offset.

import JSON
import Testing

struct Malformed: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let reason: JSONError.Reason
    let offset: Int
    var options = JSONParser.Options()

    init(_ name: String, _ bytes: [UInt8], _ reason: JSONError.Reason, at offset: Int, options: JSONParser.Options = .init()) {
        self.name = name
        self.bytes = bytes
        self.reason = reason
        self.offset = offset
        self.options = options
    }

    init(_ doc: String, _ reason: JSONError.Reason, at offset: Int, options: JSONParser.Options = .init()) {
        self.init(doc, b(doc), reason, at: offset, options: options)
    }

    var testDescription: String { name.count > 40 ? String(name.prefix(40)) + "…" : name }
}

private func byte(_ c: Unicode.Scalar) -> JSONError.Reason { .unexpectedByte(UInt8(ascii: c)) }

private let twentyKeys = (0..<20).map { #""k\#($0)":\#($0),"# }.joined()

let malformedCases: [Malformed] = [
    // Empty and whitespace-only.
    Malformed("empty input", [], .unexpectedEnd, at: 0),
    Malformed(" ", .unexpectedEnd, at: 1),
    Malformed(" \t\r\n", .unexpectedEnd, at: 4),
    // Numbers.
    Malformed("-", .invalidNumber, at: 1),
    Malformed("1e", .invalidNumber, at: 2),
    Malformed("1e+", .invalidNumber, at: 3),
    Malformed("1E-", .invalidNumber, at: 3),
    Malformed("1.", .invalidNumber, at: 2),
    Malformed("1.e5", .invalidNumber, at: 2),
    Malformed(".5", byte("."), at: 0),
    Malformed("+1", byte("+"), at: 0),
    Malformed("01", .invalidNumber, at: 1),
    Malformed("-01", .invalidNumber, at: 2),
    Malformed("00", .invalidNumber, at: 1),
    Malformed("-a", .invalidNumber, at: 1),
    Malformed("- 1", .invalidNumber, at: 1),
    Malformed("NaN", byte("N"), at: 0),
    Malformed("Infinity", byte("I"), at: 0),
    Malformed("-Infinity", .invalidNumber, at: 1),
    Malformed("[-]", .invalidNumber, at: 2),
    Malformed("[1.5e]", .invalidNumber, at: 5),
    Malformed("0x10", .trailingData, at: 1),
    Malformed("1.5.3", .trailingData, at: 3),
    // Arrays.
    Malformed("[1,]", byte("]"), at: 3),
    Malformed("[,1]", byte(","), at: 1),
    Malformed("[1 2]", byte("2"), at: 3),
    Malformed("[1,,2]", byte(","), at: 3),
    Malformed("[", .unexpectedEnd, at: 1),
    Malformed("[1", .unexpectedEnd, at: 2),
    Malformed("[1,", .unexpectedEnd, at: 3),
    Malformed("[1 ,2 ", .unexpectedEnd, at: 6),
    Malformed("]", byte("]"), at: 0),
    Malformed("[}", byte("}"), at: 1),
    Malformed("[1}", byte("}"), at: 2),
    // Objects.
    Malformed("{", .unexpectedEnd, at: 1),
    Malformed(#"{"a""#, .unexpectedEnd, at: 4),
    Malformed(#"{"a":"#, .unexpectedEnd, at: 5),
    Malformed(#"{"a":1"#, .unexpectedEnd, at: 6),
    Malformed(#"{"a":1,"#, .unexpectedEnd, at: 7),
    Malformed(#"{"a" 1}"#, byte("1"), at: 5),
    Malformed("{1:2}", byte("1"), at: 1),
    Malformed("{a:1}", byte("a"), at: 1),
    Malformed("{'a':1}", byte("'"), at: 1),
    Malformed(#"{"a":1,}"#, byte("}"), at: 7),
    Malformed(#"{"a":1 "b":2}"#, byte("\""), at: 7),
    Malformed("{,}", byte(","), at: 1),
    Malformed(#"{"a"::1}"#, byte(":"), at: 5),
    Malformed(#"{"a":1]"#, byte("]"), at: 6),
    Malformed(#"{"a",1}"#, byte(","), at: 4),
    // Trailing data.
    Malformed("[1]]", .trailingData, at: 3),
    Malformed("{}}", .trailingData, at: 2),
    Malformed("[] x", .trailingData, at: 3),
    Malformed("1 2", .trailingData, at: 2),
    Malformed("falsey", .trailingData, at: 5),
    Malformed("null%00", .trailingData, at: 4),
    // Literals.
    Malformed("tru", .unexpectedEnd, at: 3),
    Malformed("trux", byte("x"), at: 3),
    Malformed("True", byte("T"), at: 0),
    Malformed("nulL", byte("L"), at: 3),
    Malformed("[true false]", byte("f"), at: 6),
    Malformed("[nul]", byte("]"), at: 4),
    // Comments, foreign whitespace, BOM, bytes outside strings.
    Malformed("// c\n1", byte("/"), at: 0),
    Malformed("[1/*x*/]", byte("/"), at: 2),
    Malformed("%0C1", .unexpectedByte(0x0C), at: 0),
    Malformed("[%0B1]", .unexpectedByte(0x0B), at: 1),
    Malformed("%C2%A01", .unexpectedByte(0xC2), at: 0),
    Malformed("BOM then {}", b("%EF%BB%BF{}"), .unexpectedByte(0xEF), at: 0),
    Malformed("BOM alone", b("%EF%BB%BF"), .unexpectedByte(0xEF), at: 0),
    Malformed("[%00]", .unexpectedByte(0), at: 1),
    Malformed(#"["a"%00"#, .unexpectedByte(0), at: 4),
    Malformed("é", .unexpectedByte(0xC3), at: 0),
    Malformed("'a'", byte("'"), at: 0),
    // Strings: termination, escapes.
    Malformed(#""abc"#, .unexpectedEnd, at: 4),
    Malformed(#"""#, .unexpectedEnd, at: 1),
    Malformed(#""\x""#, .invalidEscape, at: 1),
    Malformed(#""ab\'""#, .invalidEscape, at: 3),
    Malformed(#""\U0041""#, .invalidEscape, at: 1),
    Malformed(#""\"#, .unexpectedEnd, at: 2),
    Malformed(#""\u12""#, .invalidUnicodeEscape, at: 1),
    Malformed(#""\u12"#, .unexpectedEnd, at: 5),
    Malformed(#""\uZZZZ""#, .invalidUnicodeEscape, at: 1),
    Malformed(#""\u-123""#, .invalidUnicodeEscape, at: 1),
    // Strings: surrogates.
    Malformed(#""\ud800""#, .loneSurrogate, at: 1),
    Malformed(#""\udc00""#, .loneSurrogate, at: 1),
    Malformed(#""x\uDFFF""#, .loneSurrogate, at: 2),
    Malformed(#""\ud800\u0041""#, .loneSurrogate, at: 1),
    Malformed(#""\ud800\ud800""#, .loneSurrogate, at: 1),
    Malformed(#""\ud800x""#, .loneSurrogate, at: 1),
    Malformed(#""\ud800\n""#, .loneSurrogate, at: 1),
    Malformed(#""\ude00\ud83d""#, .loneSurrogate, at: 1),
    Malformed(#""\ud800\uzzzz""#, .invalidUnicodeEscape, at: 7),
    Malformed(#""\ud83d"#, .unexpectedEnd, at: 7),
    Malformed(#""\ud83d\"#, .unexpectedEnd, at: 8),
    // Strings: raw control characters.
    Malformed("\"a\tb\"", .controlCharacterInString, at: 2),
    Malformed("\"a\nb\"", .controlCharacterInString, at: 2),
    Malformed(#""%00""#, .controlCharacterInString, at: 1),
    Malformed(#""abcdefghijkl%1F""#, .controlCharacterInString, at: 13),
    Malformed(#"{"k%0D":1}"#, .controlCharacterInString, at: 3),
    // Strings: invalid UTF-8 (errors point at the first byte of the bad sequence).
    Malformed(#""%C0%80""#, .invalidUTF8, at: 1),
    Malformed(#""%C1%BF""#, .invalidUTF8, at: 1),
    Malformed(#""%E0%80%80""#, .invalidUTF8, at: 1),
    Malformed(#""%E0%9F%BF""#, .invalidUTF8, at: 1),
    Malformed(#""%F0%80%80%80""#, .invalidUTF8, at: 1),
    Malformed(#""%F0%8F%BF%BF""#, .invalidUTF8, at: 1),
    Malformed(#""%ED%A0%80""#, .invalidUTF8, at: 1),
    Malformed(#""%ED%BF%BF""#, .invalidUTF8, at: 1),
    Malformed(#""%ED%A0%BD%ED%B8%80""#, .invalidUTF8, at: 1),
    Malformed(#""%F4%90%80%80""#, .invalidUTF8, at: 1),
    Malformed(#""%F5%80%80%80""#, .invalidUTF8, at: 1),
    Malformed(#""%F8%88%80%80%80""#, .invalidUTF8, at: 1),
    Malformed(#""%FF""#, .invalidUTF8, at: 1),
    Malformed(#""%FE""#, .invalidUTF8, at: 1),
    Malformed(#""%80""#, .invalidUTF8, at: 1),
    Malformed(#""ab%BF""#, .invalidUTF8, at: 3),
    Malformed(#""%C3""#, .invalidUTF8, at: 1),
    Malformed(#""%E2%82""#, .invalidUTF8, at: 1),
    Malformed(#""%F0%9F%98""#, .invalidUTF8, at: 1),
    Malformed(#""%C3%41""#, .invalidUTF8, at: 1),
    Malformed(#""%E2%82%41""#, .invalidUTF8, at: 1),
    Malformed(#""okokokokokokokok%E9t%E9""#, .invalidUTF8, at: 17),
    Malformed(#""%C3"#, .unexpectedEnd, at: 2),
    Malformed(#""%F0%9F%98"#, .unexpectedEnd, at: 4),
    // Duplicate keys (the offset is the duplicate key's opening quote).
    Malformed(#"{"a":1,"a":2}"#, .duplicateKey("a"), at: 7),
    Malformed(#"{"a":1,"\u0061":2}"#, .duplicateKey("a"), at: 7),
    Malformed(#"[{"x":{"k":1,"k":2}}]"#, .duplicateKey("k"), at: 13),
    Malformed(#"{"é":1,"e\u0301":2}"#, .duplicateKey("e\u{301}"), at: 8),
    Malformed("duplicate in a large object", b("{" + twentyKeys + #""k7":0}"#), .duplicateKey("k7"), at: twentyKeys.utf8.count + 1),
    // Depth and size limits.
    Malformed("100,000 × [", [UInt8](repeating: UInt8(ascii: "["), count: 100_000), .tooDeep(limit: 64), at: 64),
    Malformed("65 nested arrays, limit 64", b(String(repeating: "[", count: 65) + String(repeating: "]", count: 65)),
              .tooDeep(limit: 64), at: 64),
    Malformed("65 nested objects, limit 64", b(String(repeating: #"{"a":"#, count: 64) + "{}" + String(repeating: "}", count: 64)),
              .tooDeep(limit: 64), at: 320),
    Malformed("limit 0 refuses containers", b("[]"), .tooDeep(limit: 0), at: 0, options: options(maxDepth: 0)),
    Malformed("unterminated 100,000 deep, limit raised", [UInt8](repeating: UInt8(ascii: "["), count: 100_000),
              .unexpectedEnd, at: 100_000, options: options(maxDepth: 1_000_000)),
    Malformed("5 bytes, limit 4", b("[1,2]"), .tooLarge, at: 4, options: options(maxBytes: 4)),
    Malformed("too large is checked before syntax", b("xxxxx"), .tooLarge, at: 4, options: options(maxBytes: 4)),
]

@Suite struct MalformedTests {
    @Test func tableIsLargeEnough() { #expect(malformedCases.count >= 60) }

    @Test(arguments: malformedCases)
    func refusedWithReasonAndOffset(_ c: Malformed) {
        #expect(outcome(c.bytes, c.options) == .failure(JSONError(offset: c.offset, reason: c.reason)))
    }

    @Test(arguments: malformedCases)
    func scanRefusesExactlyLikeParse(_ c: Malformed) {
        let scanned = Result { () throws(JSONError) in try JSONParser.scanTopLevelObject(c.bytes, options: c.options) }
        #expect(scanned.map { _ in 0 } == .failure(JSONError(offset: c.offset, reason: c.reason)))
    }

    @Test(arguments: [
        (#"{"a":1,"a":2}"#, 2), (#"{"a":{"b":1,"b":1}}"#, 1), ("{" + twentyKeys + #""k7":0}"#, 21),
    ])
    func duplicatesAreAcceptedOnlyWhenAllowed(_ doc: String, _ count: Int) throws {
        #expect(throws: JSONError.self) { try JSONParser.parse(doc) }
        let v = try JSONParser.parse(doc, options: options(allowDuplicateKeys: true))
        #expect(v.objectValue?.count == count)
        #expect(text(v.serialized()) == doc)
    }

    @Test func depthLimitIsExact() throws {
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(try JSONParser.parse(ok).serialized().count == 128)
        let deep = String(repeating: "[", count: 1_000) + "7" + String(repeating: "]", count: 1_000)
        #expect(try text(JSONParser.parse(deep, options: options(maxDepth: 1_000)).serialized()) == deep)
        #expect(throws: JSONError(offset: 999, reason: .tooDeep(limit: 999))) {
            try JSONParser.parse(deep, options: options(maxDepth: 999))
        }
    }

    @Test func sizeLimitIsExact() throws {
        #expect(try JSONParser.parse("[1,2]", options: options(maxBytes: 5)) == .array([num("1"), num("2")]))
    }
}
