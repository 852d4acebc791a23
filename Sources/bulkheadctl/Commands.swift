// What bulkheadctl can do, and how each answer is shown to a person.
import JSON

extension CLI {
    static let commands: [Command] = [
        Command(path: ["status"], synopsis: "status",
                summary: "Shows the daemon's state: uptime, configuration generation, connections, workers and queues per tenant, admission counters.",
                control: "status", positionals: [], options: [:], flags: [:]) { a in
            let pools = a["pools"]?.arrayValue ?? []
            let object = JSONObject((a.objectValue?.members ?? []).filter { $0.key != "pools" }.map { ($0.key, $0.value) })
            return renderObject(.object(object)) + "\n" + (pools.isEmpty ? "pools: (none)" : table(pools, ["tenant", "workers", "busy", "queued"]))
        },
        Command(path: ["reload"], synopsis: "reload",
                summary: "Re-reads the configuration file (as SIGHUP does): limits, timeouts, CORS and the log level change at once, workers are replaced as they finish; a bad file is refused and the running configuration kept.",
                control: "reload", positionals: [], options: [:], flags: [:]) { a in
            let needed = (a["restart_needed"]?.arrayValue ?? []).compactMap(\.stringValue)
            return "Reloaded: configuration generation \(a["generation"].map(plain) ?? "?")"
                + (needed.isEmpty ? "" : "\nNeeds a restart to change (running values kept): " + needed.joined(separator: ", "))
        },
        Command(path: ["workers", "list"], synopsis: "workers list [--tenant ID]",
                summary: "Lists the live workers: pid, tenant, state, age, requests served, requests in flight, CPU seconds (from the kernel), resident memory, and how long the current request has run.",
                control: "workers.list", positionals: [], options: ["tenant": "only this tenant's workers"], flags: [:]) { a in
            table(a["workers"]?.arrayValue ?? [], ["pid", "tenant", "state", "age_s", "requests", "in_flight", "cpu_s", "rss_kib", "request_age_s"])
        },
        Command(path: ["workers", "kill"], synopsis: "workers kill TENANT|PID",
                summary: "Kills one worker (by pid) or all of a tenant's workers at once (SIGKILL): the requests they hold get 502 worker_crashed; new workers start on demand.",
                control: "workers.kill", positionals: ["TARGET"], options: [:], flags: [:]) { a in
            "Killed \(a["killed"].map(plain) ?? "0") worker(s)"
        },
        Command(path: ["drain"], synopsis: "drain",
                summary: "Stops taking new connections and requests; those in flight are answered. /readyz answers 503 draining. Stop the daemon afterwards (systemctl stop bulkhead).",
                control: "drain", positionals: [], options: [:], flags: [:]) { _ in
            "Draining: no new requests are taken; stop the daemon once the load balancer has moved away."
        },
        Command(path: ["tenant", "create"], synopsis: "tenant create ID [--name NAME]",
                summary: "Creates a tenant: allocates its uid/gid, provisions its volume, issues its first API key.",
                control: "tenant.create", positionals: ["ID"], options: ["name": "a display name (default: the id)"],
                flags: [:]) { answer in
            "Created tenant: \(answer["tenant"]?["id"]?.stringValue ?? "?")\nAPI Key: \(answer["api_key"]?.stringValue ?? "?")"
        },
        Command(path: ["tenant", "list"], synopsis: "tenant list", summary: "Lists tenants.", control: "tenant.list",
                positionals: [], options: [:], flags: [:]) { answer in
            table(answer["tenants"]?.arrayValue ?? [], ["id", "name", "status", "uid", "created"])
        },
        Command(path: ["tenant", "show"], synopsis: "tenant show ID", summary: "Shows one tenant.", control: "tenant.show",
                positionals: ["ID"], options: [:], flags: [:], render: renderObject),
        Command(path: ["tenant", "suspend"], synopsis: "tenant suspend ID",
                summary: "Suspends a tenant: its requests get 403 tenant_suspended and its workers stop.",
                control: "tenant.suspend", positionals: ["ID"], options: [:], flags: [:]) { a in
            "Suspended tenant: \(a["id"]?.stringValue ?? "?")"
        },
        Command(path: ["tenant", "resume"], synopsis: "tenant resume ID", summary: "Resumes a suspended tenant.",
                control: "tenant.resume", positionals: ["ID"], options: [:], flags: [:]) { a in
            "Resumed tenant: \(a["id"]?.stringValue ?? "?")"
        },
        Command(path: ["tenant", "delete"], synopsis: "tenant delete ID [--purge]",
                summary: "Deletes a tenant: stops its workers and revokes its keys. With --purge, also deletes its volume (all its files and Dict) and its usage history.",
                control: "tenant.delete", positionals: ["ID"], options: [:],
                flags: ["purge": "also delete the volume and the usage history"]) { a in
            "Deleted tenant: \(a["id"]?.stringValue ?? "?")" + (a["purged"]?.boolValue == true ? " (volume purged)" : "")
        },
        Command(path: ["tenant", "backup"], synopsis: "tenant backup ID --out FILE",
                summary: "Writes the tenant's volume to FILE as a tar archive: its files as they are, and a consistent copy of its Dict (SQLite's online backup). FILE is created by bulkheadctl, never overwritten. A volume holding more than a restore accepts (the storage quota, sparse files counted whole) is refused. One backup or restore runs at a time.",
                control: "tenant.backup", positionals: ["ID"], options: ["out": "the archive to create"], flags: [:],
                file: .writes("out")) { a in
            "Backed up tenant \(a["id"].map(plain) ?? "?"): \(a["files"].map(plain) ?? "0") files, \(a["bytes"].map(plain) ?? "0") bytes"
                + ((a["skipped"]?.intValue ?? 0) > 0 ? " (\(a["skipped"].map(plain)!) links or special files left out)" : "")
                + ((a["left_out"]?.intValue ?? 0) > 0 ? " (\(a["left_out"].map(plain)!) entries left out: names a restore would refuse)" : "")
        },
        Command(path: ["tenant", "restore"], synopsis: "tenant restore ID FILE",
                summary: "Restores a tenant backup into the tenant's new or emptied volume, owned by the tenant's uid; the tenant's requests get 503 tenant_restoring until it ends. Archives with absolute paths, .., links, devices, or more than the storage quota are refused, and nothing is changed.",
                control: "tenant.restore", positionals: ["ID", "FILE"], options: [:], flags: [:], file: .reads("FILE")) { a in
            "Restored tenant \(a["id"].map(plain) ?? "?"): \(a["files"].map(plain) ?? "0") files, \(a["bytes"].map(plain) ?? "0") bytes"
        },
        Command(path: ["backup-state"], synopsis: "backup-state --out FILE",
                summary: "Writes a consistent copy of the daemon's SQLite state (tenants, keys, limits, usage, audit) to FILE, while it runs.",
                control: "backup-state", positionals: [], options: ["out": "the database file to create"], flags: [:],
                file: .writes("out")) { a in
            "State backed up: \(a["bytes"].map(plain) ?? "?") bytes"
        },
        Command(path: ["key", "issue"], synopsis: "key issue TENANT [--ttl DURATION] [--scope SCOPE]...",
                summary: "Issues another API key for a tenant.", control: "key.issue", positionals: ["TENANT"],
                options: ["ttl": "lifetime, e.g. 90d (default: no expiry)", "scope": "a scope (repeatable; default: all tenant scopes)"],
                flags: [:], repeated: ["scope"], render: renderKey),
        Command(path: ["key", "list"], synopsis: "key list TENANT", summary: "Lists a tenant's keys (never the tokens).",
                control: "key.list", positionals: ["TENANT"], options: [:], flags: [:]) { answer in
            table(answer["keys"]?.arrayValue ?? [], ["jti", "status", "scopes", "issued", "expires"])
        },
        Command(path: ["key", "revoke"], synopsis: "key revoke KEY_ID", summary: "Revokes a key at once.",
                control: "key.revoke", positionals: ["KEY_ID"], options: [:], flags: [:]) { a in
            "Revoked key: \(a["jti"]?.stringValue ?? "?")"
        },
        Command(path: ["key", "rotate"], synopsis: "key rotate KEY_ID [--grace DURATION] [--ttl DURATION]",
                summary: "Issues a replacement key; the old one keeps working for the grace period (default 24h), then is refused.",
                control: "key.rotate", positionals: ["KEY_ID"],
                options: ["grace": "how long the old key stays valid (default 24h)", "ttl": "lifetime of the new key"],
                flags: [:], render: renderKey),
        Command(path: ["admin-key", "issue"], synopsis: "admin-key issue [--name NAME] [--ttl DURATION]",
                summary: "Issues an admin API key.", control: "admin-key.issue", positionals: [],
                options: ["name": "who it is for (recorded in the audit log)", "ttl": "lifetime, e.g. 30d"],
                flags: [:], render: renderKey),
        Command(path: ["limits", "set"],
                synopsis: "limits set TENANT [--policy NAME] [--rate N/UNIT] [--burst N] [--shadow|--enforce] [--remove] [--concurrency N] [--compute-minutes-per-day N] [--storage-gb GB]",
                summary: "Changes a tenant's limits; they apply to its next request. --rate, --burst, --shadow and --enforce change the default policy, or with --policy add or change a named one: a request must be admitted by every policy. --shadow counts and logs what a policy would refuse but admits it.",
                control: "limits.set", positionals: ["TENANT"],
                options: ["policy": "the policy to change (default: default)", "rate": "sustained rate: N/second, N/minute, N/hour or N/day",
                          "burst": "requests allowed at once", "concurrency": "requests in flight at once on one host (0: no cap)",
                          "compute-minutes-per-day": "worker compute per UTC day", "storage-gb": "volume size in GiB"],
                flags: ["shadow": "decide and log, but admit", "enforce": "refuse what the policy does not admit",
                        "remove": "remove the policy (or the default policy's override)"],
                render: renderLimits),
        Command(path: ["limits", "show"], synopsis: "limits show TENANT",
                summary: "Shows the limits in force for a tenant, and where each comes from (config or tenant).",
                control: "limits.show", positionals: ["TENANT"], options: [:], flags: [:], render: renderLimits),
        Command(path: ["limits", "reset"], synopsis: "limits reset TENANT",
                summary: "Removes all of a tenant's own limits: the configuration's apply again.",
                control: "limits.reset", positionals: ["TENANT"], options: [:], flags: [:], render: renderLimits),
        Command(path: ["usage", "show"], synopsis: "usage show TENANT [--day YYYY-MM-DD | --month YYYY-MM]",
                summary: "Shows a tenant's usage (UTC): today by default, or one day, or one month.",
                control: "usage.show", positionals: ["TENANT"],
                options: ["day": "one day, YYYY-MM-DD", "month": "one month, YYYY-MM"], flags: [:], render: renderObject),
        Command(path: ["usage", "export"], synopsis: "usage export --month YYYY-MM [--format csv|json]",
                summary: "Prints the billing export for a month: one row per tenant per day (columns: tenant_id, day, requests, errors, rate_limited, bytes_in, bytes_out, compute_seconds, storage_bytes).",
                control: "usage.export", positionals: [],
                options: ["month": "the month, YYYY-MM", "format": "csv (default) or json"], flags: [:]) { answer in
            var text = answer["text"]?.stringValue ?? ""
            while text.last?.isNewline == true { text.removeLast() }
            return text
        },
        Command(path: ["audit"], synopsis: "audit [--tenant ID] [--limit N]",
                summary: "Shows the audit log, newest first.", control: "audit", positionals: [],
                options: ["tenant": "only entries about this tenant", "limit": "at most N entries (default 50)"],
                flags: [:]) { answer in
            table(answer["entries"]?.arrayValue ?? [], ["time", "actor", "action", "target", "result", "detail"])
        },
    ]

