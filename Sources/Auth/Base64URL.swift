// Owns base64url (RFC 4648 §5) without padding: the encoder for issued tokens and the strict decoder for received ones.

enum Base64URL {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Byte → 6-bit value, or 0xFF for bytes outside the alphabet ('=', '+', '/', whitespace, non-ASCII).
    private static let values: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()

    static func encode(_ bytes: some Collection<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        encode(bytes, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func encode(_ bytes: some Collection<UInt8>, into out: inout [UInt8]) {
        var it = bytes.makeIterator()
        while let b0 = it.next() {
            let b1 = it.next()
            let b2 = it.next()
            out.append(alphabet[Int(b0 >> 2)])
            out.append(alphabet[Int((b0 & 0x03) << 4 | (b1 ?? 0) >> 4)])
            guard let b1 else { break }
            out.append(alphabet[Int((b1 & 0x0F) << 2 | (b2 ?? 0) >> 6)])
            guard let b2 else { break }
            out.append(alphabet[Int(b2 & 0x3F)])
        }
    }

    /// The bytes of a canonical unpadded base64url text, or nil. Refused: any byte outside
    /// [A-Za-z0-9_-] (so '=' padding too), a length ≡ 1 (mod 4), and non-zero unused bits in the
    /// last character; so each byte string has exactly one accepted encoding, and a token cannot
    /// be altered without changing its signing input.
    static func decode(_ text: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        let n = text.count
        let tail = n & 3
        guard tail != 1 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(n / 4 * 3 + 2)
        return values.withUnsafeBufferPointer { v -> [UInt8]? in
            var i = 0
            while i + 4 <= n {
                let a = v[Int(text[i])], b = v[Int(text[i + 1])], c = v[Int(text[i + 2])], d = v[Int(text[i + 3])]
                // Every valid value is < 64, so one OR tells whether any of the four was 0xFF.
                guard (a | b | c | d) & 0xC0 == 0 else { return nil }
                out.append(a << 2 | b >> 4)
                out.append(b << 4 | c >> 2)
                out.append(c << 6 | d)
                i += 4
            }
            if tail == 2 {
                let a = v[Int(text[i])], b = v[Int(text[i + 1])]
                guard (a | b) & 0xC0 == 0, b & 0x0F == 0 else { return nil }
                out.append(a << 2 | b >> 4)
            } else if tail == 3 {
                let a = v[Int(text[i])], b = v[Int(text[i + 1])], c = v[Int(text[i + 2])]
                guard (a | b | c) & 0xC0 == 0, c & 0x03 == 0 else { return nil }
                out.append(a << 2 | b >> 4)
                out.append(b << 4 | c >> 2)
            }
            return out
        }
    }
}
