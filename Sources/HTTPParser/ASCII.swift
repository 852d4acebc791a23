// Byte classes of RFC 9110/9112 and allocation-free comparisons over raw bytes.

enum ASCII {
    static let cr: UInt8 = 0x0D
    static let lf: UInt8 = 0x0A
    static let sp: UInt8 = 0x20
    static let htab: UInt8 = 0x09
    static let colon = UInt8(ascii: ":")
    static let semicolon = UInt8(ascii: ";")
    static let equals = UInt8(ascii: "=")
    static let comma = UInt8(ascii: ",")
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let slash = UInt8(ascii: "/")
    static let question = UInt8(ascii: "?")
    static let hash = UInt8(ascii: "#")
    static let star = UInt8(ascii: "*")

    /// tchar (RFC 9110 §5.6.2) as two 64-bit masks: bytes 0x00–0x3F and 0x40–0x7F.
    @inline(__always) static func isTchar(_ b: UInt8) -> Bool {
        if b < 64 { return (0x03FF_6CFA_0000_0000 as UInt64) >> UInt64(b) & 1 != 0 }
        if b < 128 { return (0x57FF_FFFF_C7FF_FFFE as UInt64) >> UInt64(b &- 64) & 1 != 0 }
        return false
    }

    /// The reg-name bytes accepted in a host: letters, digits, `-._~%` (no sub-delims).
    @inline(__always) static func isRegNameByte(_ b: UInt8) -> Bool {
        if b < 64 { return (0x03FF_6020_0000_0000 as UInt64) >> UInt64(b) & 1 != 0 }
        if b < 128 { return (0x47FF_FFFE_87FF_FFFE as UInt64) >> UInt64(b &- 64) & 1 != 0 }
        return false
    }

    /// field-vchar / SP / HTAB / obs-text: every byte but the CTLs (HTAB excepted) and DEL.
    @inline(__always) static func isFieldValueByte(_ b: UInt8) -> Bool {
        b >= 0x20 ? b != 0x7F : b == htab
    }

    /// Request-target bytes: printable ASCII without SP; `#` is refused because a fragment is never sent.
    @inline(__always) static func isTargetByte(_ b: UInt8) -> Bool {
        b > 0x20 && b < 0x7F && b != hash
    }

    @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b &- 0x30 < 10 }

    @inline(__always) static func isOWS(_ b: UInt8) -> Bool { b == sp || b == htab }

    /// The value of a hex digit, or -1.
    @inline(__always) static func hexValue(_ b: UInt8) -> Int {
        if b &- 0x30 < 10 { return Int(b &- 0x30) }
        let l = b | 0x20
        if l &- 0x61 < 6 { return Int(l &- 0x61) + 10 }
        return -1
    }

    @inline(__always) static func lower(_ b: UInt8) -> UInt8 {
        b &- 0x41 < 26 ? b | 0x20 : b
    }

    /// qdtext (RFC 9110 §5.6.4): HTAB, SP, printable ASCII except `"` and `\`, obs-text.
    @inline(__always) static func isQdtext(_ b: UInt8) -> Bool {
        b == htab || b == sp || b == 0x21 || (b >= 0x23 && b <= 0x5B) || (b >= 0x5D && b != 0x7F)
    }

    /// The second byte of a quoted-pair: HTAB, SP, VCHAR, obs-text.
    @inline(__always) static func isQuotedPairByte(_ b: UInt8) -> Bool {
        b == htab || (b >= 0x20 && b != 0x7F)
    }

    /// The index of the first byte at or after `i` (before `end`) that is not a field-value byte or is
    /// HTAB, eight bytes at a time: the loop that most head bytes go through.
    @inline(__always)
    static func skipFieldValueBytes(_ p: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> Int {
        var i = start
        if let base = p.baseAddress {
            let raw = UnsafeRawPointer(base)
            while end &- i >= 8 {
                let w = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                // A byte below 0x20 or equal to 0x7F sets a high bit (SWAR "has less" / "has zero").
                let del = w ^ 0x7F7F_7F7F_7F7F_7F7F
                let flags =
                    ((w &- 0x2020_2020_2020_2020) & ~w) | ((del &- 0x0101_0101_0101_0101) & ~del)
                if flags & 0x8080_8080_8080_8080 != 0 { break }
                i &+= 8
            }
        }
        while i < end && isFieldValueByte(p[i]) { i &+= 1 }
        return i
    }

    /// The index of the first byte at or after `start` (before `end`) that is not a request-target byte.
    @inline(__always)
    static func skipTargetBytes(_ p: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> Int {
        var i = start
        if let base = p.baseAddress {
            let raw = UnsafeRawPointer(base)
            while end &- i >= 8 {
                let w = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                let del = w ^ 0x7F7F_7F7F_7F7F_7F7F
                let hash = w ^ 0x2323_2323_2323_2323
                // Below 0x21, 0x7F, '#', or 0x80 and above (the high bit of w itself).
                let flags =
                    ((w &- 0x2121_2121_2121_2121) & ~w) | ((del &- 0x0101_0101_0101_0101) & ~del)
                    | ((hash &- 0x0101_0101_0101_0101) & ~hash) | w
                if flags & 0x8080_8080_8080_8080 != 0 { break }
                i &+= 8
            }
        }
        while i < end && isTargetByte(p[i]) { i &+= 1 }
        return i
    }

    /// `p[start..<end]` equals `literal` byte for byte.
    @inline(__always)
    static func equals(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, _ literal: StaticString) -> Bool {
        let n = literal.utf8CodeUnitCount
        guard end - start == n else { return false }
        let l = literal.utf8Start
        var k = 0
        while k < n {
            if p[start &+ k] != l[k] { return false }
            k &+= 1
        }
        return true
    }

    /// `p[start..<end]` equals the lowercase `literal`, ignoring ASCII case in `p`.
    @inline(__always)
    static func equalsLowercase(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, _ literal: StaticString)
        -> Bool
    {
        let n = literal.utf8CodeUnitCount
        guard end - start == n else { return false }
        let l = literal.utf8Start
        var k = 0
        while k < n {
            if lower(p[start &+ k]) != l[k] { return false }
            k &+= 1
        }
        return true
    }

    /// Two byte ranges equal ignoring ASCII case.
    static func equalsIgnoringCase(
        _ a: UnsafeBufferPointer<UInt8>, _ aStart: Int, _ aEnd: Int,
        _ b: UnsafeBufferPointer<UInt8>, _ bStart: Int, _ bEnd: Int
    ) -> Bool {
        guard aEnd - aStart == bEnd - bStart else { return false }
        var k = 0
        while aStart + k < aEnd {
            if lower(a[aStart + k]) != lower(b[bStart + k]) { return false }
            k += 1
        }
        return true
    }

    static func string(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: p[start..<end]), as: UTF8.self)
    }
}
