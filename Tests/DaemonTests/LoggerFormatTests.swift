// A log record is one JSON object on one line: RFC 3339 UTC time with milliseconds,
// level, event, then the fields, escaped where they must be.
import Foundation
import Log
import Testing

@Suite struct LoggerFormatTests {
    @Test func aRecordIsOneJSONObjectWithItsFields() throws {
        let store = LogStore()
        let log = Logger.collecting(into: store)
        log.warning("odd \"event\"", [("text", .string("line\nbreak\t\u{1}é\\")), ("min", .int(Int64.min)), ("max", .int(Int64.max)),
                                      ("zero", 0), ("negative", -42), ("yes", .bool(true)), ("no", .bool(false))])
        log.debug("dropped below the level? no: collecting keeps debug")
        let lines = store.all
        #expect(lines.count == 2 && lines.allSatisfy { !$0.contains("\n") })
        let object = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(object["event"] as? String == "odd \"event\"" && object["level"] as? String == "warning")
        #expect(object["text"] as? String == "line\nbreak\t\u{1}é\\")
        #expect((object["min"] as? NSNumber)?.int64Value == Int64.min && (object["max"] as? NSNumber)?.int64Value == Int64.max)
        #expect(object["zero"] as? Int == 0 && object["negative"] as? Int == -42)
        #expect(object["yes"] as? Bool == true && object["no"] as? Bool == false)
        let time = try #require(object["time"] as? String)
        #expect(time.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/) != nil, "\(time)")
        let now = Date().timeIntervalSince1970
        let parsed = try #require(ISO8601DateFormatter.withFractionalSeconds.date(from: time)).timeIntervalSince1970
        #expect(abs(parsed - now) < 60)
    }
}

extension ISO8601DateFormatter {
    static var withFractionalSeconds: ISO8601DateFormatter {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }
}
