// The supervisor's vocabulary: who a tenant is, how pools behave, and how a request can fail.
import EventLoop
import Sandbox
import Wire

/// A tenant as the supervisor needs it: its id and the ids its workers run as.
public struct TenantIdentity: Sendable, Hashable {
    public let id: String
    public let uid: UInt32
    public let gid: UInt32

    public init(id: String, uid: UInt32, gid: UInt32) {
        self.id = id
        self.uid = uid
        self.gid = gid
    }

    /// SPEC §5: `^[a-z0-9][a-z0-9-]{0,62}$`. Checked again here because the id becomes a
    /// path component of the volume.
    public static func isValid(id: String) -> Bool {
        let b = Array(id.utf8)
        guard (1...63).contains(b.count) else { return false }
        func ok(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) }
        return ok(b[0]) && b.dropFirst().allSatisfy { ok($0) || $0 == 0x2D }
    }
}

public struct SupervisorSettings: Sendable {
    /// The worker executable (the stock bulkhead-worker or an operator's WorkerKit build).
    public var executable: String
    /// Where volumes live; each tenant's is `<volumesRoot>/<volumePrefix>-<id>-data`.
    public var volumesRoot: String
    public var volumePrefix: String
    public var autoCreateVolumes: Bool
    public var maxWorkersPerTenant: Int
    /// Requests that may wait for a busy pool; beyond it, 503.
    public var queueLimit: Int
    public var idleTimeout: Duration
    public var requestTimeout: Duration
    /// A streamed response whose client takes none of it for this long is cancelled
    /// (the HTTP side's body_timeout); request_timeout does not run while it waits.
    public var streamStallTimeout: Duration
    /// Recycle a worker after this many requests (0 = never).
    public var maxRequestsPerWorker: Int
    /// A new worker must finish its jail and say HELLO within this.
    public var spawnTimeout: Duration
    /// Crash-loop backoff: the second consecutive failure waits `restartBackoffBase`,
    /// each further one twice as long, up to `restartBackoffMax`.
    public var restartBackoffBase: Duration
    public var restartBackoffMax: Duration
    /// How long a worker told GOAWAY may take to exit before it is killed.
    public var exitGrace: Duration
    public var limits: ResourceLimits
    public var seccompPolicyFile: String?
    public var maxFramePayload: Int
    /// Fork workers from a pre-started spawner process (fast) instead of exec'ing each.
    public var useSpawner: Bool
    /// Requests one worker may have in flight, answered in order (1 = one at a time).
    /// More amortises wake-ups and writes under load; an idle worker is always preferred.
    public var pipelineDepth: Int

    public init(executable: String, volumesRoot: String, volumePrefix: String = "tenant", autoCreateVolumes: Bool = true,
                maxWorkersPerTenant: Int = 4, queueLimit: Int = 64, idleTimeout: Duration = .seconds(60),
                requestTimeout: Duration = .seconds(30), streamStallTimeout: Duration = .seconds(60), maxRequestsPerWorker: Int = 0,
                spawnTimeout: Duration = .seconds(5), restartBackoffBase: Duration = .milliseconds(100),
                restartBackoffMax: Duration = .seconds(30), exitGrace: Duration = .seconds(5),
                limits: ResourceLimits, seccompPolicyFile: String? = nil, maxFramePayload: Int = Wire.defaultMaxPayload,
                useSpawner: Bool = true, pipelineDepth: Int = 16) {
        self.executable = executable
        self.volumesRoot = volumesRoot
        self.volumePrefix = volumePrefix
        self.autoCreateVolumes = autoCreateVolumes
        self.maxWorkersPerTenant = maxWorkersPerTenant
        self.queueLimit = queueLimit
        self.idleTimeout = idleTimeout
        self.requestTimeout = requestTimeout
        self.streamStallTimeout = streamStallTimeout
        self.maxRequestsPerWorker = maxRequestsPerWorker
        self.spawnTimeout = spawnTimeout
        self.restartBackoffBase = restartBackoffBase
        self.restartBackoffMax = restartBackoffMax
        self.exitGrace = exitGrace
        self.limits = limits
        self.seccompPolicyFile = seccompPolicyFile
        self.maxFramePayload = maxFramePayload
        self.useSpawner = useSpawner
        self.pipelineDepth = max(1, pipelineDepth)
    }

    /// The frame limit between supervisor and workers when HTTP bodies may be up to
    /// `bodyBytes`: such a body with room to spare for the other fields, and never below
    /// what a worker sends in one RESPONSE (a file smaller than `FilePath.streamFrom`;
    /// larger ones stream in 64 KiB DATA frames), however small `bodyBytes` is.
    public static func maxFramePayload(bodyBytes: UInt64) -> Int {
        let (sum, overflow) = max(Int(clamping: bodyBytes), FilePath.streamFrom).addingReportingOverflow(64 * 1024)
        return overflow ? Int.max : sum
    }

