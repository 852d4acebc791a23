// The built-in Dict tasks every worker built with WorkerKit serves (bodies in
// Wire/DictCodec.swift). Custom tasks reach the same Dict with `request.dict()`.
import Wire

enum DictTasks {
    static var all: [(String, TaskHandler)] { [
        ("dict.get", { request throws(TaskError) in
            let key = String(decoding: request.body, as: UTF8.self)
            guard let entry = try request.dict().get(key) else { throw .notFound("no key \(printable(key)) in the dict") }
            return DictCodec.entry(contentType: entry.contentType, value: entry.value)
        }),
        ("dict.put", { request throws(TaskError) in
            guard let put = DictCodec.decodePut(request.body) else { throw .badRequest("malformed dict.put") }
            let before = TenantDict.diskBytes()
            let created = try request.dict().put(put.key, put.value, contentType: put.contentType)
            return Array("{\"created\":\(created),\"growth\":\(TenantDict.diskBytes() - before)}".utf8)
        }),
        ("dict.delete", { request throws(TaskError) in
            let key = String(decoding: request.body, as: UTF8.self)
            guard try request.dict().delete(key) else { throw .notFound("no key \(printable(key)) in the dict") }
            return Array("{\"deleted\":true}".utf8)
        }),
        ("dict.list", { request throws(TaskError) in
            guard let list = DictCodec.decodeList(request.body), (1...1000).contains(list.limit) else {
                throw .badRequest("malformed dict.list")
            }
            return DictCodec.keys(try request.dict().keys(prefix: list.prefix, after: list.after, limit: list.limit))
        }),
    ] }

    /// Keys go into messages as printable ASCII only, and short.
    static func printable(_ s: String) -> String {
        "\"" + String(String.UnicodeScalarView(s.unicodeScalars.prefix(64).map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F ? $0 : "?" })) + "\""
    }
}
