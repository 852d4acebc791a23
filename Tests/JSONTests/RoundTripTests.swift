// Valid documents: exact canonical round trips, the writer's escaping, numbers, accessors and entry points.

import JSON
import Testing

/// Compact documents in the writer's own form: serialized(parse(x)) must give back x byte for byte.
let canonicalDocuments: [String] = [
    #"{"a":[1,2.5e3,-0,true,null,"x\n\u0001é😀"]}"#,
    #"null"#, #"true"#, #"false"#, #"0"#, #"-0"#, #"-0.0"#, #"1E+2"#, #"1e-2"#, #"123.456e78"#,
    #""""#, #""plain""#, #""\"\\\b\f\n\r\t""#, #""\u0000\u001f"# + "\u{7F}\"",
    #""a/b""#, #""€𝄞 π 😀""#, "\"\u{2028} is written raw: \u{2029}\"",
    #"[]"#, #"{}"#, #"[[],{},[[]],{"":{}}]"#, #"{"b":1,"a":2}"#, #"{"":0}"#,
    #"[-9223372036854775808,9223372036854775807,9223372036854775808,1e400,0.000000000000000000000001]"#,
    #"{"nested":{"deeper":{"deepest":[1,[2,[3,[4]]]]}},"after":"x"}"#,
]

/// Valid but not canonical (whitespace, escapes the writer does not use): these round trip by value.
let nonCanonicalDocuments: [String] = [
    " \t\r\n[ 1 , 2 ]\n", #"{ "a" : { } , "b" : [ ] }"#, #""\/\u0041\u00e9\u20AC\ud83d\ude00""#,
    #""\uD834\uDD1E""#, #"[1E2,1e+2,1e-0,0e0]"#, #"{"k\u0000ey":"v\u001F"}"#, "[\"\\u000a\\u000A\"]",
]

@Suite struct RoundTripTests {
    @Test(arguments: canonicalDocuments)
    func canonicalInputIsReproducedExactly(_ doc: String) throws {
        let value = try JSONParser.parse(doc)
        #expect(text(value.serialized()) == doc)
        #expect(try JSONParser.parse(value.serialized()) == value)
    }

    @Test(arguments: nonCanonicalDocuments)
    func nonCanonicalInputRoundTripsByValue(_ doc: String) throws {
        let value = try JSONParser.parse(doc)
        let once = value.serialized()
        let reparsed = try JSONParser.parse(once)
        #expect(reparsed == value)
        #expect(reparsed.serialized() == once)
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        #expect(try JSONParser.parse(#""\/\u0041\u00e9\u20AC\ud83d\ude00""#) == .string("/Aé€😀"))
        #expect(try JSONParser.parse(#""\uD834\uDD1E""#) == .string("\u{1D11E}"))
        #expect(try JSONParser.parse(#""a\u0000b""#).stringValue?.unicodeScalars.map(\.value) == [0x61, 0, 0x62])
        #expect(try JSONParser.parse(#""\"\\\/\b\f\n\r\t""#) == .string("\"\\/\u{8}\u{C}\n\r\t"))
    }

    @Test func writerEscapesOnlyWhatItMust() {
        let all = String(decoding: (0..<0x20).map { UInt8($0) }, as: UTF8.self) + "\"\\/\u{7F}é"
        let expected = #""\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000f"#
            + #"\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f"#
            + #"\"\\/"# + "\u{7F}é\""
        #expect(text(JSONValue.string(all).serialized()) == expected)
    }

    @Test func writerKeepsStoredMemberOrderAndAppends() {
        let value = obj(("z", .null), ("a", .array([.bool(true), num("1.50")])), ("m", obj()))
        #expect(text(value.serialized()) == #"{"z":null,"a":[true,1.50],"m":{}}"#)
        var out = Array("prefix:".utf8)
        value.serialize(into: &out)
        #expect(text(out) == #"prefix:{"z":null,"a":[true,1.50],"m":{}}"#)
    }

