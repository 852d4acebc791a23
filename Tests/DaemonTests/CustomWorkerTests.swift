// The example operator worker (Examples/CustomWorker) run by a real bulkheadd with
// `[workers] executable` pointing at it: its tasks use the tenant's Dict and write files
// in the tenant's volume, inside the sandbox, each tenant apart.
import Foundation
import Testing

@Suite(.serialized) struct CustomWorkerTests {
    @Test func theExampleKeepsConfigurationInTheDictAndWritesResultFiles() throws {
        let d = try Daemon(extra: "[workers]\nexecutable = \(buildDirectory)/bulkhead-example-worker")
        defer { d.cleanUp() }
        try d.start()
        let a = try d.tenant("acme"), b = try d.tenant("beta")
        func process(_ key: String, _ body: String) throws -> HTTPReply { try d.call(key: key, body: body) }

        let plain = try process(a, #"{"task":"custom_processing","data":"hello"}"#)
        #expect(plain.status == 200)
        #expect((plain.json["result"] as? [String: Any])?["result"] as? String == "hello")
        let configured = try process(a, #"{"task":"configure","data":{"prefix":"> ","uppercase":true}}"#)
        #expect((configured.json["result"] as? [String: Any])?["configured"] as? [String] == ["prefix", "uppercase"])
        let done = try process(a, #"{"task":"custom_processing","data":"hello"}"#)
        let result = try #require(done.json["result"] as? [String: Any])
        #expect(result["result"] as? String == "> HELLO")

        // The file is in acme's volume, written by acme's uid.
        let file = try #require(result["file"] as? String)
        let onDisk = d.volumes + "/tenant-acme-data" + file
        #expect(try String(contentsOfFile: onDisk, encoding: .utf8) == #"{"input":"hello","result":"> HELLO"}"#)
        let attrs = try FileManager.default.attributesOfItem(atPath: onDisk)
        #expect((attrs[.ownerAccountID] as? NSNumber)?.uint32Value == 240_000)
        // The file is also the tenant's through the files API.
        #expect(try raw(d, "GET", "/v1/files" + file, key: a).text == #"{"input":"hello","result":"> HELLO"}"#)
        // The configuration is the tenant's Dict entry, as the Dict API sees it.
        let config = try raw(d, "GET", "/v1/dict/config", key: a)
        #expect(config.status == 200 && config.header("Content-Type") == "application/json")

        // Beta has its own Dict: no configuration, so no transformation.
        let other = try process(b, #"{"task":"custom_processing","data":"hello"}"#)
        #expect((other.json["result"] as? [String: Any])?["result"] as? String == "hello")
        #expect(try raw(d, "GET", "/v1/dict/config", key: b).status == 404)
        // Tasks it does not register are unknown.
        #expect(try process(a, echo("1")).errorCode == "unknown_task")
        #expect(try process(a, #"{"task":"configure","data":[1]}"#).status == 400)
    }
}
