// The command table of bulkheadctl: parsing, help at every level, exit statuses
// (0 done, 1 refused or unreachable, 2 usage).
import Config
import Control
import Glibc
import JSON

/// A usage error: printed with the relevant help, exit status 2.
struct UsageError: Error {
    let message: String
    let help: String
}

/// One command: its words, its help, and how it turns options into a control request.
struct Command: Sendable {
    let path: [String]  // e.g. ["tenant", "create"]
    let synopsis: String
    let summary: String
    let control: String  // the control-socket command it sends
    /// Positional argument names, in order.
    let positionals: [String]
    /// Options taking a value (`--name VALUE`), and flags (`--purge`).
    let options: [String: String]
    let flags: [String: String]
    /// Option names that may be given more than once (values collected in an array).
    var repeated: Set<String> = []
    /// An argument naming a file this tool opens (with the caller's rights) and passes to
    /// the daemon: `.writes("out")` creates it (never over an existing file), `.reads("FILE")`.
    var file: FileArgument? = nil
    let render: @Sendable (JSONValue) -> String

    var help: String {
        var text = "usage: bulkheadctl [--socket PATH] [--json] \(synopsis)\n\n\(summary)\n"
        let all = options.map { ("--\($0.key) VALUE", $0.value) } + flags.map { ("--\($0.key)", $0.value) }
        if !all.isEmpty {
            text += "\noptions:\n"
            for (name, what) in all.sorted(by: { $0.0 < $1.0 }) {
                text += "  " + name + String(repeating: " ", count: max(2, 24 - name.count)) + what + "\n"
            }
        }
        return text
    }
}

enum FileArgument: Sendable {
    case writes(String), reads(String)
}

enum CLI {
    static let defaultSocket = "/run/bulkhead/control.sock"
    static let productionConfig = "/etc/bulkhead/bulkhead.conf"

    static var topHelp: String {
        var text = """
            usage: bulkheadctl [--socket PATH] [--json] COMMAND ...

            Administers a running bulkheadd through its control socket (root or the admin group).

              --socket PATH   the control socket (default: control_socket of \(productionConfig), else \(defaultSocket))
              --json          print the daemon's answer as JSON
              --help          this text; `bulkheadctl COMMAND --help` for a command

            commands:

            """
        for c in commands { text += "  " + c.synopsis + "\n" }
        return text
    }

