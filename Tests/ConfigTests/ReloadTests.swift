// What a reload may change: request body sizes apply live up to the limit the HTTP
// parser took at start, max(max_body_bytes, max_file_size); above it they need a restart.
import Testing
@testable import Config

@Suite struct ReloadTests {
    static func config(_ server: String = "", sandbox: String = "") throws -> Config {
        try parse("[server]\n\(server)\n[sandbox]\n\(sandbox)\n")
    }

    @Test func bodySizesAreLiveBelowTheStartUpLimit() throws {
        let started = try Self.config()  // 10 MiB bodies, 1 GiB files: the parser takes 1 GiB
        let (merged, needed) = started.reloaded(to: try Self.config("max_body_bytes = 64M", sandbox: "max_file_size = 512M"))
        #expect(needed.isEmpty)
        #expect(merged.server.maxBodyBytes == 64 << 20 && merged.sandbox.maxFileSize == 512 << 20)
        #expect(started.reloaded(to: try Self.config("max_body_bytes = 1G")).restartNeeded.isEmpty)  // the limit itself
    }

    @Test func aBodySizeAboveTheStartUpLimitNeedsARestart() throws {
        let started = try Self.config("max_body_bytes = 1M", sandbox: "max_file_size = 8M")
        let (merged, needed) = started.reloaded(to: try Self.config("max_body_bytes = 9M", sandbox: "max_file_size = 2G"))
        #expect(needed == ["[server] max_body_bytes (above the start-up limit of 8388608 bytes on request bodies)",
                           "[sandbox] max_file_size (above the start-up limit of 8388608 bytes on request bodies)"])
        #expect(merged.server.maxBodyBytes == 1 << 20 && merged.sandbox.maxFileSize == 8 << 20)  // running values kept
        // Lowering stays live.
        let lowered = started.reloaded(to: try Self.config("max_body_bytes = 4K", sandbox: "max_file_size = 0"))
        #expect(lowered.restartNeeded.isEmpty && lowered.config.server.maxBodyBytes == 4096 && lowered.config.sandbox.maxFileSize == 0)
    }
}
