// The API a task author sees: a request in, bytes or a typed error out.
import Glibc
import Wire

/// One request handed to a task.
public struct TaskRequest: ~Copyable {
    public let tenantID: String
    public let requestID: UInt64
    /// The request body: the `data` of the HTTP request, as JSON text. For a streamed
    /// request (the built-in `files.put`), only its first part: the rest comes from
    /// `nextChunk`.
    public let body: [UInt8]
    /// The body goes on in pieces after `body`.
    let streamed: Bool
    let connection: Connection

    /// The next piece of a streamed body, nil at its end. Throws `.cancelled` if the client
    /// went away meanwhile.
    func nextChunk() throws(TaskError) -> [UInt8]? {
        guard streamed, !ended.value else { return nil }
        let piece: (bytes: [UInt8], more: Bool)?
        do { piece = try connection.nextBodyChunk(of: requestID) } catch {
            Glibc.exit(error.clean ? 0 : 1)  // the supervisor is gone: nobody waits for this answer
        }
        guard let piece else { throw .cancelled }
        if !piece.more { ended.value = true }
        return piece.more || !piece.bytes.isEmpty ? piece.bytes : nil
    }
    let ended = Box(false)

    /// True once the supervisor has cancelled this request (its client went away). Long
    /// tasks should check it now and then and stop early by throwing `.cancelled`.
    public func isCancelled() -> Bool { connection.pollCancellation(of: requestID) }

    /// The tenant's Dict (opened on first use, inside the jail).
    public func dict() throws(TaskError) -> TenantDict { try TenantDict.shared() }
}

/// Why a task refused or failed; each maps to a stable error code on the wire.
public enum TaskError: Error, Sendable, Equatable {
    /// The input is wrong (HTTP 400).
    case badRequest(String)
    /// The thing asked for does not exist (HTTP 404).
    case notFound(String)
    /// The input is larger than allowed (HTTP 413).
    case tooLarge(String)
    /// A write would take the volume past the tenant's storage quota (HTTP 507).
    case quotaExceeded(String)
    /// The task gave up because the request was cancelled.
    case cancelled
    /// Anything else (HTTP 500). The message reaches the client: keep secrets out of it.
    case failed(String)
}

public typealias TaskHandler = (borrowing TaskRequest) throws(TaskError) -> [UInt8]

/// A built-in task that may stream its answer through `ResponseStream`; what it returns is
/// the whole answer when it did not start a stream.
typealias StreamingTaskHandler = (borrowing TaskRequest, ResponseStream) throws(TaskError) -> [UInt8]

/// A response sent as it is produced: RESPONSE with `more`, DATA frames, a last DATA.
final class ResponseStream {
    private let connection: Connection
    private let id: UInt64
    private(set) var started = false

    init(connection: Connection, id: UInt64) {
        self.connection = connection
        self.id = id
    }

    /// The largest body a RESPONSE frame can carry whole; a larger one must stream.
    var maxWholeBody: Int { connection.maxFrame - Response.overheadBytes }
    /// The largest piece one DATA frame can carry.
    var maxPiece: Int { connection.maxFrame }

    /// Sends the response head; `head` is the first part of the body.
    func start(head: [UInt8]) {
        started = true
        let usage = Usage.now()
        connection.send(.response(Response(cpuMicros: usage.cpuMicros, maxRSSKiB: usage.maxRSSKiB, body: head, streamed: true)),
                        requestID: id)
    }

    /// Sends a piece (blocking while the supervisor is behind); throws `.cancelled` once the
    /// request was cancelled.
    func write(_ bytes: [UInt8]) throws(TaskError) {
        connection.send(.data(bytes, more: true), requestID: id)
        do { try connection.flush() } catch { Glibc.exit(error.clean ? 0 : 1) }
        if connection.pollCancellation(of: id) { throw .cancelled }
    }
}

final class Box<T> {
    var value: T
    init(_ value: T) { self.value = value }
}
