// Worker: the public entry point of a tenant worker executable — register tasks, then
// `run()` goes through pre-jail, jail and serve.
import Glibc
import Sandbox
import Wire

/// A tenant worker. Build one in `main.swift`, register tasks, call `run()`:
///
///     var worker = Worker(agent: "my-worker/1.0")
///     worker.register("hello") { request throws(TaskError) in Array("hi".utf8) }
///     worker.run()
public struct Worker {
    private var tasks: [String: StreamingTaskHandler] = [:]
    private var preJailHooks: [(String) throws -> Void] = []
    private let agent: String

    /// Exit statuses, documented in docs/SANDBOX.md.
    public enum ExitCode: Int32 {
        case clean = 0, protocolError = 1, usage = 2, jailFailed = 3, preJailFailed = 4
    }

    public init(agent: String = "bulkhead-worker") {
        self.agent = agent
        for (name, handler) in DictTasks.all + FileTasks.all { tasks[name] = Self.plain(handler) }
        for (name, handler) in FileTasks.streaming { tasks[name] = handler }
    }

    /// Registers task `name` (1–64 characters of a-z 0-9 _ . -).
    public mutating func register(_ name: String, _ handler: @escaping TaskHandler) {
        precondition(Request.isValidTask(name), "invalid task name \(name)")
        tasks[name] = Self.plain(handler)
    }

    /// A task that answers in one piece, as one that could stream.
    private static func plain(_ handler: @escaping TaskHandler) -> StreamingTaskHandler {
        func run(_ request: borrowing TaskRequest, _ stream: ResponseStream) throws(TaskError) -> [UInt8] { try handler(request) }
        return run
    }

    /// Runs before the jail, as root, outside the chroot, with the tenant id: load
    /// whatever initialises lazily (libraries, locale data) here, because nothing outside
    /// the volume is reachable afterwards.
    public mutating func beforeJail(_ hook: @escaping (_ tenantID: String) throws -> Void) {
        preJailHooks.append(hook)
    }

    /// Pre-jail, jail, serve; exits the process when the supervisor says GOAWAY or goes.
    public func run(arguments: [String] = CommandLine.arguments) -> Never {
        var arguments = arguments
        var template: (program: SeccompProgram, policyFile: String?)?
        // `--zygote --parent PID [--seccomp FILE]`: become the supervisor's spawner, with the
        // seccomp filter compiled once; returns in each new worker.
        if arguments.count >= 4, arguments[1] == "--zygote", arguments[2] == "--parent", let parent = Int32(arguments[3]) {
            let policyFile = arguments.count == 6 && arguments[4] == "--seccomp" ? arguments[5] : nil
            do { template = (try Jail.prepareTemplate(policyFile: policyFile), policyFile) } catch {
                fail(.preJailFailed, "spawner: \(error)")
            }
            arguments = Zygote.serve(supervisor: parent)
        }
        let args: WorkerArguments
        do { args = try WorkerArguments.parse(arguments) } catch { fail(.usage, "usage: \(error.message)") }

        // Pre-jail.
        let filter: SeccompProgram
        do {
            for hook in preJailHooks { try hook(args.spec.tenantID) }
            if let template, template.policyFile == args.spec.seccompPolicyFile {
                filter = try template.program.bound(to: getpid())
            } else {
                filter = try Jail.prepare(args.spec)
            }
        } catch {
            fail(.preJailFailed, "pre-jail failed: \(error)")
        }

        // Jail.
        do { try Jail.enter(args.spec, filter: filter) } catch { fail(.jailFailed, error.description) }
        // Uploads a worker of this tenant left when it died.
        TemporaryFiles.sweep()

        // Serve.
        let connection = Connection(fd: 3, maxFrame: args.maxFrame)
        do {
            try handshake(connection)
            try serve(connection, tenantID: args.spec.tenantID)
            exit(ExitCode.clean.rawValue)
        } catch {
            if error.clean { exit(ExitCode.clean.rawValue) }
            fail(.protocolError, error.reason)
        }
    }

