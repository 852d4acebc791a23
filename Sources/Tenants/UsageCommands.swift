// The `usage` control commands: one tenant's usage for a day or a month, and the
// monthly billing export (CSV or JSON, the same rows as `GET /v1/admin/usage`).
import Glibc
import JSON
import Metering
import Store

extension AdminCommands {
    func usageShow(_ a: JSONObject) throws(CommandError) -> JSONValue {
        let tenant = try string(a, "TENANT")
        do throws(CommandError) { _ = try existing(tenant) } catch {
            guard error.code == .notFound, (try? meter.hasHistory(tenant)) == true else { throw error }  // deleted, not purged
        }
        let today = UsageMeter.day(clock())
        guard let period = UsagePeriod.parse(day: a["day"]?.stringValue, month: a["month"]?.stringValue, today: today) else {
            throw CommandError(.badRequest, "give --day YYYY-MM-DD or --month YYYY-MM, not both")
        }
        let range = period.range
        do {
            let rows = try meter.usage(tenant: tenant, from: range.from, to: range.to)
            let todays = try meter.usage(tenant: tenant, from: today, to: today)
            return UsageReport.summary(tenant: tenant, period: period, rows: rows, today: todays.first)
        } catch {
            throw storeError(error, "usage of \(tenant)")
        }
    }

    /// `{"format", "text"}`: bulkheadctl prints `text` as it is.
    func usageExport(_ a: JSONObject) throws(CommandError) -> JSONValue {
        guard let month = a["month"]?.stringValue, UsagePeriod.isDate(month, parts: 2) else {
            throw CommandError(.badRequest, "--month YYYY-MM is required")
        }
        let format = a["format"]?.stringValue ?? "csv"
        guard format == "csv" || format == "json" else { throw CommandError(.badRequest, "--format must be csv or json") }
        let range = UsagePeriod.month(month).range
        let rows: [UsageRow]
        do { rows = try meter.usage(tenant: nil, from: range.from, to: range.to) } catch { throw storeError(error, "usage") }
        let text = format == "csv" ? UsageReport.csv(rows: rows)
            : String(decoding: UsageReport.json(month: month, rows: rows).serialized(), as: UTF8.self) + "\n"
        return .object(JSONObject([("format", .string(format)), ("text", .string(text))]))
    }
}
