// Times as the control plane and the usage rows write them: UTC, fixed width.
import Glibc

public enum UTCTime {
    /// `YYYY-MM-DD` of `seconds` since the epoch.
    public static func date(_ seconds: Int64) -> String { date(fields(seconds)) }

    /// `YYYY-MM-DDTHH:MM:SSZ` (log records write theirs with milliseconds: Logger).
    public static func dateTime(_ seconds: Int64) -> String {
        let t = fields(seconds)
        return date(t) + "T\(pad(t.tm_hour, 2)):\(pad(t.tm_min, 2)):\(pad(t.tm_sec, 2))Z"
    }

    private static func date(_ t: tm) -> String {
        "\(pad(t.tm_year + 1900, 4))-\(pad(t.tm_mon + 1, 2))-\(pad(t.tm_mday, 2))"
    }

    private static func fields(_ seconds: Int64) -> tm {
        var t = time_t(seconds)
        var out = tm()
        gmtime_r(&t, &out)
        return out
    }

    private static func pad(_ v: Int32, _ width: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
}
