// The API a task author sees: a request in, bytes or a typed error out.

/// One request handed to a task.
public struct TaskRequest: ~Copyable {
    public let tenantID: String
    public let requestID: UInt64
    /// The request body: the `data` of the HTTP request, as JSON text.
    public let body: [UInt8]
    let connection: Connection

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
