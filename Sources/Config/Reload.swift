// What a reload may change in a running daemon. Everything not listed here applies live
// (timeouts, limits, quotas, pool sizes, rlimits of new workers, CORS, log level); these
// keys need a restart, and a reload keeps their running values and names them. Request
// body sizes apply live up to the limit the HTTP parser took at start.

extension Config {
    /// `new` as it can apply to a daemon started with `self`, and the keys of `new` that
    /// differ but need a restart (kept at their running values).
    public func reloaded(to new: Config) -> (config: Config, restartNeeded: [String]) {
        var merged = new
        var needed: [String] = []
        func keep<T: Equatable>(_ name: String, _ path: WritableKeyPath<Config, T>) {
            guard self[keyPath: path] != new[keyPath: path] else { return }
            needed.append(name)
            merged[keyPath: path] = self[keyPath: path]
        }
        keep("[server] listen", \.server.listen)
        keep("[server] state_dir", \.server.stateDir)
        keep("[server] control_socket", \.server.controlSocket)
        keep("[server] admin_group", \.server.adminGroup)
        keep("[server] event_loops", \.server.eventLoops)
        keep("[auth]", \.auth)
        keep("[ratelimit] backend", \.rateLimit.backend)
        keep("[ratelimit] redis_url", \.rateLimit.redisURL)
        keep("[ratelimit] timeout", \.rateLimit.timeout)
        keep("[ratelimit] hosts", \.rateLimit.hosts)
        keep("[ratelimit] on_backend_error", \.rateLimit.onBackendError)
        keep("[volumes]", \.volumes)
        keep("[workers] executable", \.workers.executable)
        keep("[sandbox] uid_base", \.sandbox.uidBase)
        keep("[sandbox] uid_count", \.sandbox.uidCount)
        keep("[sandbox] seccomp", \.sandbox.seccomp)
        keep("[metrics] per_tenant", \.metrics.perTenant)
        // The HTTP parser's body limit is fixed at start: max(max_body_bytes, max_file_size).
        // Either may change live below it; above it, the running value is kept.
        let parserLimit = max(server.maxBodyBytes, sandbox.maxFileSize)
        func keepBelowParserLimit(_ name: String, _ path: WritableKeyPath<Config, UInt64>) {
            guard new[keyPath: path] > parserLimit else { return }
            needed.append("\(name) (above the start-up limit of \(parserLimit) bytes on request bodies)")
            merged[keyPath: path] = self[keyPath: path]
        }
        keepBelowParserLimit("[server] max_body_bytes", \.server.maxBodyBytes)
        keepBelowParserLimit("[sandbox] max_file_size", \.sandbox.maxFileSize)
        return (merged, needed)
    }
}