    static func renderLimits(_ a: JSONValue) -> String {
        func line(_ name: String, _ value: String, _ source: String) -> String {
            "\(name): \(value) (\(a[source]?.stringValue ?? "?"))"
        }
        let concurrency = a["concurrency"]?.intValue ?? 0
        return [
            "tenant: \(a["tenant"]?.stringValue ?? "?")",
            table(a["policies"]?.arrayValue ?? [], ["name", "rate", "burst", "mode", "source"]),
            line("concurrency", concurrency == 0 ? "no cap" : String(concurrency), "concurrency_source"),
            line("compute_minutes_per_day", a["compute_minutes_per_day"].map(plain) ?? "?", "compute_source"),
            line("storage_gb", a["storage_gb"].map(plain) ?? "?", "storage_source"),
            "compute_seconds_today: \(a["compute_seconds_today"].map(plain) ?? "?")",
            "in_flight: \(a["in_flight"].map(plain) ?? "?")",
        ].joined(separator: "\n")
    }

    static func renderKey(_ a: JSONValue) -> String {
        "API Key: \(a["api_key"]?.stringValue ?? "?")\nKey ID: \(a["jti"]?.stringValue ?? "?")"
    }

    /// `key: value` lines for a flat object (nested values as JSON).
    static func renderObject(_ a: JSONValue) -> String {
        guard let object = a.objectValue else { return String(decoding: a.serialized(), as: UTF8.self) }
        return object.members.map { "\($0.key): \(plain($0.value))" }.joined(separator: "\n")
    }

    static func plain(_ v: JSONValue) -> String {
        switch v {
        case .string(let s): return s
        case .null: return "-"
        default: return String(decoding: v.serialized(), as: UTF8.self)
        }
    }

    /// A column-aligned table of `rows` (objects), with the given columns.
    static func table(_ rows: [JSONValue], _ columns: [String]) -> String {
        if rows.isEmpty { return "(none)" }
        let cells = rows.map { row in columns.map { row[$0].map(plain) ?? "-" } }
        let widths = columns.indices.map { i in max(columns[i].count, cells.map { $0[i].count }.max() ?? 0) }
        func line(_ values: [String]) -> String {
            zip(values, widths).map { $0 + String(repeating: " ", count: $1 - $0.count) }.joined(separator: "  ")
                .trimmingTrailingSpaces()
        }
        return ([line(columns.map { $0.uppercased() })] + cells.map(line)).joined(separator: "\n")
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
