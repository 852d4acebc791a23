// The stock worker's tasks: `echo` and `analyze`.
import JSON
import WorkerKit

enum StockWorker {
    static func main() -> Never {
        var worker = Worker(agent: "bulkhead-worker/1")
        worker.register("echo") { request throws(TaskError) in request.body }
        worker.register("analyze") { request throws(TaskError) in try analyze(request.body) }
        worker.run()
    }

    /// Text statistics of `data`: a JSON string is analysed as its text, any other JSON
    /// value as its compact serialisation.
    static func analyze(_ body: [UInt8]) throws(TaskError) -> [UInt8] {
        let value: JSONValue
        do { value = try JSONParser.parse(body) } catch { throw .badRequest("data is not valid JSON: \(error)") }
        let text = value.stringValue ?? String(decoding: value.serialized(), as: UTF8.self)
        let stats = TextStatistics(text)
        let top = stats.topWords(10).map { JSONValue.object(JSONObject([("word", .string($0.word)), ("count", .int($0.count))])) }
        let result = JSONValue.object(JSONObject([
            ("characters", .int(stats.characters)), ("words", .int(stats.words)), ("lines", .int(stats.lines)),
            ("top_words", .array(top)),
        ]))
        return result.serialized()
    }
}

struct TextStatistics {
    var characters = 0
    var words = 0
    var lines = 0
    private var counts: [String: Int] = [:]

    init(_ text: String) {
        characters = text.count
        var current = ""
        func endWord() {
            guard !current.isEmpty else { return }
            words += 1
            counts[current, default: 0] += 1
            current = ""
        }
        for ch in text {
            if ch.isLetter || ch.isNumber || ch == "'" {
                current.append(contentsOf: ch.lowercased())
            } else {
                endWord()
                if ch == "\n" || ch == "\r\n" { lines += 1 }
            }
        }
        endWord()
        // A last line without a newline still counts.
        if let last = text.last, last != "\n", last != "\r\n" { lines += 1 }
    }

    /// The `n` most frequent words, ties broken alphabetically so output is stable.
    func topWords(_ n: Int) -> [(word: String, count: Int)] {
        counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(n).map { ($0.key, $0.value) }
    }
}

extension JSONValue {
    static func int(_ i: Int) -> JSONValue { .number(JSONNumber(i)) }
}