    /// Whether workers started under `other` are what these settings would start: the same
    /// executable, volume, rlimits, seccomp policy and frame size (a reload that changes
    /// none of them leaves running workers alone).
    func startsWorkersLike(_ other: SupervisorSettings) -> Bool {
        executable == other.executable && volumesRoot == other.volumesRoot && volumePrefix == other.volumePrefix
            && limits == other.limits && seccompPolicyFile == other.seccompPolicyFile && maxFramePayload == other.maxFramePayload
    }
}

/// One tenant's allowance for its workers' stderr, shared by them: lines logged (what
/// reaches the journal) and bytes read (what the supervisor's loop, which serves every
/// tenant, spends on it), each a token bucket refilled with time. Past the byte budget the
/// workers' pipes are not read until it refills: they fill, and the noisy worker's own
/// writes block. Confined to the supervisor's loop.
final class StderrBudget {
    static let linesPerSecond = 20.0
    static let lineBurst = 100.0
    static let bytesPerSecond = 64.0 * 1024
    static let byteBurst = 256.0 * 1024

    private var lines = lineBurst
    private var bytes = byteBurst
    private var at: UInt64
    /// Lines over the budget, not yet reported.
    var suppressed = 0
    /// Workers whose stderr waits for the byte budget, and the timer that resumes them.
    var waiting: [WorkerProcess] = []
    var resumeTimer: LoopToken?

    init(now: UInt64) { at = now }

    private func refill(_ now: UInt64) {
        let seconds = Double(now &- at) / 1e9
        at = now
        lines = min(Self.lineBurst, lines + seconds * Self.linesPerSecond)
        bytes = min(Self.byteBurst, bytes + seconds * Self.bytesPerSecond)
    }

    func bytesAllowed(_ now: UInt64) -> Int {
        refill(now)
        return Int(bytes)
    }

    func linesAllowed(_ now: UInt64) -> Int {
        refill(now)
        return Int(lines)
    }

    func spend(bytes n: Int) { bytes -= Double(n) }
    func spend(lines n: Int) { lines -= Double(n) }

    /// How long until `amount` bytes may be read (ns).
    func nanoseconds(untilBytes amount: Int, now: UInt64) -> UInt64 {
        refill(now)
        let missing = Double(amount) - bytes
        return missing <= 0 ? 0 : UInt64(missing / Self.bytesPerSecond * 1e9)
    }
}

/// Why a request got no response from a worker. The HTTP layer maps each to a status.
public enum WorkerFailure: Error, Sendable, Equatable {
    /// The worker died or broke the protocol mid-request (502 worker_crashed).
    case crashed(String)
    /// The request ran past request_timeout; the worker was killed (504 worker_timeout).
    case timedOut
    /// The pool and its queue are full (503 overloaded).
    case overloaded(retryAfterSeconds: Int)
    /// No worker can be started now: a crash loop is throttled, or the volume is missing
    /// (503 worker_unavailable).
    case unavailable(retryAfterSeconds: Int, reason: String)
    /// The worker answered with an error of its own (unknown task, bad input, ...).
    case task(ErrorMessage)
    /// The caller cancelled the request.
    case cancelled
    /// The supervisor is stopping (503 draining).
    case shuttingDown
    /// The tenant id is not a valid id.
    case invalidTenant
}

public typealias WorkerCompletion = (Result<Response, WorkerFailure>) -> Void

/// Names a submitted request so it can be cancelled.
public struct RequestTicket: Hashable, Sendable {
    let tenant: String
    let id: UInt64
}

/// A point-in-time view of the pools, for status output and tests.
public struct PoolSnapshot: Sendable, Equatable {
    public struct WorkerInfo: Sendable, Equatable {
        public let pid: Int32
        public let state: String
        public let requestsServed: Int
        public let inFlight: Int
        /// Since it was started.
        public var ageSeconds: Double = 0
        /// The kernel's count of its CPU time so far.
        public var cpuSeconds: Double = 0
        /// Resident set size now (/proc/PID/statm).
        public var rssKiB: Int = 0
        /// How long the oldest request it holds has run; nil when idle.
        public var requestAgeSeconds: Double?
    }
    public let tenant: String
    public let workers: [WorkerInfo]
    public let queued: Int
    public let consecutiveFailures: Int
    /// Nanoseconds (loop clock) until which no new worker is started; 0 when not throttled.
    public let throttledUntil: UInt64
}

/// Lifetime counters, for /metrics later and for tests.
public struct SupervisorCounters: Sendable, Equatable {
    public var spawned = 0
    public var spawnFailures = 0
    public var crashed = 0
    public var killedForTimeout = 0
    public var recycled = 0
    public var reapedIdle = 0
    public var exited = 0
}