    @Test func writerIsIterativeOnHandBuiltDeepValues() throws {
        var deep = JSONValue.null
        for _ in 0..<2_000 { deep = .array([deep]) }
        let out = deep.serialized()
        #expect(out.count == 2 * 2_000 + 4)
        #expect(try JSONParser.parse(out, options: options(maxDepth: 2_000)) == deep)
    }

    @Test func accessors() throws {
        let v = try JSONParser.parse(#"{"s":"x","n":-12,"d":2.5,"b":true,"z":null,"a":[1],"o":{"k":"v"}}"#)
        #expect(v["s"]?.stringValue == "x")
        #expect(v["n"]?.intValue == -12)
        #expect(v["n"]?.doubleValue == -12)
        #expect(v["d"]?.intValue == nil)
        #expect(v["d"]?.doubleValue == 2.5)
        #expect(v["b"]?.boolValue == true)
        #expect(v["z"]?.isNull == true)
        #expect(v["a"]?.arrayValue == [num("1")])
        #expect(v["o"]?["k"] == .string("v"))
        #expect(v["o"]?.objectValue?.count == 1)
        #expect(v["missing"] == nil)
        #expect(v["s"]?["s"] == nil)
        #expect(v.objectValue?.members.map(\.key) == ["s", "n", "d", "b", "z", "a", "o"])
        #expect(v.stringValue == nil && v.arrayValue == nil && v.intValue == nil)
    }

    @Test(arguments: [3, 40])
    func lookupsSeeTheFirstOfDuplicateKeys(_ size: Int) throws {
        // Small objects are searched linearly, large ones through the index; both must agree.
        let members = (0..<size).map { #""k\#($0)":\#($0)"# }.joined(separator: ",")
        let doc = "{" + members + #","k1":"second","k0":"again"}"#
        let v = try JSONParser.parse(doc, options: options(allowDuplicateKeys: true))
        #expect(v["k1"]?.intValue == 1)
        #expect(v["k0"]?.intValue == 0)
        #expect(v["k\(size - 1)"]?.intValue == Int64(size - 1))
        #expect(v.objectValue?.count == size + 2)
        #expect(text(v.serialized()) == doc)
        let built = JSONObject(v.objectValue!.members.map { ($0.key, $0.value) })
        #expect(built["k1"]?.intValue == 1)
        #expect(built == v.objectValue!)
    }

    @Test func objectEqualityIsOrderSensitiveAndUsesStringEquality() throws {
        #expect(try JSONParser.parse(#"{"a":1,"b":2}"#) != JSONParser.parse(#"{"b":2,"a":1}"#))
        #expect(try JSONParser.parse(#"{"a":1,"b":2}"#) == JSONParser.parse(#"{ "a" : 1 , "b" : 2 }"#))
        #expect(try JSONParser.parse(#"{"a":1}"#) != JSONParser.parse(#"{"a":1,"b":2}"#))
        // Numbers compare by lexeme: the text is what round trips.
        #expect(try JSONParser.parse("1.0") != JSONParser.parse("1"))
    }

    @Test func allEntryPointsAgree() throws {
        let bytes = b(#"{"k":[1,"é\n",{"x":null}]}"#)
        let expected = try JSONParser.parse(bytes)
        #expect(try bytes.withUnsafeBytes { raw in try JSONParser.parse(raw) } == expected)
        #expect(try JSONParser.parse(bytes[...]) == expected)
        #expect(try JSONParser.parse(text(bytes)) == expected)
        #expect(try JSONParser.parse(text(bytes).utf8) == expected)
        #expect(try JSONParser.parse(bytes.indices.lazy.map { bytes[$0] }) == expected)  // not contiguous
        let inside = [0x20] + bytes + [0x5D]
        #expect(try JSONParser.parse(inside[1..<inside.count - 1]) == expected)  // slice not at index 0
        #expect(throws: JSONError(offset: 3, reason: .tooLarge)) {
            try JSONParser.parse(bytes.indices.lazy.map { bytes[$0] }, options: options(maxBytes: 3))
        }
    }

    @Test func emptyBufferWithoutBaseAddress() {
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        #expect(throws: JSONError(offset: 0, reason: .unexpectedEnd)) { try JSONParser.parse(empty) }
        #expect(throws: JSONError(offset: 0, reason: .unexpectedEnd)) { try JSONParser.scanTopLevelObject(empty) }
    }

    @Test func errorDescriptions() {
        #expect(JSONError(offset: 3, reason: .unexpectedByte(0x5D)).description == "offset 3: unexpected byte 0x5D ']'")
        #expect(JSONError(offset: 0, reason: .unexpectedByte(0x0B)).description == "offset 0: unexpected byte 0x0B")
        #expect(JSONError(offset: 9, reason: .unexpectedEnd).description == "offset 9: unexpected end of input")
        #expect(JSONError(offset: 64, reason: .tooDeep(limit: 64)).description == "offset 64: nesting deeper than 64 levels")
        #expect(JSONError(offset: 7, reason: .duplicateKey("a\n")).description == #"offset 7: duplicate object key "a\n""#)
        let long = JSONError(offset: 1, reason: .duplicateKey(String(repeating: "k", count: 1000))).description
        #expect(long.count < 120)
    }
}

@Suite struct NumberTests {
    @Test func int64Bounds() throws {
        #expect(try JSONParser.parse("-9223372036854775808").intValue == .min)
        #expect(try JSONParser.parse("9223372036854775807").intValue == .max)
        #expect(try JSONParser.parse("-9223372036854775809").intValue == nil)
        #expect(try JSONParser.parse("9223372036854775808").intValue == nil)
        #expect(try JSONParser.parse("123456789012345678901234567890").intValue == nil)
        #expect(try JSONParser.parse("-0").intValue == 0)
        #expect(try JSONParser.parse("0").intValue == 0)
    }

    @Test func onlyIntegerLexemesAreIntegers() throws {
        #expect(try JSONParser.parse("1.0").intValue == nil)
        #expect(try JSONParser.parse("1e2").intValue == nil)
        #expect(try JSONParser.parse("1e2").doubleValue == 100)
    }

    @Test func doublesAreFiniteOrNil() throws {
        #expect(try JSONParser.parse("1e308").doubleValue == 1e308)
        #expect(try JSONParser.parse("1e309").doubleValue == nil)
        #expect(try JSONParser.parse("-1e309").doubleValue == nil)
        #expect(try JSONParser.parse("1e99999999999999999999").doubleValue == nil)
        #expect(try JSONParser.parse("1e-400").doubleValue == 0)
        #expect(try JSONParser.parse("0.1").doubleValue == 0.1)
        #expect(try JSONParser.parse("-0").doubleValue?.sign == .minus)
        #expect(try JSONParser.parse("2.5E-3").doubleValue == 0.0025)
        // Out of Double's range is still valid JSON, and its text survives untouched.
        #expect(try text(JSONParser.parse("[1e309]").serialized()) == "[1e309]")
    }

    @Test func numberInitialisers() {
        #expect(JSONNumber("-12.5e3")?.lexeme == "-12.5e3")
        for bad in ["01", " 1", "1 ", "+1", ".5", "1.", "", "-", "NaN", "1e", "0x1", "[1]"] {
            #expect(JSONNumber(bad) == nil, "\(bad)")
        }
        #expect(JSONNumber(Int64.min).int64 == .min)
        #expect(JSONNumber(42).lexeme == "42")
        #expect(JSONNumber(Double.nan) == nil)
        #expect(JSONNumber(-Double.infinity) == nil)
        for d in [0.1, -0.0, 1e-7, 1e300, .leastNonzeroMagnitude, 123456789.125, 1e22] {
            let n = JSONNumber(d)!
            #expect(JSONNumber(n.lexeme) == n, "\(n.lexeme) must be valid JSON")
            #expect(n.double == d)
        }
    }
}