    static func run(_ argv: [String]) -> Int32 {
        var args = argv
        var socket: String?
        var json = false
        // Global options come before the command.
        while let first = args.first, first.hasPrefix("-") {
            args.removeFirst()
            switch first {
            case "--help", "-h":
                print(topHelp, terminator: "")
                return 0
            case "--json": json = true
            case "--socket":
                guard let path = args.first else { return usage("--socket needs a path", topHelp) }
                socket = path
                args.removeFirst()
            default: return usage("unknown option \(first)", topHelp)
            }
        }
        guard !args.isEmpty else { return usage("no command given", topHelp) }

        // The longest command path that matches the words given.
        let candidates = commands.filter { Array(args.prefix($0.path.count)) == $0.path }
        guard let command = candidates.max(by: { $0.path.count < $1.path.count }) else {
            let group = commands.filter { $0.path.first == args[0] }
            if !group.isEmpty {
                let sub = args.count > 1 ? "unknown \(args[0]) command \(args[1])" : "\(args[0]) needs a subcommand"
                if args.count > 1 && (args[1] == "--help" || args[1] == "-h") {
                    print(groupHelp(args[0]), terminator: "")
                    return 0
                }
                return usage(sub, groupHelp(args[0]))
            }
            return usage("unknown command \(args[0])", topHelp)
        }
        let rest = Array(args.dropFirst(command.path.count))
        if rest.contains("--help") || rest.contains("-h") {
            print(command.help, terminator: "")
            return 0
        }
        let request: JSONObject
        do { request = try parse(rest, for: command) } catch {
            return usage(error.message, error.help)
        }
        var descriptor: Int32?
        var created: String?
        if let file = command.file {
            let (name, writes) = switch file { case .writes(let n): (n, true) case .reads(let n): (n, false) }
            guard let path = request[name]?.stringValue else { return usage("missing \(writes ? "--" + name : name)", command.help) }
            let fd = writes ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600) : open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                writeStderr("bulkheadctl: \(path): \(String(cString: strerror(errno)))\(writes && errno == EEXIST ? " (not overwritten)" : "")\n")
                return 1
            }
            descriptor = fd
            if writes { created = path }
        }
        defer { if let descriptor { close(descriptor) } }
        do {
            let answer = try ControlClient.call(socket: socket ?? configuredSocket(), command: command.control, arguments: request,
                                                descriptor: descriptor, timeoutSeconds: descriptor == nil ? 30 : 3600)
            if json {
                print(String(decoding: answer.serialized(), as: UTF8.self))
            } else {
                let text = command.render(answer)
                if !text.isEmpty { print(text) }
            }
            return 0
        } catch {
            if let created { unlink(created) }  // no half-written backup left behind
            writeStderr("bulkheadctl: \(error.description)\n")
            return 1
        }
    }

    static func groupHelp(_ word: String) -> String {
        var text = "usage: bulkheadctl [--socket PATH] [--json] \(word) SUBCOMMAND ...\n\nsubcommands:\n"
        for c in commands where c.path.first == word { text += "  " + c.synopsis + "\n" }
        return text
    }

    /// Options and positionals into the control request's JSON arguments.
    static func parse(_ words: [String], for command: Command) throws(UsageError) -> JSONObject {
        var members: [(String, JSONValue)] = []
        var positional: [String] = []
        var seen: Set<String> = []
        var collected: [String: [JSONValue]] = [:]
        var i = 0
        while i < words.count {
            let w = words[i]
            if w.hasPrefix("--") {
                let name = String(w.dropFirst(2))
                if command.flags[name] != nil {
                    guard seen.insert(name).inserted else { throw UsageError(message: "\(w) given twice", help: command.help) }
                    members.append((name, .bool(true)))
                    i += 1
                    continue
                }
                guard command.options[name] != nil else { throw UsageError(message: "unknown option \(w)", help: command.help) }
                guard i + 1 < words.count else { throw UsageError(message: "\(w) needs a value", help: command.help) }
                let value = words[i + 1]
                if command.repeated.contains(name) {
                    collected[name, default: []].append(.string(value))
                } else {
                    guard seen.insert(name).inserted else { throw UsageError(message: "\(w) given twice", help: command.help) }
                    members.append((name, try typed(name, value, command)))
                }
                i += 2
            } else {
                positional.append(w)
                i += 1
            }
        }
        for (name, values) in collected.sorted(by: { $0.key < $1.key }) { members.append((name, .array(values))) }
        guard positional.count <= command.positionals.count else {
            throw UsageError(message: "unexpected argument \(positional[command.positionals.count])", help: command.help)
        }
        guard positional.count == command.positionals.count else {
            throw UsageError(message: "missing \(command.positionals[positional.count])", help: command.help)
        }
        for (name, value) in zip(command.positionals, positional) { members.append((name, .string(value))) }
        return JSONObject(members)
    }

    /// Durations are sent in seconds and numbers as numbers, so the daemon checks values
    /// it understands, and a typo fails here with a usage error.
    static func typed(_ name: String, _ value: String, _ command: Command) throws(UsageError) -> JSONValue {
        switch name {
        case "ttl", "grace":
            do {
                let d = try ValueSyntax.duration(value)
                return .number(JSONNumber(Int64(d.components.seconds)))
            } catch {
                throw UsageError(message: "invalid duration \"\(value)\" for --\(name): expected e.g. 90d, 12h, 30m", help: command.help)
            }
        case "rate":
            do {
                let rate = try ValueSyntax.rate(value)
                return .object(JSONObject([("count", .number(JSONNumber(Int64(clamping: rate.count)))),
                                           ("period_seconds", .number(JSONNumber(Int64(rate.period.components.seconds))))]))
            } catch {
                throw UsageError(message: "invalid rate \"\(value)\" for --rate: expected N/second, N/minute, N/hour or N/day", help: command.help)
            }
        case "burst", "concurrency", "compute-minutes-per-day":
            guard let n = Int64(value), n >= 0 else {
                throw UsageError(message: "--\(name) must be a whole number", help: command.help)
            }
            return .number(JSONNumber(n))
        case "storage-gb":
            do { return .number(JSONNumber(try ValueSyntax.positiveDecimal(value)) ?? JSONNumber(0)) } catch {
                throw UsageError(message: "invalid size \"\(value)\" for --storage-gb: expected GiB such as 50 or 0.5", help: command.help)
            }
        case "limit":
            guard let n = Int(value), n > 0, n <= 100_000 else {
                throw UsageError(message: "--limit must be a number from 1 to 100000", help: command.help)
            }
            return .number(JSONNumber(n))
        default:
            return .string(value)
        }
    }

    /// The control socket named by the production configuration, if there is one.
    static func configuredSocket() -> String {
        guard access(productionConfig, R_OK) == 0,
              let config = try? Config.load(path: productionConfig, workingDirectory: "/") else { return defaultSocket }
        return config.server.controlSocket
    }

    static func usage(_ message: String, _ help: String) -> Int32 {
        writeStderr("bulkheadctl: \(message)\n\(help)")
        return 2
    }
}

func writeStderr(_ text: String) {
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}
