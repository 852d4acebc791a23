// The incremental decoder that turns arbitrary chunks of a byte stream into validated `Frame`s.

/// Buffers stream bytes and yields complete frames.
///
/// Bytes are appended at the end and consumed by advancing `readIndex`; the consumed prefix is only
/// dropped when it is at least as long as what remains, so each byte is moved at most once on
/// average and decoding stays linear however the stream is chunked.
///
/// Memory stays bounded as long as the caller drains `next()` until it returns nil after every
/// `feed`: the buffer then never holds more than one frame (header + `maxPayload`) plus one read.
public struct FrameDecoder: Sendable {
    /// Largest payload accepted; a header announcing more fails with `WireError.frameTooLarge`.
    public let maxPayload: Int

    private var buffer: [UInt8] = []
    /// Start of the first byte not yet returned in a frame.
    private var readIndex = 0
    /// The header at `readIndex`, once validated, so it is not re-parsed while the payload trickles in.
    private var pendingHeader: FrameHeader?
    /// Set by the first error; from then on `next()` rethrows it and fed bytes are discarded.
    private var failure: WireError?

    /// Buffers up to this much spare capacity after draining; a larger one (left by a big frame) is
    /// released so an idle connection does not pin megabytes.
    private static let retainedCapacity = 64 << 10

    public init(maxPayload: Int = Wire.defaultMaxPayload) {
        self.maxPayload = Swift.max(maxPayload, 0)
    }

    /// Bytes received but not yet returned as part of a frame.
    public var bufferedByteCount: Int { buffer.count - readIndex }

    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        guard failure == nil, !bytes.isEmpty else { return }
        compactIfWorthwhile()
        // Copied with memcpy, whatever type the caller's memory is bound to (and however the
        // build is optimised: appending a generic sequence goes byte by byte in debug builds).
        let piece = [UInt8](unsafeUninitializedCapacity: bytes.count) { destination, count in
            UnsafeMutableRawBufferPointer(destination).copyMemory(from: bytes)
            count = bytes.count
        }
        buffer.append(contentsOf: piece)
    }

    public mutating func feed(_ bytes: [UInt8]) {
        guard failure == nil, !bytes.isEmpty else { return }
        compactIfWorthwhile()
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame, nil if more bytes are needed. After it throws once, the decoder is
    /// poisoned and throws the same error again (the connection must be closed).
    public mutating func next() throws(WireError) -> Frame? {
        if let failure { throw failure }
        let header: FrameHeader
        if let pendingHeader {
            header = pendingHeader
        } else {
            guard bufferedByteCount >= Wire.headerSize else { return nil }
            do throws(WireError) {
                header = try FrameHeader.parse(buffer, at: readIndex)
                // Checked before waiting for (and so before buffering) the payload.
                guard UInt64(header.length) <= UInt64(maxPayload) else {
                    throw WireError.frameTooLarge(length: header.length, max: maxPayload)
                }
            } catch {
                poison(error)
                throw error
            }
            pendingHeader = header
        }
        let length = Int(header.length)
        guard bufferedByteCount - Wire.headerSize >= length else { return nil }

        let payloadStart = readIndex + Wire.headerSize
        let payload = Array(buffer[payloadStart..<(payloadStart + length)])
        readIndex = payloadStart + length
        pendingHeader = nil
        if readIndex == buffer.count { resetBuffer() }
        return Frame(type: header.type, flags: header.flags, requestID: header.requestID, payload: payload)
    }

    private mutating func poison(_ error: WireError) {
        failure = error
        // Nothing buffered can be used any more.
        buffer = []
        readIndex = 0
        pendingHeader = nil
    }

    /// Everything consumed: empty the buffer in O(1), keeping a modest allocation for the next read.
    private mutating func resetBuffer() {
        buffer.removeAll(keepingCapacity: buffer.capacity <= Self.retainedCapacity)
        readIndex = 0
    }

    /// Drops the consumed prefix once it is at least as long as the unread rest (amortised O(1) per byte).
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
