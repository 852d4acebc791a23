// The daemon as its operator and systemd see it: reload (SIGHUP, `bulkheadctl reload`),
// drain, sd_notify (READY, STATUS, RELOADING, STOPPING) and the watchdog, which is fed
// only while every event loop still turns.
import Config
import Dispatcher
import EventLoop
import Glibc
import HTTPServer
import Log
import Posix
import RateLimit
import Supervisor
import Synchronization
import Systemd
import Tenants

final class Operator: DaemonOperations {
    let path: String
    /// The configuration the daemon started with: what needs a restart is compared to it.
    let started: Config
    private let state: Mutex<(generation: Int, current: Config)>
    /// One reload at a time, whoever asks.
    private let reloading = Mutex(())
    let server: HTTPServer
    let limits: LimitTable
    let cors: CORSPolicy
    let accessLog: AccessLogSwitch
    let log: Logger
    let supervisor: SupervisorLink
    let notifier: Notifier
    private let drainStarted = Atomic<Bool>(false)

    init(path: String, config: Config, server: HTTPServer, limits: LimitTable, cors: CORSPolicy, accessLog: AccessLogSwitch, log: Logger,
         supervisor: SupervisorLink, notifier: Notifier) {
        self.path = path
        self.started = config
        self.state = Mutex((1, config))
        self.server = server
        self.limits = limits
        self.cors = cors
        self.accessLog = accessLog
        self.log = log
        self.supervisor = supervisor
        self.notifier = notifier
    }

    var configGeneration: Int { state.withLock { $0.generation } }
    var current: Config { state.withLock { $0.current } }
    var openConnections: Int { server.openConnections }
    var draining: Bool { server.isDraining }

    // MARK: Reload

    func reload(trigger: String) throws(ReloadRefused) -> ReloadOutcome {
        try reloading.withLock { _ throws(ReloadRefused) -> ReloadOutcome in
            notifier.notify("RELOADING=1\nMONOTONIC_USEC=\(Posix.monotonicNanoseconds() / 1000)")
            let new: Config
            do throws(ConfigError) { new = try Daemon.readConfig(path) } catch {
                log.error("reload_refused", [("trigger", .string(trigger)), ("reason", .string(error.description))])
                notifier.notify("READY=1\nSTATUS=reload refused, running configuration kept: \(error.description)")
                throw ReloadRefused(error.description)
            }
            let (merged, restartNeeded) = started.reloaded(to: new)
            // New certificates first: a bad one refuses the whole reload.
            if server.usesTLS {
                do {
                    let tls = try Daemon.tlsContext(merged)
                    server.setTLS(tls)
                    log.info("tls_certificate", [("subject", .string(tls.certificateSubject)), ("not_after", .string(tls.certificateNotAfter))])
                } catch {
                    log.error("reload_refused", [("trigger", .string(trigger)), ("reason", .string("\(error)"))])
                    notifier.notify("READY=1\nSTATUS=reload refused, running configuration kept: \(error)")
                    throw ReloadRefused("\(error)")
                }
            }
            log.setMinimum(Daemon.logLevel(merged))
            server.reconfigure(Daemon.httpSettings(merged))
            limits.setDefaults(Daemon.limitDefaults(merged))
            cors.update(allowedOrigins: merged.cors.allowedOrigins)
            accessLog.set(merged.log.requests)
            supervisor.reconfigure(Daemon.supervisorSettings(merged))
            let generation = state.withLock { s -> Int in
                s.generation += 1
                s.current = merged
                return s.generation
            }
            log.info("reloaded", [("trigger", .string(trigger)), ("generation", .of(generation)),
                                  ("restart_needed", .string(restartNeeded.joined(separator: ", ")))])
            notifier.notify("READY=1\nSTATUS=" + status(generation: generation))
            return ReloadOutcome(generation: generation, restartNeeded: restartNeeded)
        }
    }

    // MARK: Drain

    /// No new connections and no new requests; those in flight are answered (with
    /// `Connection: close`); /readyz says draining. The daemon stays up until it is told
    /// to stop, which is then quick.
    func drain() {
        guard !drainStarted.exchange(true, ordering: .relaxed) else { return }
        log.info("draining", [("trigger", .string("bulkheadctl")), ("connections", .of(server.openConnections))])
        notifier.notify("STATUS=draining: no new requests")
        server.drain(deadline: current.server.drainTimeout) {}
    }

    // MARK: systemd

    func ready() {
        notifier.notify("READY=1\nSTATUS=" + status(generation: configGeneration))
    }

    func stopping() {
        notifier.notify("STOPPING=1\nSTATUS=stopping: finishing requests in flight")
    }

    private func status(generation: Int) -> String {
        "serving, \(server.openConnections) connections, configuration generation \(generation)"
    }

    /// STATUS= with live counts every few seconds, and WATCHDOG=1 at half of
    /// WATCHDOG_USEC, sent only if every loop in `loops` ran a task since the last one.
    func startReporting(on loop: EventLoop, loops: [EventLoop]) {
        guard notifier.isEnabled else { return }
        scheduleStatus(on: loop)
        guard let interval = Notifier.watchdogInterval() else { return }
        log.info("watchdog", [("interval_ms", .of(EventLoop.nanoseconds(interval) / 1_000_000))])
        feedWatchdog(on: loop, loops: loops, turned: Turned(count: loops.count), interval: interval)
    }

    /// Which loops ran the task posted to them since the last watchdog tick.
    private final class Turned: Sendable {
        let flags: Mutex<[Bool]>
        init(count: Int) { flags = Mutex([Bool](repeating: true, count: count)) }
    }

    private func feedWatchdog(on loop: EventLoop, loops: [EventLoop], turned: Turned, interval: Duration) {
        if turned.flags.withLock({ $0.allSatisfy { $0 } }) {
            notifier.notify("WATCHDOG=1")
        } else {
            log.warning("watchdog_withheld", [("reason", .string("an event loop did not turn within the watchdog interval"))])
        }
        turned.flags.withLock { $0 = [Bool](repeating: false, count: loops.count) }
        for (i, l) in loops.enumerated() {
            l.execute { turned.flags.withLock { $0[i] = true } }
        }
        _ = loop.schedule(after: interval) { [self] in feedWatchdog(on: loop, loops: loops, turned: turned, interval: interval) }
    }

    private func scheduleStatus(on loop: EventLoop) {
        _ = loop.schedule(after: .seconds(5)) { [self] in
            let generation = configGeneration, connections = server.openConnections, notifier = notifier
            let draining = server.isDraining
            supervisor.metrics { counters, pools in
                let workers = pools.reduce(0) { $0 + $1.workers.count }, queued = pools.reduce(0) { $0 + $1.queued }
                notifier.notify("STATUS=\(draining ? "draining" : "serving"), \(connections) connections, \(workers) workers "
                    + "for \(pools.count) tenants, \(queued) queued, \(counters.crashed) crashes, configuration generation \(generation)")
            }
            scheduleStatus(on: loop)
        }
    }
}
