// Usage as clients and billing read it: one tenant's period summed up (the seed's
// `{"tenant_id", "requests_today", "compute_seconds", "storage_gb"}` and more), and the
// monthly export, one row per tenant per day, as CSV or JSON with the same columns.
import JSON
import Store

public enum UsagePeriod: Sendable, Equatable {
    case day(String)    // YYYY-MM-DD
    case month(String)  // YYYY-MM

    /// `day=YYYY-MM-DD` or `month=YYYY-MM` text, checked.
    public static func parse(day: String?, month: String?, today: String) -> UsagePeriod? {
        switch (day, month) {
        case (nil, nil): return .day(today)
        case (let d?, nil): return isDate(d, parts: 3) ? .day(d) : nil
        case (nil, let m?): return isDate(m, parts: 2) ? .month(m) : nil
        default: return nil
        }
    }

    public var text: String {
        switch self {
        case .day(let d): d
        case .month(let m): m
        }
    }

    /// The first and last day it covers (YYYY-MM-DD strings compare in date order).
    public var range: (from: String, to: String) {
        switch self {
        case .day(let d): (d, d)
        case .month(let m): (m + "-01", m + "-31")
        }
    }

    /// `YYYY-MM` (`parts` 2) or `YYYY-MM-DD` (`parts` 3) naming a real month or day of the
    /// proleptic Gregorian calendar (2026-02-29 is not one; 2028-02-29 is).
    public static func isDate(_ s: String, parts: Int) -> Bool {
        let p = s.split(separator: "-", omittingEmptySubsequences: false)
        guard p.count == parts, p.allSatisfy({ $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }),
              p[0].count == 4, let year = Int(p[0]), let month = Int(p[1]), p[1].count == 2, (1...12).contains(month) else { return false }
        if parts == 3 {
            guard p[2].count == 2, let d = Int(p[2]), (1...daysIn(month: month, of: year)).contains(d) else { return false }
        }
        return true
    }

    static func daysIn(month: Int, of year: Int) -> Int {
        switch month {
        case 2: year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}

extension UsageMeter {
    /// Whether any usage of `tenant` is kept, written or not: a tenant deleted without
    /// --purge is gone from the registry, not from billing.
    public func hasHistory(_ tenant: String) throws(StoreError) -> Bool {
        try !usage(tenant: tenant, from: "0000-01-01", to: "9999-12-31").isEmpty
    }
}

public enum UsageReport {
    /// The export's columns, in order.
    public static let columns = ["tenant_id", "day", "requests", "errors", "rate_limited", "bytes_in", "bytes_out",
                                 "compute_seconds", "storage_bytes"]

    /// One tenant's period: its rows summed, storage the last measured; `today` is
    /// today's row (for `requests_today`).
    public static func summary(tenant: String, period: UsagePeriod, rows: [UsageRow], today: UsageRow?) -> JSONValue {
        var total = UsageRow(tenantID: tenant, day: period.text, storageBytes: 0)
        for r in rows.sorted(by: { $0.day < $1.day }) { total.add(r) }
        return .object(JSONObject([
            ("tenant_id", .string(tenant)), ("period", .string(period.text)),
            ("requests", .number(JSONNumber(total.requests))), ("requests_today", .number(JSONNumber(today?.requests ?? 0))),
            ("errors", .number(JSONNumber(total.errors))), ("rate_limited", .number(JSONNumber(total.rateLimited))),
            ("bytes_in", .number(JSONNumber(total.bytesIn))), ("bytes_out", .number(JSONNumber(total.bytesOut))),
            ("compute_seconds", seconds(total.cpuMicros)),
            ("storage_gb", JSONNumber(Double(total.storageBytes ?? 0) / 1_073_741_824).map(JSONValue.number) ?? .null),
        ]))
    }

    public static func json(month: String, rows: [UsageRow]) -> JSONValue {
        .object(JSONObject([("month", .string(month)), ("columns", .array(columns.map(JSONValue.string))),
                            ("rows", .array(rows.map { r in .object(JSONObject(zip(columns, values(r)).map { ($0, $1) })) }))]))
    }

    /// RFC 4180 CSV: a header line, then one line per row, CRLF line ends.
    public static func csv(rows: [UsageRow]) -> String {
        var out = columns.joined(separator: ",") + "\r\n"
        for r in rows {
            out += values(r).map { v -> String in
                switch v {
                case .string(let s): return s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                    ? "\"" + s.replacingAll("\"", "\"\"") + "\"" : s
                default: return String(decoding: v.serialized(), as: UTF8.self)
                }
            }.joined(separator: ",") + "\r\n"
        }
        return out
    }

    static func values(_ r: UsageRow) -> [JSONValue] {
        [.string(r.tenantID), .string(r.day), .number(JSONNumber(r.requests)), .number(JSONNumber(r.errors)),
         .number(JSONNumber(r.rateLimited)), .number(JSONNumber(r.bytesIn)), .number(JSONNumber(r.bytesOut)),
         seconds(r.cpuMicros), .number(JSONNumber(r.storageBytes ?? 0))]
    }

    /// Microseconds as seconds with six decimals, exactly ("1.500000" is "1.5").
    static func seconds(_ micros: Int64) -> JSONValue {
        let whole = micros / 1_000_000, frac = micros % 1_000_000
        var text = String(whole)
        if frac != 0 {
            var f = String(frac)
            f = String(repeating: "0", count: 6 - f.count) + f
            while f.hasSuffix("0") { f.removeLast() }
            text += "." + f
        }
        return JSONNumber(text).map(JSONValue.number) ?? .null
    }
}

extension String {
    func replacingAll(_ a: Character, _ b: String) -> String {
        var out = ""
        for c in self { if c == a { out += b } else { out.append(c) } }
        return out
    }
}
