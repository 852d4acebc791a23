// The `HTTPHeaders` value type: lookup, order, equality.

import HTTPParser
import Testing

@Suite("HTTPHeaders")
struct HTTPHeadersTests {
    @Test func buildAndLookUp() {
        var h = HTTPHeaders()
        #expect(h.isEmpty)
        h.append(name: "Content-Type", value: "text/plain")
        h.append(name: "X-Dup", value: "1")
        h.append(name: "x-dup", value: "2")
        #expect(h.count == 3)
        #expect(h["content-type"] == "text/plain")
        #expect(h["X-DUP"] == "1")
        #expect(h.values("x-Dup") == ["1", "2"])
        #expect(h[position: 2] == ("x-dup", "2"))
        #expect(Array(h).map(\.value) == ["text/plain", "1", "2"])
        #expect(h.description == "[Content-Type: text/plain, X-Dup: 1, x-dup: 2]")
    }

    @Test func equalityIgnoresNameCaseOnly() {
        let a: HTTPHeaders = ["Host": "a", "X": "1"]
        #expect(a == HTTPHeaders([(name: "host", value: "a"), (name: "x", value: "1")]))
        #expect(a != ["Host": "A", "X": "1"])
        #expect(a != ["X": "1", "Host": "a"])
        #expect(a != ["Host": "a"])
        #expect(HTTPHeaders() == [:])
    }

    @Test func nonASCIINamesLookUpByteForByte() {
        let h: HTTPHeaders = ["Ünïcode": "v"]
        #expect(h["Ünïcode"] == "v")
        #expect(h["ünïcode"] == nil)
    }

    @Test func parsedHeadersEqualBuiltOnes() throws {
        let h = try head("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\r\n")
        #expect(h.headers == ["host": "a", "x-a": "1"])
    }
}
