// StructureTests.swift: sections, keys, lines and syntax: what inih and the reader see.

import Glibc
import Testing
@testable import Config

@Suite struct Structure {
    @Test(arguments: [
        // Unknown sections, with and without keys.
        ("[server]\nlisten = 127.0.0.1:9000\n[sever]\n", "test.conf:3: unknown section [sever]"),
        ("; comment\n[sever]\nlisten = 127.0.0.1:9000\n", "test.conf:2: unknown section [sever]"),
        ("[Server]\n", "test.conf:1: unknown section [Server]"),
        ("[ server ]\n", "test.conf:1: unknown section [ server ]"),
        ("[]\n", "test.conf:1: unknown section []"),
        ("[server] listen = 1\n", "test.conf:1: unexpected text after [server]"),
        // Unknown keys; keys are case-sensitive.
        ("[server]\nlisen = 127.0.0.1:9000\n", #"test.conf:2: unknown key "lisen" in [server]"#),
        ("[server]\nListen = 127.0.0.1:9000\n", #"test.conf:2: unknown key "Listen" in [server]"#),
        ("[auth]\nlisten = 127.0.0.1:9000\n", #"test.conf:2: unknown key "listen" in [auth]"#),
        ("[server]\nmax body = 1\n", #"test.conf:2: unknown key "max body" in [server]"#),
        ("listen = 127.0.0.1:9000\n[server]\n", #"test.conf:1: key "listen" is outside any section"#),
        ("[server]\n= 127.0.0.1:9000\n", #"test.conf:2: missing key name before "=""#),
        // Duplicates, also across a repeated section header.
        ("[ratelimit]\nburst = 5\n\nrate = 10/s\nbackend = memory\nrate = 20/s\n",
         #"test.conf:6: duplicate key "rate" in [ratelimit] (first set on line 4)"#),
        ("[server]\nlisten = 127.0.0.1:1\n[auth]\nissuer = x\n[server]\nlisten = 127.0.0.1:2\n",
         #"test.conf:6: duplicate key "listen" in [server] (first set on line 2)"#),
        ("[server]\nlisten = 127.0.0.1:1\nlisten = bad\n", #"test.conf:3: duplicate key "listen" in [server] (first set on line 2)"#),
        // inih's own syntax errors.
        ("[server]\nlisten\n", #"test.conf:2: syntax error: expected "key = value""#),
        ("[server]\nlisten = 127.0.0.1:9000\n\n[auth\nissuer = x\n", #"test.conf:4: syntax error: missing "]" in section header"#),
        ("[server ; comment]\n", #"test.conf:1: syntax error: missing "]" in section header"#),
        ("\u{FEFF}[server\n", #"test.conf:1: syntax error: missing "]" in section header"#),
        ("[server]\r\nlisten = 127.0.0.1:9000\r\n  oops\r\n", #"test.conf:3: syntax error: expected "key = value""#),
        // Bytes the reader refuses.
        ("[server]\nstate_dir = /a\u{0}b\n", "test.conf:2: NUL byte in line"),
    ])
    func refused(text: String, expected: String) {
        #expect(failure(text) == expected)
    }

    @Test(arguments: [
        // A syntax error before a handler error, and the other way round.
        ("[server]\nlisten = 127.0.0.1:1\nnonsense\n[auth]\nlisen = 1\n", #"test.conf:3: syntax error: expected "key = value""#),
        ("[server]\nlisen = 1\n[auth]\n\nnonsense\n", #"test.conf:2: unknown key "lisen" in [server]"#),
        // Reader errors against syntax errors.
        ("[server]\nnonsense\n[sever]\n", #"test.conf:2: syntax error: expected "key = value""#),
        ("[sever]\nnonsense\n", "test.conf:1: unknown section [sever]"),
        ("[server]\nstate_dir = /\(String(repeating: "x", count: 5000))\nnonsense\n", "test.conf:2: line too long (max 4096 bytes)"),
        ("[server\n\nstate_dir = /\(String(repeating: "x", count: 5000))\n", #"test.conf:1: syntax error: missing "]" in section header"#),
        // Two value errors: the first line.
        ("[workers]\nidle_timeout = 1x\nrequest_timeout = 1y\n", #"test.conf:2: invalid duration "1x" for idle_timeout: expected a number followed by ms, s, m, h or d"#),
        // A line error before a combination error.
        ("[sandbox]\nuid_base = 2147483000\n[cors]\nallowed_origins = x\n", #"test.conf:4: invalid origin "x" for allowed_origins: expected * or scheme://host[:port]"#),
    ])
    func firstErrorInFileOrderWins(text: String, expected: String) {
        #expect(failure(text) == expected)
    }

    @Test func syntaxErrorOnLine7Of9() {
        let text = "; 1\n[server]\nlisten = 127.0.0.1:9000\n\n; 5\n[workers]\nmax_per_tenant 8\n; 8\n[auth]"
        #expect(failure(text) == #"test.conf:7: syntax error: expected "key = value""#)
    }

    @Test func longLines() throws {
        // Longer than inih's default buffer of 200 bytes, but within ours.
        let origins = (1...20).map { "https://app\($0).customer.example.com" }
        let line = "allowed_origins = " + origins.joined(separator: ", ")
        #expect(line.utf8.count > 200)
        #expect(try parse("[cors]\n\(line)\n").cors.allowedOrigins == origins)

        // Exactly the limit, with a CRLF line ending that does not count.
        let path = "/" + String(repeating: "p", count: Config.maxLineBytes - "state_dir = /".utf8.count)
        let exact = "state_dir = \(path)"
        #expect(exact.utf8.count == Config.maxLineBytes)
        #expect(try parse("[server]\r\n\(exact)\r\n").server.stateDir == path)

        // One byte more, on line 5 of 9 (the longer line is not split into two).
        let tooLong = "; 1\n[server]\n; 3\n\n\(exact)x\nlisten = bad\n; 7\n; 8\n; 9"
        #expect(failure(tooLong) == "test.conf:5: line too long (max 4096 bytes)")
        // Even a comment.
        #expect(failure("; " + String(repeating: "c", count: 4095)) == "test.conf:1: line too long (max 4096 bytes)")
        #expect(failure("; " + String(repeating: "c", count: 4094)) == nil)
    }

    @Test(arguments: ["", "\n", "; only a comment\n# and another\n\n", "[server]\n[auth]\n", "\u{FEFF}[server]\n"])
    func emptyFilesGiveDefaults(text: String) throws {
        #expect(try parse(text) == Config())
    }

    @Test func layoutThatParses() throws {
        let text = """
            \u{FEFF}; BOM, comments, CRLF, indentation, inline comments, ":" separators\r
            [server] ; the server\r
              listen = 127.0.0.1:9000 ; loopback only\r
            \tmax_body_bytes=1K\r
            # a hash comment\r
            drain_timeout: 5s\r
            [ratelimit]
            rate = 5/s;no space, so not a comment: refused below
            """
        #expect(failure(text) == #"test.conf:8: invalid rate "5/s;no space, so not a comment: refused below" for rate: expected N/second, N/minute, N/hour or N/day"#)
        let config = try parse(text.replacingFirst("5/s;no", with: "5/s ;no"))
        #expect(config.server.listen == [.tcp(host: "127.0.0.1", port: 9000)])
        #expect(config.server.maxBodyBytes == 1024)
        #expect(config.server.drainTimeout == .seconds(5))
        #expect(config.rateLimit.rate == Rate(count: 5, unit: .second))
    }

    @Test func indentedKeysAreNotContinuationLines() throws {
        // inih's multi-line values are off: an indented line is a key of its own.
        let config = try parse("[workers]\nmax_per_tenant = 2\n    queue_size = 9\n")
        #expect(config.workers.maxPerTenant == 2)
        #expect(config.workers.queueSize == 9)
        #expect(failure("[workers]\nmax_per_tenant = 2\n    8\n") == #"test.conf:3: syntax error: expected "key = value""#)
    }

    @Test func longSectionNamesAreNotTruncated() {
        // inih keeps only 49 bytes of a section name; the reader tracks sections itself.
        let name = "server" + String(repeating: "x", count: 60)
        #expect(failure("[\(name)]\nlisten = 1\n") == "test.conf:1: unknown section [\(name)]")
    }

    @Test func errorDescriptions() {
        #expect(ConfigError(file: "a.conf", line: 3, message: "m").description == "a.conf:3: m")
        #expect(ConfigError(file: "a.conf", line: 0, message: "m").description == "a.conf: m")
    }
}

@Suite struct Loading {
    /// A private temporary directory, removed by `cleanUp`.
    static func temporaryDirectory() -> String {
        var template = Array("/tmp/configtests.XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func write(_ bytes: [UInt8], to path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        precondition(fd >= 0)
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        precondition(written == bytes.count)
    }

    static func cleanUp(_ directory: String, files: [String]) {
        for file in files { unlink(directory + "/" + file) }
        rmdir(directory)
    }

    @Test func loadsRelativeToTheWorkingDirectory() throws {
        let directory = Self.temporaryDirectory()
        defer { Self.cleanUp(directory, files: ["b.conf"]) }
        Self.write(Array("[server]\nstate_dir = state\n".utf8), to: directory + "/b.conf")
        let config = try Config.load(path: "b.conf", workingDirectory: directory)
        #expect(config.server.stateDir == directory + "/state")
        #expect(try Config.load(path: directory + "/b.conf", workingDirectory: "/") .server.stateDir == "/state")
    }

    @Test func fileErrors() {
        let directory = Self.temporaryDirectory()
        defer { Self.cleanUp(directory, files: ["bad.conf", "big.conf", "utf.conf"]) }
        #expect(throws: ConfigError(file: "missing.conf", line: 0, message: "cannot open: No such file or directory")) {
            try Config.load(path: "missing.conf", workingDirectory: directory)
        }
        #expect(throws: ConfigError(file: directory, line: 0, message: "cannot read: Is a directory")) {
            try Config.load(path: directory, workingDirectory: "/")
        }
        Self.write(Array("[server]\nlisten = 1\n".utf8), to: directory + "/bad.conf")
        #expect(throws: ConfigError(file: "bad.conf", line: 2, message: #"invalid address "1" for listen: expected HOST:PORT, [IPV6]:PORT, *:PORT, tls://HOST:PORT or unix:PATH"#)) {
            try Config.load(path: "bad.conf", workingDirectory: directory)
        }
        Self.write([UInt8](repeating: UInt8(ascii: "\n"), count: Config.maxFileBytes + 1), to: directory + "/big.conf")
        #expect(throws: ConfigError(file: "big.conf", line: 0, message: "file too large (max 1048576 bytes)")) {
            try Config.load(path: "big.conf", workingDirectory: directory)
        }
        Self.write(Array("[auth]\nissuer = ok\naudience = \u{FF}".utf8).dropLast(2) + [0xFF, 0x0A], to: directory + "/utf.conf")
        #expect(throws: ConfigError(file: "utf.conf", line: 3, message: "invalid UTF-8")) {
            try Config.load(path: "utf.conf", workingDirectory: directory)
        }
    }
}

extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = firstRange(of: target) else { return self }
        var result = self
        result.replaceSubrange(range, with: replacement)
        return result
    }
}
