// An operator's own worker, built with WorkerKit (docs/WORKERS.md): business logic that
// keeps each tenant's configuration in the tenant's Dict and writes its results to files
// in the tenant's volume, all inside the sandbox. Point `[workers] executable` at it.
//
//   configure          data: {"prefix": "...", "uppercase": true}  → stored in the Dict
//   custom_processing  data: "some text"  → the text transformed by the tenant's
//                      configuration, also written to /results/<request id>.json
import Glibc
import JSON
import WorkerKit

var worker = Worker(agent: "custom-processing/1")

worker.register("configure") { request throws(TaskError) in
    guard case .object(let config)? = try? JSONParser.parse(request.body) else {
        throw .badRequest("the configuration must be a JSON object")
    }
    try request.dict().put("config", request.body, contentType: "application/json")
    return JSONValue.object(JSONObject([("configured", .array(config.members.map { .string($0.key) }))])).serialized()
}

worker.register("custom_processing") { request throws(TaskError) in
    guard let text = (try? JSONParser.parse(request.body))?.stringValue else { throw .badRequest("data must be a JSON string") }
    // The tenant's own configuration, from its Dict (defaults when it has none).
    var prefix = "", uppercase = false
    if let entry = try request.dict().get("config"), let config = try? JSONParser.parse(entry.value) {
        prefix = config["prefix"]?.stringValue ?? ""
        uppercase = config["uppercase"]?.boolValue ?? false
    }
    let result = prefix + (uppercase ? text.uppercased() : text)
    // Files are the tenant's volume: "/" is its root, nothing else is reachable.
    let path = "/results/\(request.requestID).json"
    let record = JSONValue.object(JSONObject([("input", .string(text)), ("result", .string(result))])).serialized()
    _ = mkdir("/results", 0o700)
    guard let file = fopen(path, "w") else { throw .failed("cannot write \(path): \(String(cString: strerror(errno)))") }
    let written = record.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
    guard fclose(file) == 0, written == record.count else { throw .failed("cannot write \(path)") }
    return JSONValue.object(JSONObject([("result", .string(result)), ("file", .string(path))])).serialized()
}

worker.run()
