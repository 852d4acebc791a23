// The daemon-wide operations the control plane can ask for (SPEC §9): reload the
// configuration, drain, and the figures `status` shows. bulkheadd implements them; the
// control commands only call them.

/// Why a reload was refused: the file's own `file:line: …` message.
public struct ReloadRefused: Error, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
}

public struct ReloadOutcome: Sendable {
    /// The configuration generation now in force (1 at start, one more per good reload).
    public let generation: Int
    /// Keys that changed in the file but need a restart; their running values are kept.
    public let restartNeeded: [String]

    public init(generation: Int, restartNeeded: [String]) {
        self.generation = generation
        self.restartNeeded = restartNeeded
    }
}

public protocol DaemonOperations: Sendable {
    /// Re-reads the configuration file and applies what can change live.
    func reload(trigger: String) throws(ReloadRefused) -> ReloadOutcome
    /// Stops taking new requests; those in flight finish; then the daemon exits.
    func drain()
    var configGeneration: Int { get }
    var openConnections: Int { get }
    var draining: Bool { get }
}
