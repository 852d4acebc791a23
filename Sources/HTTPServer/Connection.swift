// Connection: one client connection on its loop — read, parse, hand requests to the
// handler (whole, or as soon as the head is in for a streamed body), write responses in
// request order (pipelining), stream bodies both ways through `ByteChannel`s, enforce
// timeouts and backpressure.
import CBulkhead
import EventLoop
import Glibc
import HTTPParser
import Posix
import TLS

final class Connection {
    private let fd: FileDescriptor
    /// HTTPS: bytes go through this session; nil for plain HTTP.
    private let tls: TLSSession?
    /// The TLS handshake is not done yet: no HTTP until it is.
    private var handshaking: Bool
    /// TLS needs the socket writable to go on (a handshake or a read that must write).
    private var tlsWantsWrite = false
    /// TLS needs the socket readable to go on writing (SSL_write said WANT_READ).
    private var tlsWriteWantsRead = false
    let peer: String
    private unowned let context: LoopContext
    weak var server: HTTPServer?
    private var token: LoopToken?
    private var parser: HTTPRequestParser

    // The request being received.
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    /// Where the body of the request being received goes when its handler streams it.
    private var upload: (channel: ByteChannel, sequence: UInt64)?
    /// The upload's consumer is behind: reading waits until it has taken some.
    private var uploadBlocked = false
    /// A streamed response being written: its body comes from the channel as the socket
    /// takes it; `closing` once it is the last answer on the connection; `remaining` of the
    /// announced Content-Length still to come.
    private var download: (channel: ByteChannel, closing: Bool, remaining: Int)?

    /// Requests handed to the handler, in order; a slot gets its response when ready.
    private var slots: [(sequence: UInt64, exchange: HTTPExchange?, response: HTTPResponse?, isHead: Bool, safe: Bool)] = []
    /// A pipelined request that may not run beside those in flight (RFC 9112 §9.3.2: only
    /// safe methods are processed in parallel), dispatched once they are answered.
    private var held: (head: HTTPRequestHead, stream: Bool, body: [UInt8])?
    private var parsing = false
    private var nextSequence: UInt64 = 0

    private var output = OutputQueue()
    /// False once the connection is to close after the answers in flight: no more requests.
    private var acceptingRequests = true
    /// Backpressure: reading is paused while too much is in flight or unsent.
    private var paused = false
    private var wantWrite = false
    /// Everything is answered and the connection closes once the output is written.
    private var closeAfterWrite = false
    private var closed = false
    /// Closing after an error while the client may still be sending: our side is shut
    /// down for writing and what arrives is read and dropped for a moment, so the kernel
    /// does not reset the connection before the client has read our answer.
    private var lingering = false
    private var errorClose = false
    /// An upload is read to its end even when no further request will be.
    private var reading: Bool {
        guard !paused && !uploadBlocked && held == nil else { return false }
        if upload != nil { return true }
        return acceptingRequests && !slots.contains { $0.response == nil && !$0.safe }
    }

    /// What the current deadline is for, and when (loop clock). `sending`: a streamed
    /// response waits for the client to read.
    private enum Phase { case idle, head, body, busy, sending, lingering }
    private var phase = Phase.idle
    private var deadline: UInt64 = 0

    init(fd: consuming FileDescriptor, peer: String, context: LoopContext, tls: TLSSession? = nil) {
        self.fd = fd
        self.tls = tls
        self.handshaking = tls != nil
        self.peer = peer
        self.context = context
        self.server = context.server
        self.parser = HTTPRequestParser(limits: context.server?.settings.limits ?? HTTPLimits())
    }

