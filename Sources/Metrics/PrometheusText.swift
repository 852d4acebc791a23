// The Prometheus text exposition format (version 0.0.4): `# HELP` and `# TYPE` lines,
// then one `name{label="value",...} number` line per sample. Label values are escaped
// (backslash, double quote, newline); names are ours and fixed.
public struct PrometheusText: Sendable {
    public typealias Labels = [(String, String)]
    public private(set) var text = ""

    public init() {}

    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public mutating func counter(_ name: String, _ help: String, _ samples: [(Labels, Int)]) {
        header(name, help, "counter")
        for (labels, value) in samples { sample(name, labels, String(value)) }
    }

    public mutating func counter(_ name: String, _ help: String, _ value: Int) { counter(name, help, [([], value)]) }

    public mutating func gauge(_ name: String, _ help: String, _ samples: [(Labels, Int)]) {
        header(name, help, "gauge")
        for (labels, value) in samples { sample(name, labels, String(value)) }
    }

    public mutating func gauge(_ name: String, _ help: String, _ value: Int) { gauge(name, help, [([], value)]) }

    /// `buckets`: upper bounds in ascending order with the count of observations at or
    /// below each (cumulative); `+Inf` is added as `count`.
    public mutating func histogram(_ name: String, _ help: String, buckets: [(Double, Int)], sum: Double, count: Int) {
        header(name, help, "histogram")
        for (le, n) in buckets { sample(name + "_bucket", [("le", Self.number(le))], String(n)) }
        sample(name + "_bucket", [("le", "+Inf")], String(count))
        sample(name + "_sum", [], Self.number(sum))
        sample(name + "_count", [], String(count))
    }

    private mutating func header(_ name: String, _ help: String, _ type: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    private mutating func sample(_ name: String, _ labels: Labels, _ value: String) {
        text += name
        if !labels.isEmpty {
            text += "{" + labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
        }
        text += " " + value + "\n"
    }

    static func escape(_ value: String) -> String {
        var out = ""
        for c in value {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }

    /// Shortest exact decimal form ("0.005", "1", "2.5").
    static func number(_ x: Double) -> String {
        if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
        return "\(x)"
    }
}
