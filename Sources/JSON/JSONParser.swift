// Owns the strict RFC 8259 parser: untrusted bytes in, a JSONValue (or top-level member ranges) or a located JSONError out.
//
// Design, because this runs on a daemon's request path: one pass by index over contiguous bytes,
// an explicit container stack instead of recursion (so depth costs heap, never native stack),
// linear time in the input (duplicate-key checks switch to hashing for large objects), and
// strings built once from slices that were validated here.

public struct JSONParser {
    public struct Options: Sendable {
        /// Containers nested deeper than this are refused (`tooDeep`). The parser itself needs no
        /// native stack for depth, but Swift destroys and compares the resulting values recursively,
        /// so keep this in the hundreds, not the hundreds of thousands.
        public var maxDepth = 64
        /// Inputs longer than this are refused before any parsing (`tooLarge`).
        public var maxBytes = 16 << 20
        /// RFC 8259 leaves duplicate names to the implementation; different parsers pick different
        /// members, which attackers exploit, so they are refused unless this is set. Keys are compared
        /// with Swift `String` equality, the same equality lookups use, so a lookup is never ambiguous.
        public var allowDuplicateKeys = false
        public init() {}
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer, options: Options = .init()) throws(JSONError) -> JSONValue {
        var engine = try Engine(bytes, options, scanning: false)
        return try engine.run()
    }

    public static func parse(_ bytes: [UInt8], options: Options = .init()) throws(JSONError) -> JSONValue {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(JSONError) in try parse(raw, options: options) }
        }
        return try result.get()
    }

    public static func parse(_ bytes: some Collection<UInt8>, options: Options = .init()) throws(JSONError) -> JSONValue {
        let contiguous = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(JSONError) in try parse(UnsafeRawBufferPointer(buffer), options: options) }
        }
        if let contiguous { return try contiguous.get() }
        // Refuse before copying: a huge non-contiguous input must not cost a huge allocation.
        guard bytes.count <= options.maxBytes else { throw JSONError(offset: max(options.maxBytes, 0), reason: .tooLarge) }
        return try parse(Array(bytes), options: options)
    }

    /// The UTF-8 of `text`.
    public static func parse(_ text: String, options: Options = .init()) throws(JSONError) -> JSONValue {
        var text = text
        return try text.withUTF8 { utf8 in
            Result { () throws(JSONError) in try parse(UnsafeRawBufferPointer(utf8), options: options) }
        }.get()
    }

    /// Validates the whole document with exactly the rules (and errors) of `parse`, without building
    /// the tree, and returns each top-level member's key and the byte range of its raw value text.
    /// A well-formed document whose top level is not an object is refused with `unexpectedByte` at
    /// its first byte.
    public static func scanTopLevelObject(
        _ bytes: UnsafeRawBufferPointer, options: Options = .init()
    ) throws(JSONError) -> [(key: String, range: Range<Int>)] {
        var engine = try Engine(bytes, options, scanning: true)
        _ = try engine.run()
        guard engine.topLevelWasObject else {
            throw JSONError(offset: engine.documentStart, reason: .unexpectedByte(engine.byte(engine.documentStart)))
        }
        return zip(engine.topKeys, engine.topRanges).map { (key: $0, range: $1) }
    }

    public static func scanTopLevelObject(
        _ bytes: [UInt8], options: Options = .init()
    ) throws(JSONError) -> [(key: String, range: Range<Int>)] {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(JSONError) in try scanTopLevelObject(raw, options: options) }
        }
        return try result.get()
    }
}

// MARK: - Engine

private let quote = UInt8(ascii: "\"")
private let backslash = UInt8(ascii: "\\")

/// One parse. In scanning mode values are validated but not built (only keys, for duplicate
/// detection and the top-level result), which is what makes `scanTopLevelObject` cheap.
private struct Engine {
    struct Frame {
        var isObject: Bool
        var valueStart: Int  // first element of this container in `values`
        var keyStart: Int  // first key of this container in `keys`
        var index: [String: Int]?  // hashed keys, once the object is too big for linear duplicate checks
    }

