// `HTTPHeaders`: a header or trailer block kept as one byte array plus one array of field offsets.

/// Header (or trailer) fields in the order received, duplicates kept, names as received.
///
/// Names compare case-insensitively everywhere (lookup and `==`); values compare exactly. The fields
/// of a parsed request share one byte buffer and one offset array, and a `String` is only made when a
/// name or value is read, so parsing costs two allocations however many fields there are.
public struct HTTPHeaders: Sendable, Sequence, Equatable, CustomStringConvertible, ExpressibleByDictionaryLiteral {
    struct Field: Sendable {
        var nameStart: Int
        var nameEnd: Int
        var valueStart: Int
        var valueEnd: Int
    }

    private(set) var bytes: [UInt8]
    private(set) var fields: [Field]

    public init() {
        bytes = []
        fields = []
    }

    init(bytes: [UInt8], fields: [Field]) {
        self.bytes = bytes
        self.fields = fields
    }

    /// Fields in order; duplicates are kept. Nothing is validated: this is for building values to
    /// compare with, or headers to hand on, not for bytes from the network.
    public init(_ pairs: [(name: String, value: String)]) {
        self.init()
        for (name, value) in pairs { append(name: name, value: value) }
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init()
        for (name, value) in elements { append(name: name, value: value) }
    }

    /// Appends one field (not validated; see `init(_:)`).
    public mutating func append(name: String, value: String) {
        let nameStart = bytes.count
        bytes.append(contentsOf: name.utf8)
        let valueStart = bytes.count
        bytes.append(contentsOf: value.utf8)
        fields.append(Field(nameStart: nameStart, nameEnd: valueStart, valueStart: valueStart, valueEnd: bytes.count))
    }

    public var count: Int { fields.count }
    public var isEmpty: Bool { fields.isEmpty }
    public var underestimatedCount: Int { fields.count }

    /// The first value of the field called `name` (case-insensitive), nil if there is none.
    public subscript(_ name: String) -> String? {
        withNameBytes(name) { key in
            bytes.withUnsafeBufferPointer { p in
                for f in fields where Self.nameMatches(p, f, key) {
                    return ASCII.string(p, f.valueStart, f.valueEnd)
                }
                return nil
            }
        }
    }

    /// Every value of the field called `name` (case-insensitive), in order.
    public func values(_ name: String) -> [String] {
        withNameBytes(name) { key in
            bytes.withUnsafeBufferPointer { p in
                fields.filter { Self.nameMatches(p, $0, key) }.map { ASCII.string(p, $0.valueStart, $0.valueEnd) }
            }
        }
    }

    /// Whether a field called `name` (case-insensitive) is present.
    public func contains(_ name: String) -> Bool {
        withNameBytes(name) { key in
            bytes.withUnsafeBufferPointer { p in fields.contains { Self.nameMatches(p, $0, key) } }
        }
    }

    /// The field at `index` (0-based, in received order).
    public subscript(position index: Int) -> (name: String, value: String) {
        let f = fields[index]
        return bytes.withUnsafeBufferPointer { p in
            (ASCII.string(p, f.nameStart, f.nameEnd), ASCII.string(p, f.valueStart, f.valueEnd))
        }
    }

    public struct Iterator: IteratorProtocol {
        let headers: HTTPHeaders
        var index = 0

        public mutating func next() -> (name: String, value: String)? {
            guard index < headers.fields.count else { return nil }
            defer { index += 1 }
            return headers[position: index]
        }
    }

    public func makeIterator() -> Iterator { Iterator(headers: self) }

    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        guard lhs.fields.count == rhs.fields.count else { return false }
        return lhs.bytes.withUnsafeBufferPointer { l in
            rhs.bytes.withUnsafeBufferPointer { r in
                for (a, b) in zip(lhs.fields, rhs.fields) {
                    guard ASCII.equalsIgnoringCase(l, a.nameStart, a.nameEnd, r, b.nameStart, b.nameEnd),
                        a.valueEnd - a.valueStart == b.valueEnd - b.valueStart,
                        l[a.valueStart..<a.valueEnd].elementsEqual(r[b.valueStart..<b.valueEnd])
                    else { return false }
                }
                return true
            }
        }
    }

    public var description: String {
        "[" + map { "\($0.name): \($0.value)" }.joined(separator: ", ") + "]"
    }

    private static func nameMatches(_ p: UnsafeBufferPointer<UInt8>, _ f: Field, _ key: UnsafeBufferPointer<UInt8>)
        -> Bool
    {
        ASCII.equalsIgnoringCase(p, f.nameStart, f.nameEnd, key, 0, key.count)
    }

    private func withNameBytes<R>(_ name: String, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if let r = name.utf8.withContiguousStorageIfAvailable(body) { return r }
        return Array(name.utf8).withUnsafeBufferPointer(body)
    }
}
