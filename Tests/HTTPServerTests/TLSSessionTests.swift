// The server side of TLS against the real OpenSSL, on a socketpair: what the connection
// waits for when OpenSSL cannot go on, and no close_notify after a fatal error.
import Foundation
@testable import HTTPServer
import Glibc
import Testing
import TLS

@Suite struct TLSSessionTests {
    /// A self-signed certificate and key in a fresh directory (removed by `cleanUp`).
    struct Certificate {
        let directory: String
        let context: TLSContext

        init() throws {
            var template = Array("/tmp/bulkhead-tls-test.XXXXXX".utf8CString)
            directory = String(cString: try #require(mkdtemp(&template)))
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            p.arguments = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                           directory + "/k.pem", "-out", directory + "/c.pem", "-subj", "/CN=test", "-days", "2"]
            p.standardError = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            context = try TLSContext(certificate: directory + "/c.pem", privateKey: directory + "/k.pem")
        }

        func cleanUp() { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// Two connected non-blocking sockets.
    static func socketPair() -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0)
        return (fds[0], fds[1])
    }

    /// SSL_write that must read first (here: the handshake, still waiting for the client's
    /// hello) is reported as such, so the connection waits for the socket to be readable:
    /// waiting for writable would wake at once and spin.
    @Test func aWriteThatMustReadWaitsForReadable() throws {
        let cert = try Certificate()
        defer { cert.cleanUp() }
        let (server, client) = Self.socketPair()
        defer { close(server); close(client) }
        let session = try TLSSession(context: cert.context, fd: server)
        var queue = OutputQueue()
        queue.append(Array("HTTP/1.1 200 OK\r\n\r\n".utf8))
        #expect(queue.write(tls: session) == .wantRead)
        #expect(queue.bytes > 0)  // kept, to be offered again
        #expect(!session.isBroken)
    }

    /// After a fatal error (a client that speaks no TLS) the session sends nothing more:
    /// no SSL_shutdown, whose close_notify OpenSSL says must not follow a fatal error.
    @Test func noCloseNotifyAfterAFatalError() throws {
        let cert = try Certificate()
        defer { cert.cleanUp() }
        let (server, client) = Self.socketPair()
        defer { close(server); close(client) }
        let session = try TLSSession(context: cert.context, fd: server)
        let garbage = Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        #expect(garbage.withUnsafeBytes { write(client, $0.baseAddress, $0.count) } == garbage.count)
        guard case .failed = session.handshake() else {
            Issue.record("a plain HTTP request completed a TLS handshake")
            return
        }
        #expect(session.isBroken)
        var buffer = [UInt8](repeating: 0, count: 4096)
        let alert = buffer.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }  // the alert of the failure itself
        session.close()
        let after = buffer.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }
        #expect(after < 0 && errno == EAGAIN, "\(after) more bytes after close (the failure's own alert was \(alert))")
    }
}