    let p: UnsafeRawPointer
    let end: Int
    var pos = 0
    let maxDepth: Int
    let allowDuplicateKeys: Bool
    let scanning: Bool

    var frames: [Frame] = []
    var values: [JSONValue] = []  // completed elements of all open containers, innermost last
    var keys: [String] = []  // keys of all open objects, innermost last

    // Scanning results.
    var documentStart = 0
    var topLevelWasObject = false
    var topKeys: [String] = []
    var topRanges: [Range<Int>] = []
    var memberStart = 0

    init(_ bytes: UnsafeRawBufferPointer, _ options: JSONParser.Options, scanning: Bool) throws(JSONError) {
        guard bytes.count <= options.maxBytes else {
            throw JSONError(offset: max(options.maxBytes, 0), reason: .tooLarge)
        }
        // An empty buffer may have no base address; nothing is ever read from it then (end == 0).
        p = bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 0x10)!
        end = bytes.count
        maxDepth = options.maxDepth
        allowDuplicateKeys = options.allowDuplicateKeys
        self.scanning = scanning
    }

    @inline(__always) func byte(_ i: Int) -> UInt8 { p.load(fromByteOffset: i, as: UInt8.self) }

    @inline(__always) func fail(_ reason: JSONError.Reason, at offset: Int) -> JSONError {
        JSONError(offset: offset, reason: reason)
    }

    @inline(__always) mutating func skipWhitespace() {
        while pos < end {
            let b = byte(pos)
            guard b <= 0x20, b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 else { return }
            pos += 1
        }
    }

    mutating func run() throws(JSONError) -> JSONValue {
        skipWhitespace()
        documentStart = pos
        var value: JSONValue
        nextValue: while true {
            skipWhitespace()
            guard pos < end else { throw fail(.unexpectedEnd, at: end) }
            if scanning && frames.count == 1 { memberStart = pos }
            let b = byte(pos)
            switch b {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard frames.count < maxDepth else { throw fail(.tooDeep(limit: maxDepth), at: pos) }
                let isObject = b == UInt8(ascii: "{")
                if scanning && frames.isEmpty { topLevelWasObject = isObject }
                pos += 1
                skipWhitespace()
                guard pos < end else { throw fail(.unexpectedEnd, at: end) }
                if byte(pos) == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    pos += 1
                    value = scanning ? .null : isObject ? .object(JSONObject(members: [], index: nil)) : .array([])
                } else {
                    frames.append(Frame(isObject: isObject, valueStart: values.count, keyStart: keys.count, index: nil))
                    if isObject { try memberKey() }
                    continue nextValue
                }
            case quote:
                let s = try string(building: !scanning)
                value = s.map { .string($0) } ?? .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let start = pos
                try number()
                value = scanning ? .null : .number(JSONNumber(unchecked: text(start, pos)))
            case UInt8(ascii: "t"): try literal("true"); value = .bool(true)
            case UInt8(ascii: "f"): try literal("false"); value = .bool(false)
            case UInt8(ascii: "n"): try literal("null"); value = .null
            default: throw fail(.unexpectedByte(b), at: pos)
            }

            // `value` is complete: hand it to its container, closing containers that end here.
            while true {
                let t = frames.count - 1
                guard t >= 0 else {
                    skipWhitespace()
                    guard pos == end else { throw fail(.trailingData, at: pos) }
                    return value
                }
                if scanning {
                    if t == 0 && frames[0].isObject { topRanges.append(memberStart..<pos) }
                } else {
                    values.append(value)
                }
                skipWhitespace()
                guard pos < end else { throw fail(.unexpectedEnd, at: end) }
                let c = byte(pos)
                let isObject = frames[t].isObject
                if c == UInt8(ascii: ",") {
                    pos += 1
                    if isObject {
                        skipWhitespace()
                        try memberKey()
                    }
                    continue nextValue
                }
                guard c == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) else {
                    throw fail(.unexpectedByte(c), at: pos)
                }
                pos += 1
                value = close(frames.removeLast())
            }
        }
    }

    /// Builds the container whose elements (and keys) sit at the top of the stacks, and pops them.
    mutating func close(_ f: Frame) -> JSONValue {
        defer {
            keys.removeSubrange(f.keyStart...)
            values.removeSubrange(f.valueStart...)
        }
        if scanning { return .null }
        guard f.isObject else {
            // The outermost array owns the whole stack: hand it over instead of copying it.
            if f.valueStart == 0 { return .array(swapOut(&values)) }
            return .array(Array(values[f.valueStart...]))
        }
        var members: [(key: String, value: JSONValue)] = []
        members.reserveCapacity(values.count - f.valueStart)
        for (k, v) in zip(keys[f.keyStart...], values[f.valueStart...]) { members.append((key: k, value: v)) }
        return .object(JSONObject(members: members, index: f.index))
    }

    func swapOut(_ a: inout [JSONValue]) -> [JSONValue] {
        var taken: [JSONValue] = []
        swap(&taken, &a)
        return taken
    }

    /// Reads `"key"` and the `:` after it, for the innermost (object) frame.
    mutating func memberKey() throws(JSONError) {
        guard pos < end else { throw fail(.unexpectedEnd, at: end) }
        guard byte(pos) == quote else { throw fail(.unexpectedByte(byte(pos)), at: pos) }
        let t = frames.count - 1
        let keyOffset = pos
        let topLevel = scanning && t == 0
        if !scanning || !allowDuplicateKeys || topLevel {
            let key = try string(building: true)!
            if !allowDuplicateKeys { try checkDuplicate(key, frame: t, at: keyOffset) }
            if !scanning || !allowDuplicateKeys { keys.append(key) }
            if topLevel { topKeys.append(key) }
        } else {
            _ = try string(building: false)
        }
        skipWhitespace()
        guard pos < end else { throw fail(.unexpectedEnd, at: end) }
        guard byte(pos) == UInt8(ascii: ":") else { throw fail(.unexpectedByte(byte(pos)), at: pos) }
        pos += 1
    }

    /// Linear for small objects, hashed from `indexThreshold` keys on, so the total is never quadratic.
    /// Swift's `Hasher` is seeded randomly per process, so colliding keys cannot be precomputed.
    mutating func checkDuplicate(_ key: String, frame t: Int, at offset: Int) throws(JSONError) {
        let start = frames[t].keyStart
        let position = keys.count - start
        if frames[t].index != nil {
            guard frames[t].index!.updateValue(position, forKey: key) == nil else {
                throw fail(.duplicateKey(key), at: offset)
            }
            return
        }
        for i in start..<keys.count where keys[i] == key { throw fail(.duplicateKey(key), at: offset) }
        if position + 1 > JSONObject.indexThreshold {
            var index = [String: Int](minimumCapacity: 2 * position)
            for i in start..<keys.count { index[keys[i]] = i - start }
            index[key] = position
            frames[t].index = index
        }
    }

    @inline(__always) func text(_ from: Int, _ to: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(start: p + from, count: to - from), as: UTF8.self)
    }

    mutating func literal(_ word: StaticString) throws(JSONError) {
        let w = word.utf8Start
        for k in 0..<word.utf8CodeUnitCount {
            guard pos + k < end else { throw fail(.unexpectedEnd, at: end) }
            guard byte(pos + k) == w[k] else { throw fail(.unexpectedByte(byte(pos + k)), at: pos + k) }
        }
        pos += word.utf8CodeUnitCount
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`; the error points where a digit was due.
    mutating func number() throws(JSONError) {
        @inline(__always) func isDigit(_ i: Int) -> Bool { i < end && byte(i) &- UInt8(ascii: "0") < 10 }
        var i = pos
        if byte(i) == UInt8(ascii: "-") { i += 1 }
        guard isDigit(i) else { throw fail(.invalidNumber, at: i) }
        if byte(i) == UInt8(ascii: "0") {
            i += 1
            if isDigit(i) { throw fail(.invalidNumber, at: i) }  // leading zero
        } else {
            while isDigit(i) { i += 1 }
        }
        if i < end && byte(i) == UInt8(ascii: ".") {
            i += 1
            guard isDigit(i) else { throw fail(.invalidNumber, at: i) }
            while isDigit(i) { i += 1 }
        }
        if i < end && byte(i) | 0x20 == UInt8(ascii: "e") {
            i += 1
            if i < end && (byte(i) == UInt8(ascii: "+") || byte(i) == UInt8(ascii: "-")) { i += 1 }
            guard isDigit(i) else { throw fail(.invalidNumber, at: i) }
            while isDigit(i) { i += 1 }
        }
        pos = i
    }

    /// The first index at or after `i` holding `"`, `\`, a control byte or a non-ASCII byte
    /// (or a position < 8 from the end); checks eight bytes per step.
    @inline(__always) func plainRunEnd(from i: Int) -> Int {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        var i = i
        while i + 8 <= end {
            let w = p.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            let q = w ^ (ones &* UInt64(quote))
            let s = w ^ (ones &* UInt64(backslash))
            // Classic SWAR "has byte less than n" / "has zero byte"; exact about whether any byte matches.
            let control = (w &- ones &* 0x20) & ~w
            let quoteOrBackslash = ((q &- ones) & ~q) | ((s &- ones) & ~s)
            if (control | quoteOrBackslash | w) & high != 0 { break }
            i += 8
        }
        return i
    }

    /// Reads the string whose opening quote is at `pos`; returns it decoded when `building`.
    mutating func string(building: Bool) throws(JSONError) -> String? {
        let start = pos + 1
        var i = start
        // Fast path: no escapes, so the result is the validated slice itself.
        while true {
            i = plainRunEnd(from: i)
            guard i < end else { throw fail(.unexpectedEnd, at: end) }
            let b = byte(i)
            if b == quote {
                pos = i + 1
                return building ? text(start, i) : nil
            }
            if b == backslash { break }
            if b < 0x20 { throw fail(.controlCharacterInString, at: i) }
            i = b < 0x80 ? i + 1 : try utf8Sequence(at: i)
        }
        // Escapes: copy validated runs and decoded escapes into one buffer, then make the String once.
        var buffer: [UInt8] = []
        if building {
            buffer.reserveCapacity(i - start + 32)
            buffer.append(contentsOf: UnsafeRawBufferPointer(start: p + start, count: i - start))
        }
        var run = i
        while true {
            i = plainRunEnd(from: i)
            guard i < end else { throw fail(.unexpectedEnd, at: end) }
            let b = byte(i)
            if b == quote || b == backslash {
                if building { buffer.append(contentsOf: UnsafeRawBufferPointer(start: p + run, count: i - run)) }
                if b == quote {
                    pos = i + 1
                    return building ? String(decoding: buffer, as: UTF8.self) : nil
                }
                i = try escape(at: i, into: &buffer, building: building)
                run = i
                continue
            }
            if b < 0x20 { throw fail(.controlCharacterInString, at: i) }
            i = b < 0x80 ? i + 1 : try utf8Sequence(at: i)
        }
    }

    /// Validates one multi-byte UTF-8 sequence starting at `i` (Unicode table 3-7: no overlongs,
    /// no UTF-16 surrogates, nothing above U+10FFFF) and returns the index after it.
    /// Errors point at the sequence's first byte.
    @inline(__always) func utf8Sequence(at i: Int) throws(JSONError) -> Int {
        let lead = byte(i)
        var lo: UInt8 = 0x80
        var hi: UInt8 = 0xBF
        let length: Int
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; lo = 0xA0
        case 0xED: length = 3; hi = 0x9F
        case 0xE1...0xEF: length = 3
        case 0xF0: length = 4; lo = 0x90
        case 0xF4: length = 4; hi = 0x8F
        case 0xF1...0xF3: length = 4
        default: throw fail(.invalidUTF8, at: i)
        }
        guard i + 1 < end else { throw fail(.unexpectedEnd, at: end) }
        let second = byte(i + 1)
        guard second >= lo && second <= hi else { throw fail(.invalidUTF8, at: i) }
        for k in 2..<length {
            guard i + k < end else { throw fail(.unexpectedEnd, at: end) }
            guard byte(i + k) & 0xC0 == 0x80 else { throw fail(.invalidUTF8, at: i) }
        }
        return i + length
    }

    /// Decodes the escape whose backslash is at `i`, appending its UTF-8 when `building`;
    /// returns the index after it. Errors point at the backslash.
    mutating func escape(at i: Int, into buffer: inout [UInt8], building: Bool) throws(JSONError) -> Int {
        guard i + 1 < end else { throw fail(.unexpectedEnd, at: end) }
        let decoded: UInt8
        switch byte(i + 1) {
        case quote: decoded = quote
        case backslash: decoded = backslash
        case UInt8(ascii: "/"): decoded = UInt8(ascii: "/")
        case UInt8(ascii: "b"): decoded = 0x08
        case UInt8(ascii: "f"): decoded = 0x0C
        case UInt8(ascii: "n"): decoded = 0x0A
        case UInt8(ascii: "r"): decoded = 0x0D
        case UInt8(ascii: "t"): decoded = 0x09
        case UInt8(ascii: "u"):
            var scalar = try hex4(at: i + 2, escapeAt: i)
            var next = i + 6
            if scalar & 0xFC00 == 0xDC00 { throw fail(.loneSurrogate, at: i) }
            if scalar & 0xFC00 == 0xD800 {
                // A high surrogate is only meaningful followed directly by an escaped low one.
                guard next < end else { throw fail(.unexpectedEnd, at: end) }
                guard byte(next) == backslash else { throw fail(.loneSurrogate, at: i) }
                guard next + 1 < end else { throw fail(.unexpectedEnd, at: end) }
                guard byte(next + 1) == UInt8(ascii: "u") else { throw fail(.loneSurrogate, at: i) }
                let low = try hex4(at: next + 2, escapeAt: next)
                guard low & 0xFC00 == 0xDC00 else { throw fail(.loneSurrogate, at: i) }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                next += 6
            }
            if building { appendUTF8(scalar, to: &buffer) }
            return next
        default:
            throw fail(.invalidEscape, at: i)
        }
        if building { buffer.append(decoded) }
        return i + 2
    }

    func hex4(at j: Int, escapeAt: Int) throws(JSONError) -> UInt32 {
        var v: UInt32 = 0
        for k in 0..<4 {
            guard j + k < end else { throw fail(.unexpectedEnd, at: end) }
            let c = byte(j + k)
            let digit: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c - UInt8(ascii: "A") + 10
            default: throw fail(.invalidUnicodeEscape, at: escapeAt)
            }
            v = v << 4 | UInt32(digit)
        }
        return v
    }

    func appendUTF8(_ s: UInt32, to buffer: inout [UInt8]) {
        switch s {
        case ..<0x80:
            buffer.append(UInt8(s))
        case ..<0x800:
            buffer.append(UInt8(0xC0 | s >> 6))
            buffer.append(UInt8(0x80 | s & 0x3F))
        case ..<0x10000:
            buffer.append(UInt8(0xE0 | s >> 12))
            buffer.append(UInt8(0x80 | s >> 6 & 0x3F))
            buffer.append(UInt8(0x80 | s & 0x3F))
        default:
            buffer.append(UInt8(0xF0 | s >> 18))
            buffer.append(UInt8(0x80 | s >> 12 & 0x3F))
            buffer.append(UInt8(0x80 | s >> 6 & 0x3F))
            buffer.append(UInt8(0x80 | s & 0x3F))
        }
    }
}