    private func handshake(_ connection: Connection) throws(ConnectionClosed) {
        let hello = Hello(minVersion: Wire.supportedVersions.lowerBound, maxVersion: Wire.supportedVersions.upperBound,
                          pid: UInt32(getpid()), agent: agent)
        connection.send(.hello(hello), requestID: 0)
        let (reply, _) = try connection.receive()
        switch reply {
        case .hello(let theirs):
            guard Hello.negotiate(local: Wire.supportedVersions, remote: theirs) != nil else {
                throw ConnectionClosed(reason: "no common protocol version with the supervisor", clean: false)
            }
        case .error(let e):
            throw ConnectionClosed(reason: "supervisor refused the handshake: \(e.message)", clean: false)
        default:
            throw ConnectionClosed(reason: "expected HELLO, got \(reply.kind)", clean: false)
        }
    }

    private func serve(_ connection: Connection, tenantID: String) throws(ConnectionClosed) {
        while true {
            let (message, id) = try connection.receive()
            switch message {
            case .request(let request):
                var answer = connection.wasCancelled(id)
                    ? .error(ErrorMessage(code: .cancelled, message: "request cancelled"))
                    : perform(request, id: id, tenantID: tenantID, connection: connection)
                // An answer the supervisor would refuse as a frame (and take the worker for broken).
                if answer.payloadCount > connection.maxFrame {
                    answer = .error(ErrorMessage(code: .payloadTooLarge, message:
                        "the answer (\(answer.payloadCount) bytes) is larger than the largest frame (\(connection.maxFrame) bytes)"))
                }
                connection.finished(id)
                connection.send(answer, requestID: id)
                try connection.flushIfIdle()
            case .cancel, .data:
                break  // the request already finished; its answer is on the way (or it streamed)
            case .ping(let nonce):
                connection.send(.pong(nonce: nonce), requestID: id)
            case .goaway:
                try connection.flush()
                return
            default:
                throw ConnectionClosed(reason: "unexpected \(message.kind) frame", clean: false)
            }
        }
    }

    private func perform(_ request: Request, id: UInt64, tenantID: String, connection: Connection) -> Message {
        guard let handler = tasks[request.task] else {
            return .error(ErrorMessage(code: .unknownTask, message: "unknown task \"\(request.task)\""))
        }
        let before = Usage.now()
        let outcome: Result<[UInt8], TaskError>
        let stream = ResponseStream(connection: connection, id: id)
        do {
            let taskRequest = TaskRequest(tenantID: tenantID, requestID: id, body: request.body, streamed: request.streamed,
                                          connection: connection)
            outcome = .success(try handler(taskRequest, stream))
        } catch {
            outcome = .failure(error)
        }
        let after = Usage.now()
        switch outcome {
        case .success where stream.started:
            return .data([], more: false)  // the end of the streamed answer
        case .success(let body):
            return .response(Response(cpuMicros: after.cpuMicros &- before.cpuMicros, maxRSSKiB: after.maxRSSKiB, body: body))
        case .failure(.badRequest(let m)): return .error(ErrorMessage(code: .badRequest, message: m))
        case .failure(.notFound(let m)): return .error(ErrorMessage(code: .notFound, message: m))
        case .failure(.tooLarge(let m)): return .error(ErrorMessage(code: .payloadTooLarge, message: m))
        case .failure(.quotaExceeded(let m)): return .error(ErrorMessage(code: .storageQuotaExceeded, message: m))
        case .failure(.cancelled): return .error(ErrorMessage(code: .cancelled, message: "request cancelled"))
        case .failure(.failed(let m)): return .error(ErrorMessage(code: .taskFailed, message: m))
        }
    }

    private func fail(_ code: ExitCode, _ reason: String) -> Never {
        // One line on stderr: the supervisor logs it as the reason this worker stopped.
        let line = "bulkhead-worker: " + reason.replacingNewlines() + "\n"
        _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
        exit(code.rawValue)
    }
}

/// The worker's own resource use, reported with each response; metering trusts the
/// kernel's figures (/proc, wait4) over these.
struct Usage {
    var cpuMicros: UInt64
    var maxRSSKiB: UInt64

    static func now() -> Usage {
        var ru = rusage()
        getrusage(RUSAGE_SELF.rawValue, &ru)
        let us = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1_000_000 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec)
        return Usage(cpuMicros: UInt64(max(0, us)), maxRSSKiB: UInt64(max(0, ru.ru_maxrss)))
    }
}

extension String {
    fileprivate func replacingNewlines() -> String {
        String(map { $0 == "\n" || $0 == "\r" ? " " : $0 })
    }
}
