// scanTopLevelObject: keys and raw value ranges of top-level members, with the parser's full validation.

import JSON
import Testing

@Suite struct ScanTests {
    @Test func keysAndRawValueRanges() throws {
        let doc = b(#" { "a" : 1 , "b":[1, {"c":2}] ,"c\n":"x\"y", "d":{} ,"e":-0.5e3,"f":null} "#)
        let members = try JSONParser.scanTopLevelObject(doc)
        #expect(members.map(\.key) == ["a", "b", "c\n", "d", "e", "f"])
        #expect(members.map { text(Array(doc[$0.range])) } == ["1", #"[1, {"c":2}]"#, #""x\"y""#, "{}", "-0.5e3", "null"])
        let parsed = try JSONParser.parse(doc)
        for m in members { #expect(try JSONParser.parse(doc[m.range]) == parsed[m.key]) }
    }

    @Test func bothOverloadsAgree() throws {
        let doc = b(#"{"k":"v","n":[1,2]}"#)
        let fromArray = try JSONParser.scanTopLevelObject(doc)
        let fromRaw = try doc.withUnsafeBytes { raw in try JSONParser.scanTopLevelObject(raw) }
        #expect(fromArray.map(\.key) == fromRaw.map(\.key))
        #expect(fromArray.map(\.range) == fromRaw.map(\.range))
        #expect(fromArray.map(\.range) == [5..<8, 13..<18])
    }

    @Test func emptyObject() throws {
        #expect(try JSONParser.scanTopLevelObject(b(" {} ")).isEmpty)
    }

    @Test(arguments: [("[1]", 0), ("  42", 2), (#""s""#, 0), ("null", 0), ("\n[]", 1), ("true", 0)])
    func refusesWellFormedNonObjects(_ doc: String, _ offset: Int) {
        let bytes = b(doc)
        #expect(throws: JSONError(offset: offset, reason: .unexpectedByte(bytes[offset]))) {
            try JSONParser.scanTopLevelObject(bytes)
        }
    }

    @Test func malformedNonObjectsGetTheParsersError() {
        // The whole document is validated first, so a broken array reports its real problem.
        #expect(throws: JSONError(offset: 3, reason: .unexpectedByte(UInt8(ascii: "]")))) {
            try JSONParser.scanTopLevelObject(b("[1,]"))
        }
        #expect(throws: JSONError(offset: 8, reason: .trailingData)) { try JSONParser.scanTopLevelObject(b(#"{"a":1} {}"#)) }
    }

    @Test func duplicatesAtAnyDepthFollowTheOption() throws {
        #expect(throws: JSONError(offset: 7, reason: .duplicateKey("a"))) { try JSONParser.scanTopLevelObject(b(#"{"a":1,"a":2}"#)) }
        #expect(throws: JSONError(offset: 12, reason: .duplicateKey("y"))) {
            try JSONParser.scanTopLevelObject(b(#"{"x":{"y":1,"y":2}}"#))
        }
        let both = try JSONParser.scanTopLevelObject(b(#"{"a":1,"a":{"y":1,"y":2}}"#), options: options(allowDuplicateKeys: true))
        #expect(both.map(\.key) == ["a", "a"])
        #expect(both.map(\.range) == [5..<6, 11..<24])
    }

    @Test func limitsApply() {
        let deep = b(#"{"a":"# + String(repeating: "[", count: 64) + String(repeating: "]", count: 64) + "}")
        #expect(throws: JSONError(offset: 68, reason: .tooDeep(limit: 64))) { try JSONParser.scanTopLevelObject(deep) }
        #expect(throws: JSONError(offset: 2, reason: .tooLarge)) {
            try JSONParser.scanTopLevelObject(b("{}  "), options: options(maxBytes: 2))
        }
    }

    @Test func validatesVeryDeepDocumentsWithoutRecursion() throws {
        // Scanning builds no tree, so this exercises the parser's own depth handling: 100,000
        // levels live on the heap, not the native stack.
        let depth = 100_000
        let doc = b(#"{"deep":"# + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + #","after":1}"#)
        let members = try JSONParser.scanTopLevelObject(doc, options: options(maxDepth: depth + 1))
        #expect(members.map(\.key) == ["deep", "after"])
        #expect(members[0].range == 8..<(8 + 2 * depth))
    }

    @Test func largeObjectsUseTheSameDuplicateRules() throws {
        let keys = (0..<500).map { #""key\#($0)":\#($0)"# }
        let doc = b("{" + keys.joined(separator: ",") + "}")
        #expect(try JSONParser.scanTopLevelObject(doc).count == 500)
        let dup = b("{" + keys.joined(separator: ",") + #","key250":0}"#)
        let parseError = outcome(dup)
        #expect(throws: JSONError.self) { try JSONParser.scanTopLevelObject(dup) }
        #expect(Result { () throws(JSONError) in try JSONParser.scanTopLevelObject(dup) }.map { _ in JSONValue.null } == parseError.map { _ in .null })
    }
}
