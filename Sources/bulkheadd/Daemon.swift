// The daemon's wiring: command line, configuration, event loop, supervisor, signals.
import Config
import EventLoop
import Glibc
import Log
import Posix
import Sandbox
import Supervisor

enum Daemon {
    static let usage = """
        usage: bulkheadd [--config FILE]
               bulkheadd --check-config FILE
               bulkheadd --version | --help

          --config FILE        run with FILE (default \(defaultConfig))
          --check-config FILE  parse and validate FILE, print the result, exit 0 if it is good
        """
    static let defaultConfig = "/etc/bulkhead/bulkhead.conf"
    static let version = "bulkheadd 0.1.0"

    static func main(_ argv: [String]) -> Never {
        var configPath = defaultConfig
        var checkOnly = false
        var i = 1
        while i < argv.count {
            switch argv[i] {
            case "--help", "-h":
                print(usage)
                exit(0)
            case "--version":
                print(version)
                exit(0)
            case "--config", "--check-config":
                guard i + 1 < argv.count else { usageError("\(argv[i]) needs a file") }
                checkOnly = checkOnly || argv[i] == "--check-config"
                configPath = argv[i + 1]
                i += 2
            default:
                usageError("unknown argument \(argv[i])")
            }
        }
        let config = load(configPath)
        if checkOnly {
            print("\(configPath): configuration ok")
            exit(0)
        }
        do {
            try run(config)
            exit(0)
        } catch {
            fatal("bulkheadd: \(error)")
        }
    }

    static func load(_ path: String) -> Config {
        var env: [String: String] = [:]
        for key in ["REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD"] {
            if let v = getenv(key) { env[key] = String(cString: v) }
        }
        var cwd = [CChar](repeating: 0, count: Int(PATH_MAX))
        guard getcwd(&cwd, cwd.count) != nil else { fatal("bulkheadd: getcwd failed") }
        do {
            return try Config.load(path: path, environment: env, workingDirectory: String(cString: cwd))
        } catch {
            fatal(error.description)
        }
    }

    static func run(_ config: Config) throws {
        let log = Logger.standardError(minimum: .info)
        let loop = try EventLoop()
        let settings = supervisorSettings(config)
        // Nothing runs before the loop, so the loop thread is this one: set up on it.
        let supervisor = try Supervisor(loop: loop, settings: settings, log: log)
        var stopping = false
        try loop.handleSignals([SIGTERM, SIGINT]) { sig in
            guard !stopping else { return }
            stopping = true
            log.info("stopping", [("signal", .of(sig))])
            supervisor.shutdown(deadline: config.server.drainTimeout) {
                log.info("stopped")
                loop.stop()
            }
        }
        signal(SIGPIPE, SIG_IGN)
        log.info("started", [("version", .string(version)), ("workers", .string(settings.executable)),
                             ("volumes", .string(settings.volumesRoot))])
        try loop.run()
    }

    static func supervisorSettings(_ config: Config) -> SupervisorSettings {
        let w = config.workers
        let s = config.sandbox
        var policyFile: String?
        if case .file(let path) = s.seccomp { policyFile = path }
        return SupervisorSettings(
            executable: w.resolvedExecutable(daemonDirectory: executableDirectory()),
            volumesRoot: config.resolvedVolumesRoot, volumePrefix: config.volumes.prefix,
            autoCreateVolumes: config.volumes.autoCreate, maxWorkersPerTenant: w.maxPerTenant, queueLimit: w.queueSize,
            idleTimeout: w.idleTimeout, requestTimeout: w.requestTimeout, maxRequestsPerWorker: w.maxRequests,
            spawnTimeout: w.spawnTimeout, restartBackoffMax: w.restartBackoffMax,
            limits: ResourceLimits(memoryBytes: s.memoryLimit, cpuSeconds: s.cpuSeconds, processes: s.maxProcesses,
                                   openFiles: s.maxOpenFiles, fileSizeBytes: s.maxFileSize),
            seccompPolicyFile: policyFile,
            maxFramePayload: Int(config.server.maxBodyBytes) + 64 * 1024)
    }

    /// The directory of this executable, where the stock worker is installed beside it.
    static func executableDirectory() -> String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX))
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return "." }
        let path = String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
    }

    static func usageError(_ message: String) -> Never {
        writeStderr("bulkheadd: \(message)\n\(usage)\n")
        exit(2)
    }

    static func fatal(_ message: String) -> Never {
        writeStderr(message + "\n")
        exit(1)
    }
}

/// One write(2) to stderr (the C `stderr` global is not concurrency-safe in Swift 6).
func writeStderr(_ text: String) {
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}