    /// A connection over the limit gets a short 503 and is closed; it never holds a slot.
    static func refuseOverCapacity(_ fd: consuming FileDescriptor) {
        let body = #"{"error":{"code":"overloaded","message":"too many connections; retry"}}"#
        let text = Array(("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
            + "Connection: close\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body).utf8)
        _ = text.withUnsafeBytes { try? fd.send($0) }
    }

    func start() -> Bool {
        guard let t = try? context.loop.register(fd: fd.rawValue, interest: .readable, { [unowned self] events in self.ready(events) })
        else { return false }
        token = t
        setPhase(tls == nil ? .idle : .head)  // the handshake is bounded like a request head
        if server?.isDraining == true { startDraining() }
        return true
    }

    // MARK: Reading

    private func ready(_ events: IOEvents) {
        if lingering {
            discardInput()
            return
        }
        if handshaking { return continueHandshake() }
        if events.contains(.writable) {
            if tlsWantsWrite {
                tlsWantsWrite = false
                updateInterest()
                readAvailable()
            }
            flush()
        }
        if events.contains(.readable) && tlsWriteWantsRead && !closed {
            tlsWriteWantsRead = false
            updateInterest()
            flush()
        }
        if closed { return }
        // Readable while not reading since before this event: stop watching (updateInterest(lazy:)).
        let notReading = keptReadable
        if events.contains(.readable) || events.contains(.hangup) || events.contains(.error) { readAvailable() }
        if notReading && keptReadable && events.contains(.readable) && !closed { updateInterest() }
        // Reset, or shut both ways: nothing more comes in or goes out. The kernel reports
        // it until the socket is closed, reading or not, so it cannot wait.
        if !closed && (events.contains(.hangup) || events.contains(.error)) { abort(reason: "the connection was reset") }
    }

    private func continueHandshake() {
        guard let tls else { return }
        switch tls.handshake() {
        case .bytes:
            handshaking = false
            tlsWantsWrite = false
            setPhase(.idle)
            updateInterest()
            readAvailable()
        case .wantRead:
            tlsWantsWrite = false
            updateInterest()
        case .wantWrite:
            tlsWantsWrite = true
            updateInterest()
        case .closed, .failed:
            finish()  // not TLS, or a client that gave up: nothing to answer
        }
    }

    /// Bytes from the client into the read buffer: the count, 0 at its end, nil when
    /// nothing more is there now, -1 on failure.
    private func receive() -> Int? {
        if let tls {
            switch context.readBuffer.withUnsafeMutableBytes({ tls.read(into: $0) }) {
            case .bytes(let n): return n
            case .wantRead: return nil
            case .wantWrite:
                tlsWantsWrite = true
                updateInterest()
                return nil
            case .closed: return 0
            case .failed: return -1
            }
        }
        while true {
            let n = context.readBuffer.withUnsafeMutableBytes { Glibc.read(fd.rawValue, $0.baseAddress, $0.count) }
            if n >= 0 { return n }
            if errno == EINTR { continue }
            return errno == EAGAIN ? nil : -1
        }
    }

    private func readAvailable() {
        while reading && !closed {
            guard let n = receive() else { return }
            if n < 0 {
                abort(reason: "read failed")
                return
            }
            if n == 0 {
                // The client is gone (or half-closed): nobody will read our answers.
                abort(reason: "closed by the client")
                return
            }
            context.readBuffer.withUnsafeBytes { parser.feed(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
            parse()
            // Plain TCP: a short read drained the socket. TLS reads a record at a time,
            // and OpenSSL may hold more: read until it says it has nothing.
            if tls == nil && n < context.readBuffer.count { return }
        }
    }

    private func parse() {
        guard !parsing else { return }  // called back from inside a dispatch: the loop below goes on
        parsing = true
        defer { parsing = false }
        while reading && !closed {
            let event: HTTPEvent?
            do { event = try parser.next() } catch {
                refuse(.error(error.status, error.code, error.reason, close: true))
                return
            }
            guard let event else {
                if phase == .idle && !parser.isIdle { setPhase(.head) }
                return
            }
            switch event {
            case .head(let h):
                head = h
                body = []
                setPhase(h.hasBody ? .body : .busy)
                // Not while a streamed response is being written: it would land inside its body.
                if h.expectsContinue && slots.isEmpty && download == nil { output.append(Self.continueLine) ; flush() }
                if h.hasBody, server?.handler.streamsBody(h) == true {
                    head = nil
                    dispatchOrHold(h, stream: true, body: [])
                    continue
                }
                if let length = h.contentLength, length > maxBufferedBody {
                    refuse(.error(413, "body_too_large", "Content-Length exceeds the \(maxBufferedBody)-byte body limit", close: true))
                    return
                }
                // Grow with the bytes that arrive: a claimed length reserves no memory.
                if let length = h.contentLength { body.reserveCapacity(min(length, 64 * 1024)) }
            case .body(let bytes):
                if let upload {
                    setPhase(.body)  // a streamed body times out between reads, as nginx's client_body_timeout
                    if !upload.channel.write(bytes) {
                        uploadBlocked = true
                        deadline = .max  // waiting for our consumer, not for the client
                        updateInterest()
                    }
                    continue
                }
                body += bytes
                if body.count > maxBufferedBody {
                    refuse(.error(413, "body_too_large", "chunked body exceeds the \(maxBufferedBody)-byte limit", close: true))
                    return
                }
            case .end:
                if let upload {
                    upload.channel.finish()
                    self.upload = nil
                    afterDispatch(keepAlive: slots.last?.exchange?.head.keepAlive ?? false)
                    continue
                }
                guard let h = head else { continue }
                head = nil
                let complete = body
                body = []
                dispatchOrHold(h, stream: false, body: complete)
            }
        }
    }

    private var maxBufferedBody: Int { server?.settings.maxBufferedBody ?? Int.max }

    private static func isSafe(_ method: HTTPMethod) -> Bool { method == .get || method == .head || method == .options }

    /// Dispatches now, or holds the request until those in flight are answered when it or
    /// one of them is not safe (a PUT then a GET of the same file must run in that order).
    private func dispatchOrHold(_ head: HTTPRequestHead, stream: Bool, body: [UInt8]) {
        let waits = Self.isSafe(head.method) ? slots.contains { $0.response == nil && !$0.safe } : slots.contains { $0.response == nil }
        if waits {
            held = (head, stream, body)
            setPhase(.busy)  // waiting for us, not for the client
            updateInterest()
        } else {
            dispatch(head, stream: stream, body: body)
        }
    }

    /// Hands a request to the handler: complete, or (`stream`) with its body to come
    /// through a channel, read as fast as the handler takes it.
    private func dispatch(_ head: HTTPRequestHead, stream: Bool, body: [UInt8]) {
        guard let server else { return }
        let sequence = nextSequence
        nextSequence += 1
        var channel: ByteChannel?
        if stream {
            let c = ByteChannel(highWater: server.settings.streamWindow)
            c.onWritable(on: context.loop) { [weak self] in self?.uploadResumed() }
            upload = (c, sequence)
            channel = c
            setPhase(.body)
        }
        let exchange = HTTPExchange(head: head, body: stream ? [] : body, bodyStream: channel, peer: peer, loop: context.loop,
                                    connection: self, sequence: sequence)
        slots.append((sequence, exchange, nil, head.method == .head, Self.isSafe(head.method)))
        if !stream { afterDispatch(keepAlive: head.keepAlive) }
        server.handler.handle(exchange)
    }

    /// A request is in (its body too): whether to read on, and what to wait for.
    private func afterDispatch(keepAlive: Bool) {
        guard let server, !closed else { return }
        if !keepAlive || server.isDraining { stopReading() }
        if slots.count >= server.settings.maxPipelined || output.bytes >= server.settings.maxBufferedOutput { pauseReading() }
        if !slots.isEmpty { setPhase(.busy) }
        // An unsafe request in flight stops reading too. The socket stays watched until
        // something arrives meanwhile (then `ready` stops watching it, so it cannot wake
        // the loop every turn): a client that waits for its answer costs no epoll_ctl.
        updateInterest(lazy: true)
    }

    /// The upload's consumer took some of it (or wants no more): read on.
    private func uploadResumed() {
        guard uploadBlocked, !closed else { return }
        uploadBlocked = false
        setPhase(.body)
        updateInterest()
        parse()
    }

    /// A request that cannot be read on (bad framing, too large, too slow): answered with
    /// `response` and the connection closed. A streamed request cut short this way gets the
    /// answer in its own place; its handler's answer is dropped.
    private func refuse(_ response: HTTPResponse) {
        acceptingRequests = false
        errorClose = true
        updateInterest()
        guard let upload else {
            server?.handler.refused(status: response.status)
            return enqueueFinished(response)
        }
        upload.channel.fail()
        self.upload = nil
        uploadBlocked = false
        guard let i = slots.firstIndex(where: { $0.sequence == upload.sequence }), slots[i].response == nil else { return }
        slots[i].exchange?.onCancel?()
        slots[i].exchange = nil
        var r = response
        r.headers.append(("X-Request-Id", RequestIDGenerator.shared.next()))
        slots[i].response = r
        writeReady()
    }

    // MARK: Responses

    /// A handler's answer for request `sequence` (on the loop).
    func complete(_ sequence: UInt64, _ response: HTTPResponse) {
        guard !closed, let i = slots.firstIndex(where: { $0.sequence == sequence }), slots[i].response == nil else {
            response.stream?.channel.cancel()
            return
        }
        var r = response
        if let upload, upload.sequence == sequence {
            // Answered before its body was all in (refused early, say): the rest of the body
            // is not read, so the connection cannot carry another request.
            upload.channel.cancel()
            self.upload = nil
            uploadBlocked = false
            acceptingRequests = false
            errorClose = true
            r.close = true
            updateInterest()
        }
        slots[i].response = r
        slots[i].exchange = nil
        writeReady()
    }

    /// A response that needs no handler (parse errors), after those already queued.
    private func enqueueFinished(_ response: HTTPResponse) {
        let sequence = nextSequence
        nextSequence += 1
        var r = response
        r.headers.append(("X-Request-Id", RequestIDGenerator.shared.next()))
        slots.append((sequence, nil, r, false, true))
        writeReady()
    }

    /// Serialises the answered requests at the head of the line, in order.
    private func writeReady() {
        let date = context.date()
        while download == nil, let first = slots.first, let response = first.response {
            slots.removeFirst()
            let closing = response.close || (!acceptingRequests || (server?.isDraining ?? true)) && slots.isEmpty && upload == nil
            var headBytes: [UInt8] = []
            headBytes.reserveCapacity(256)
            response.serializeHead(into: &headBytes, date: date, closing: closing)
            output.append(headBytes)
            // A HEAD answer has the GET answer's headers, Content-Length included, and no body.
            if let stream = response.stream {
                if first.isHead {
                    stream.channel.cancel()
                } else {
                    download = (stream.channel, closing, stream.length)
                    stream.channel.onReadable(on: context.loop) { [weak self] in self?.pumpDownload() }
                    break  // what follows waits for this body
                }
            } else if !response.body.isEmpty && !first.isHead {
                output.append(response.body)
            }
            if closing {
                closeAfterAnswers()
                break
            }
        }
        flush()
        if !closed && slots.isEmpty && download == nil && upload == nil && acceptingRequests { setPhase(parser.isIdle ? .idle : .head) }
        resumeReadingIfRoom()
    }

    private func closeAfterAnswers() {
        acceptingRequests = false
        closeAfterWrite = true
        updateInterest()
        dropSlots()
    }

    /// Requests that will get no answer on this connection: the work of those unanswered
    /// is cancelled, and a streamed answer already there is cancelled too, which tells its
    /// worker to stop (dropped without it, the worker would wait for a reader forever).
    private func dropSlots() {
        let dropped = slots
        slots.removeAll()
        for slot in dropped {
            slot.exchange?.onCancel?()
            slot.response?.stream?.channel.cancel()
        }
    }

    /// Moves a streamed response body from its channel to the socket while the socket
    /// takes it; the channel's producer waits while we do not read.
    private func pumpDownload() {
        while let d = download, !closed {
            switch d.channel.read() {
            case .bytes(let bytes):
                // Content-Length frames the connection: a byte more would be read as the
                // start of the next response.
                guard bytes.count <= d.remaining else { return abort(reason: "the response body was longer than announced") }
                download?.remaining -= bytes.count
                output.append(bytes)
                if output.bytes >= (server?.settings.maxBufferedOutput ?? 1 << 20), !writeOutput() { return }
            case .empty:
                _ = writeOutput()
                return
            case .end:
                guard d.remaining == 0 else { return abort(reason: "the response body was cut short") }
                download = nil
                if d.closing { closeAfterAnswers() }
                writeReady()
                return
            case .failed:
                // The worker stopped mid-body: the client must not take a short body for a whole one.
                abort(reason: "the response body was cut short")
                return
            }
        }
    }

    private func flush() {
        guard writeOutput() else { return }
        if download != nil { pumpDownload() }
    }

    /// Writes what is queued; true once all of it is written.
    private func writeOutput() -> Bool {
        guard !closed else { return false }
        switch tls.map({ output.write(tls: $0) }) ?? output.write(to: fd.rawValue) {
        case .done:
            setWriteInterest(false)
            if download != nil { setPhase(.busy) }
            if closeAfterWrite && download == nil { errorClose ? linger() : finish() }
            return !closed
        case .wouldBlock:
            setWriteInterest(true)
            if download != nil { setPhase(.sending) }
            return false
        case .wantRead:
            // TLS must read before it can write on (not the socket's send buffer: waiting
            // for writable would wake at once, every turn).
            tlsWriteWantsRead = true
            updateInterest()
            if download != nil { setPhase(.sending) }
            return false
        case .failed:
            abort(reason: "write failed")
            return false
        }
    }

    // MARK: Flow control

    /// Backpressure: with too much unsent output or too many requests in flight, stop
    /// reading until the client has taken some.
    private func pauseReading() {
        guard !paused else { return }
        paused = true
        updateInterest()
    }

    /// After an answer: a held request may go now, and reading may resume.
    private func resumeReadingIfRoom() {
        guard !closed, let server else { return }
        if let h = held, !slots.contains(where: { $0.response == nil && (!$0.safe || !Self.isSafe(h.head.method)) }) {
            held = nil
            dispatch(h.head, stream: h.stream, body: h.body)
        }
        if paused, acceptingRequests, slots.count < server.settings.maxPipelined, output.bytes < server.settings.maxBufferedOutput {
            paused = false
        }
        updateInterest()
        if reading { parse() }  // pipelined requests already buffered
    }

    /// This request is the last one on the connection.
    private func stopReading() {
        acceptingRequests = false
        updateInterest()
    }

    private func setWriteInterest(_ on: Bool) {
        guard on != wantWrite else { return }
        wantWrite = on
        updateInterest()
    }

    private var interest: IOEvents = .readable  // as registered in start()
    /// Still registered for readable although not reading (`updateInterest(lazy:)`).
    private var keptReadable = false

    /// `lazy`: a readable interest no longer wanted is kept until the socket reports
    /// something (`ready` then drops it), which saves two epoll_ctl calls per request.
    private func updateInterest(lazy: Bool = false) {
        guard let token, !closed else { return }
        var wanted: IOEvents = []
        if handshaking {
            wanted = tlsWantsWrite ? .writable : .readable
        } else {
            if reading || tlsWriteWantsRead { wanted.insert(.readable) }
            if wantWrite || tlsWantsWrite { wanted.insert(.writable) }
        }
        let keep = lazy && !handshaking && !wanted.contains(.readable) && interest.contains(.readable)
        if keep { wanted.insert(.readable) }
        if !keep, wanted.contains(.readable), !interest.contains(.readable) || keptReadable, tls?.hasPending == true {
            // Decrypted bytes already inside OpenSSL: the socket will not say so.
            context.loop.executeSoon { [weak self] in self?.readAvailable() }
        }
        keptReadable = keep
        guard wanted != interest else { return }
        interest = wanted
        try? context.loop.setInterest(token, fd: fd.rawValue, wanted)
    }

    // MARK: Timeouts and draining

    private func setPhase(_ p: Phase) {
        guard let server else { return }
        phase = p
        let s = server.settings
        switch p {
        case .idle: deadline = context.loop.now &+ EventLoop.nanoseconds(s.keepaliveTimeout)
        case .head: deadline = context.loop.now &+ EventLoop.nanoseconds(s.headerTimeout)
        case .body: deadline = context.loop.now &+ EventLoop.nanoseconds(s.bodyTimeout)
        case .busy: deadline = .max  // the worker's request_timeout bounds it
        case .sending: deadline = context.loop.now &+ EventLoop.nanoseconds(s.bodyTimeout)
        case .lingering: deadline = context.loop.now &+ 2_000_000_000
        }
    }

    func checkDeadline(_ now: UInt64) {
        guard !closed, now >= deadline else { return }
        if handshaking { return finish() }  // a TLS handshake that did not finish in time: no HTTP to answer with
        switch phase {
        case .idle:
            finish()  // an idle keep-alive connection just goes
        case .head, .body:
            // Slow or stalled client: answer 408 and close.
            deadline = .max
            refuse(.error(408, "request_timeout",
                          phase == .head ? "the request head was not received in time" : "the request body was not received in time",
                          close: true))
        case .busy:
            break
        case .sending:
            abort(reason: "the client stopped reading a streamed response")
        case .lingering:
            finish()
        }
    }

    /// Idle connections close now; one with requests in flight answers them, the last
    /// with `Connection: close`; a half-received request is read to its end and answered.
    func startDraining() {
        guard !closed else { return }
        if slots.isEmpty && download == nil && parser.isIdle && output.bytes == 0 {
            finish()
        } else if !slots.isEmpty || download != nil {
            stopReading()
        }
    }

    // MARK: Closing

    /// The client went away or the socket failed: cancel what is in flight, close.
    private func abort(reason: String) {
        upload?.channel.fail()
        upload = nil
        download?.channel.cancel()
        download = nil
        dropSlots()
        finish()
    }

    private func linger() {
        guard !closed, let token else { return }
        lingering = true
        tls?.close()
        _ = shutdown(fd.rawValue, Int32(SHUT_WR))
        setPhase(.lingering)
        interest = .readable
        try? context.loop.setInterest(token, fd: fd.rawValue, .readable)
        discardInput()
    }

    private func discardInput() {
        while !closed {
            let n = context.readBuffer.withUnsafeMutableBytes { Glibc.read(fd.rawValue, $0.baseAddress, $0.count) }
            if n > 0 { continue }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { return }
            finish()  // the client closed too (or the socket failed)
        }
    }

    private func finish() {
        guard !closed else { return }
        upload?.channel.fail()
        download?.channel.cancel()
        dropSlots()
        if !lingering && !handshaking { tls?.close() }
        closed = true
        if let token { context.loop.deregister(token, fd: fd.rawValue) }
        token = nil
        context.closed(self)
    }

    static let continueLine = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
}

/// Response bytes waiting for the socket, written with writev (no copying into one buffer).
struct OutputQueue {
    private var chunks: [[UInt8]] = []
    private var offset = 0  // into chunks[0]
    private(set) var bytes = 0

    /// `wantRead`: TLS must read from the socket before it can write on.
    enum Result { case done, wouldBlock, wantRead, failed }

    mutating func append(_ chunk: [UInt8]) {
        guard !chunk.isEmpty else { return }
        chunks.append(chunk)
        bytes += chunk.count
    }

    /// Through TLS: up to 16 KiB of chunks (one record) at a time. What OpenSSL could not
    /// take is kept as it is and offered again, as SSL_write requires.
    private var record: [UInt8] = []
    private var recordSent = 0

    mutating func write(tls: TLSSession) -> Result {
        while true {
            if recordSent == record.count {
                record.removeAll(keepingCapacity: true)
                recordSent = 0
                while let first = chunks.first, record.count < 16 * 1024 {
                    let take = min(first.count - offset, 16 * 1024 - record.count)
                    record += first[offset..<(offset + take)]
                    offset += take
                    if offset == first.count {
                        chunks.removeFirst()
                        offset = 0
                    }
                }
                if record.isEmpty { return .done }
            }
            let r = record.withUnsafeBytes { tls.write(UnsafeRawBufferPointer(rebasing: $0[recordSent...])) }
            switch r {
            case .bytes(let n):
                recordSent += n
                bytes -= n
            case .wantWrite: return .wouldBlock
            case .wantRead: return .wantRead
            case .closed, .failed: return .failed
            }
        }
    }

    mutating func write(to fd: Int32) -> Result {
        while !chunks.isEmpty {
            let count = min(chunks.count, 64)
            var written = 0
            let n: Int = withIOVecs(count) { iov in writev(fd, iov, Int32(count)) }
            if n < 0 {
                if errno == EINTR { continue }
                return errno == EAGAIN ? .wouldBlock : .failed
            }
            written = n
            bytes -= written
            while written > 0 {
                let left = chunks[0].count - offset
                if written >= left {
                    written -= left
                    chunks.removeFirst()
                    offset = 0
                } else {
                    offset += written
                    written = 0
                }
            }
        }
        return .done
    }

    /// iovecs for the first `count` chunks (the first one from `offset`).
    private func withIOVecs<R>(_ count: Int, _ body: (UnsafePointer<iovec>) -> R) -> R {
        var iov = [iovec](repeating: iovec(), count: count)
        return withUnsafeChunkPointers(count, 0, &iov, body)
    }

    private func withUnsafeChunkPointers<R>(_ count: Int, _ i: Int, _ iov: inout [iovec], _ body: (UnsafePointer<iovec>) -> R) -> R {
        if i == count { return iov.withUnsafeBufferPointer { body($0.baseAddress!) } }
        return chunks[i].withUnsafeBytes { raw in
            let skip = i == 0 ? offset : 0
            iov[i] = iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress! + skip), iov_len: raw.count - skip)
            return withUnsafeChunkPointers(count, i + 1, &iov, body)
        }
    }
}
