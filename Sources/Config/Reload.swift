// What a reload may change in a running daemon. Everything not listed here applies live
// (timeouts, limits, quotas, pool sizes, rlimits of new workers, CORS, log level); these
// keys need a restart, and a reload keeps their running values and names them.

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
        return (merged, needed)
    }
}
