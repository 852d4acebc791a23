// `HTTPRequestParser`: the incremental HTTP/1.1 request parser; bytes in, `HTTPEvent`s out, no I/O.

/// A strict, incremental HTTP/1.1 request parser (RFC 9112) for one connection.
///
/// Feed it bytes as they arrive and pull events with `next()` until it returns nil. It refuses every
/// malformed or ambiguous request with an `HTTPParseError` carrying the status to answer with; the
/// connection must then be closed. docs/HTTP.md lists what is accepted and refused.
///
/// Cost is linear in the bytes fed however they are split: bytes are appended to one buffer, consumed
/// by advancing a read index, and the consumed prefix is dropped only once it is at least as long as
/// the rest. A head or trailer section is scanned from where the previous call stopped.
///
/// Memory is bounded as long as the caller drains `next()` after every `feed`: the buffer never holds
/// more than one feed plus the larger of `maxHeaderBytes` and `maxTrailerBytes` (body bytes are handed
/// out as they arrive, pipelined requests wait in the buffer until their turn).
public struct HTTPRequestParser: Sendable {
    private enum State: Sendable {
        case head
        case fixedBody
        case chunked
        /// The message is complete; the next call returns `.end`.
        case endPending
    }

    public let limits: HTTPLimits
    private var buffer: [UInt8] = []
    /// First byte not yet consumed. While a head or trailer section is being scanned it stays at the
    /// section's start.
    private var readIndex = 0
    private var state = State.head
    private var scanner = BlockScanner(kind: .head)
    private var chunk = ChunkDecoder()
    /// Bytes of a Content-Length body still to hand out.
    private var remaining = 0
    /// Set by the first error; from then on `next()` rethrows it and fed bytes are dropped.
    private var failure: HTTPParseError?

    /// Spare buffer capacity kept once everything is consumed; more (left by a large pipelined burst) is
    /// released so an idle connection does not pin memory.
    private static let retainedCapacity = 64 << 10

    public init(limits: HTTPLimits = .init()) {
        self.limits = limits.sanitized
    }

    /// Bytes fed but not yet consumed (an unfinished head counts until it is complete).
    public var bufferedByteCount: Int { buffer.count - readIndex }

    /// True between requests: nothing of a new request has been received yet. The server uses it to
    /// choose between the idle (keep-alive) timeout and the header-read timeout.
    public var isIdle: Bool {
        failure == nil && state == .head && scanner.isAtStart && readIndex == buffer.count
    }

    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        guard failure == nil, !bytes.isEmpty else { return }
        compactIfWorthwhile()
        buffer.append(contentsOf: bytes)
    }

    public mutating func feed(_ bytes: [UInt8]) {
        guard failure == nil, !bytes.isEmpty else { return }
        compactIfWorthwhile()
        buffer.append(contentsOf: bytes)
    }

    /// The next event, or nil when more bytes are needed. Pipelined requests follow each other: after
    /// `.end` the next call parses the next request's head from the bytes already fed. After it throws
    /// once, it keeps throwing the same error.
    public mutating func next() throws(HTTPParseError) -> HTTPEvent? {
        if let failure { throw failure }
        do {
            return try step()
        } catch {
            failure = error
            buffer = []
            readIndex = 0
            throw error
        }
    }

    private mutating func step() throws(HTTPParseError) -> HTTPEvent? {
        switch state {
        case .head:
            return try parseHead()
        case .fixedBody:
            let n = min(buffer.count - readIndex, remaining)
            guard n > 0 else { return nil }
            let bytes = Array(buffer[readIndex..<(readIndex + n)])
            readIndex += n
            remaining -= n
            if remaining == 0 { state = .endPending }
            return .body(bytes)
        case .chunked:
            return try stepChunked()
        case .endPending:
            finishMessage()
            return .end(trailers: HTTPHeaders())
        }
    }

    private mutating func parseHead() throws(HTTPParseError) -> HTTPEvent? {
        guard readIndex < buffer.count else { return nil }
        let base = readIndex
        let limits = self.limits
        let parsed: (HTTPRequestHead, BodyFraming)? = try buffer.withUnsafeBufferPointer {
            p throws(HTTPParseError) in
            guard
                try scanner.scan(
                    p, base: base, limit: limits.maxHeaderBytes, maxFields: limits.maxHeaderCount,
                    maxTarget: limits.maxTargetBytes)
            else { return nil }
            return try HeadSemantics.makeHead(p, base: base, scanner: scanner, limits: limits)
        }
        guard let (head, framing) = parsed else { return nil }
        readIndex = base + scanner.pos
        switch framing {
        case .none:
            state = .endPending
        case .length(let n):
            remaining = n
            state = .fixedBody
        case .chunked:
            chunk.reset()
            state = .chunked
        }
        return .head(head)
    }

    private mutating func stepChunked() throws(HTTPParseError) -> HTTPEvent? {
        while true {
            switch chunk.phase {
            case .data:
                let n = min(buffer.count - readIndex, chunk.remaining)
                guard n > 0 else { return nil }
                let bytes = Array(buffer[readIndex..<(readIndex + n)])
                readIndex += n
                chunk.consumed(n)
                return .body(bytes)
            case .trailers:
                return try parseTrailers()
            default:
                guard readIndex < buffer.count else { return nil }
                let start = readIndex
                let limits = self.limits
                readIndex = try buffer.withUnsafeBufferPointer { p throws(HTTPParseError) in
                    try chunk.consumeFraming(p, from: start, limits: limits)
                }
                if chunk.phase == .trailers { scanner.reset(kind: .trailers) }
            }
        }
    }

    private mutating func parseTrailers() throws(HTTPParseError) -> HTTPEvent? {
        guard readIndex < buffer.count else { return nil }
        let base = readIndex
        let limits = self.limits
        let trailers: HTTPHeaders? = try buffer.withUnsafeBufferPointer { p throws(HTTPParseError) in
            guard
                try scanner.scan(
                    p, base: base, limit: limits.maxTrailerBytes, maxFields: limits.maxHeaderCount, maxTarget: 0)
            else { return nil }
            try HeadSemantics.checkTrailers(p, base: base, fields: scanner.fields)
            return HeadSemantics.makeHeaders(p, base: base, rebase: 0, fields: scanner.fields)
        }
        guard let trailers else { return nil }
        readIndex = base + scanner.pos
        finishMessage()
        return .end(trailers: trailers)
    }

    /// Back to reading a head, at the next request's first byte (which may already be buffered).
    private mutating func finishMessage() {
        state = .head
        scanner.reset(kind: .head)
        if readIndex == buffer.count { resetBuffer() }
    }

    /// Everything consumed: empty the buffer in O(1), keeping a modest allocation for the next read.
    private mutating func resetBuffer() {
        buffer.removeAll(keepingCapacity: buffer.capacity <= Self.retainedCapacity)
        readIndex = 0
    }

    /// Drops the consumed prefix once it is at least as long as the unread rest (amortised O(1) per byte).
    /// Positions inside an unfinished section are relative to `readIndex`, so they survive the move.
    private mutating func compactIfWorthwhile() {
        guard readIndex > 0 else { return }
        if readIndex == buffer.count {
            resetBuffer()
        } else if readIndex >= buffer.count - readIndex {
            buffer.removeSubrange(0..<readIndex)
            readIndex = 0
        }
    }
}
