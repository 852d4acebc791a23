// TLS for the HTTP listeners, with OpenSSL: a server context (TLS 1.2 and 1.3 only, ECDHE
// with AEAD ciphers, ALPN http/1.1, no renegotiation, no compression) loaded from PEM
// files and checked at load — a key that does not match its certificate, or a
// certificate outside its validity, is refused with a clear message — and one
// non-blocking session per connection, driven by the connection's event loop.
import COpenSSL
import Glibc

public struct TLSError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// A configured SSL_CTX. Read-only once built, so every loop may use it at once.
public final class TLSContext: @unchecked Sendable {
    let ctx: OpaquePointer

    /// Loads `certificate` (PEM, the chain may follow) and `privateKey` (PEM).
    public init(certificate: String, privateKey: String) throws(TLSError) {
        guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw TLSError("cannot create a TLS context: \(Self.lastError())") }
        self.ctx = ctx  // from here, a throw frees the context in deinit
        _ = SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(TLS1_2_VERSION), nil)
        // SSL_OP_NO_COMPRESSION (bit 17), SSL_OP_CIPHER_SERVER_PREFERENCE (22),
        // SSL_OP_NO_RENEGOTIATION (30): macros Swift cannot import.
        _ = SSL_CTX_set_options(ctx, UInt64(1) << 17 | UInt64(1) << 22 | UInt64(1) << 30)
        _ = SSL_CTX_ctrl(ctx, SSL_CTRL_MODE, Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
            | SSL_MODE_RELEASE_BUFFERS), nil)
        guard SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!SHA1") == 1 else {
            throw TLSError("the cipher policy was refused: \(Self.lastError())")
        }
        SSL_CTX_set_alpn_select_cb(ctx, alpnSelect, nil)
        ERR_clear_error()
        guard SSL_CTX_use_certificate_chain_file(ctx, certificate) == 1 else {
            throw TLSError("[server] tls_certificate \(certificate): \(Self.lastError())")
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, privateKey, SSL_FILETYPE_PEM) == 1 else {
            let reason = Self.lastError()
            if reason.contains("key values mismatch") {
                throw TLSError("[server] tls_private_key \(privateKey) does not match the certificate in \(certificate)")
            }
            throw TLSError("[server] tls_private_key \(privateKey): \(reason)")
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            throw TLSError("[server] tls_private_key \(privateKey) does not match the certificate in \(certificate)")
        }
        guard let cert = SSL_CTX_get0_certificate(ctx) else { throw TLSError("[server] tls_certificate \(certificate): no certificate") }
        let until = Self.text(X509_get0_notAfter(cert)), from = Self.text(X509_get0_notBefore(cert))
        if X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0 {
            throw TLSError("[server] tls_certificate \(certificate) expired on \(until)")
        }
        if X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0 {
            throw TLSError("[server] tls_certificate \(certificate) is not valid before \(from)")
        }
        var name = [CChar](repeating: 0, count: 256)
        X509_NAME_oneline(X509_get_subject_name(cert), &name, Int32(name.count))
        subjectStorage = Self.string(name)
        notAfterStorage = until
    }

    private var subjectStorage = ""
    private var notAfterStorage = ""
    /// The certificate's subject and last valid moment, for the log.
    public var certificateSubject: String { subjectStorage }
    public var certificateNotAfter: String { notAfterStorage }

    deinit { SSL_CTX_free(ctx) }

    static func text(_ time: UnsafePointer<ASN1_TIME>?) -> String {
        guard let time, let bio = BIO_new(BIO_s_mem()) else { return "?" }
        defer { BIO_free(bio) }
        ASN1_TIME_print(bio, time)
        var buf = [CChar](repeating: 0, count: 64)
        let n = BIO_read(bio, &buf, Int32(buf.count - 1))
        return n > 0 ? Self.string(Array(buf[..<Int(n)])) : "?"
    }

    static func lastError() -> String {
        let code = ERR_get_error()
        ERR_clear_error()
        guard code != 0 else { return String(cString: strerror(errno)) }
        var buf = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buf, buf.count)
        return Self.string(buf)
    }

    /// C characters up to the first NUL.
    static func string(_ chars: [CChar]) -> String {
        String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// "\x08http/1.1": the one protocol these listeners speak (immortal, read-only).
private let httpProtocols: [UInt8] = [8] + Array("http/1.1".utf8)
private nonisolated(unsafe) let httpProtocolsPointer: UnsafeMutablePointer<UInt8> = {
    let p = UnsafeMutablePointer<UInt8>.allocate(capacity: httpProtocols.count)
    p.initialize(from: httpProtocols, count: httpProtocols.count)
    return p
}()

/// ALPN: http/1.1 when the client offers it; a client offering only other protocols
/// (h2) goes on without ALPN, and HTTP/1.1 is what it gets.
private func alpnSelect(_ ssl: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
                        _ outLength: UnsafeMutablePointer<UInt8>?, _ offered: UnsafePointer<UInt8>?, _ offeredLength: UInt32,
                        _ arg: UnsafeMutableRawPointer?) -> Int32 {
    var selected: UnsafeMutablePointer<UInt8>?
    let r = SSL_select_next_proto(&selected, outLength, httpProtocolsPointer, UInt32(httpProtocols.count), offered, offeredLength)
    guard r == OPENSSL_NPN_NEGOTIATED, let selected else { return SSL_TLSEXT_ERR_NOACK }
    out?.pointee = UnsafePointer(selected)
    return SSL_TLSEXT_ERR_OK
}

/// One connection's TLS state, used on its loop only.
public final class TLSSession {
    private let ssl: OpaquePointer
    /// The context stays alive as long as a session uses it (a reload swaps contexts).
    private let context: TLSContext
    /// A fatal error happened (SSL_ERROR_SYSCALL or SSL_ERROR_SSL): OpenSSL must not be
    /// asked for a close_notify after it.
    public private(set) var isBroken = false

    public enum Result: Equatable {
        case bytes(Int)
        /// Would block: try again when the socket is readable (or writable).
        case wantRead, wantWrite
        /// The peer closed (close_notify, or the connection ended).
        case closed
        case failed(String)
    }

    public init(context: TLSContext, fd: Int32) throws(TLSError) {
        guard let ssl = SSL_new(context.ctx) else { throw TLSError("SSL_new: \(TLSContext.lastError())") }
        self.ssl = ssl
        self.context = context
        SSL_set_fd(ssl, fd)
        SSL_set_accept_state(ssl)
    }

    deinit { SSL_free(ssl) }

    /// Advances the handshake; `.bytes(0)` once it is complete.
    public func handshake() -> Result {
        ERR_clear_error()
        let r = SSL_do_handshake(ssl)
        return r == 1 ? .bytes(0) : outcome(r)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) -> Result {
        ERR_clear_error()
        let r = SSL_read(ssl, buffer.baseAddress, Int32(clamping: buffer.count))
        return r > 0 ? .bytes(Int(r)) : outcome(r)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) -> Result {
        ERR_clear_error()
        let r = SSL_write(ssl, bytes.baseAddress, Int32(clamping: bytes.count))
        return r > 0 ? .bytes(Int(r)) : outcome(r)
    }

    /// Decrypted bytes waiting inside OpenSSL (the socket may have nothing more to say).
    public var hasPending: Bool { SSL_pending(ssl) > 0 }

    /// Sends close_notify (once, without waiting for the peer's), unless the session
    /// broke: SSL_shutdown after a fatal error is what OpenSSL says not to do.
    public func close() {
        guard !isBroken else { return }
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
    }

    private func outcome(_ r: Int32) -> Result {
        switch SSL_get_error(ssl, r) {
        case SSL_ERROR_WANT_READ: return .wantRead
        case SSL_ERROR_WANT_WRITE: return .wantWrite
        case SSL_ERROR_ZERO_RETURN: return .closed
        case SSL_ERROR_SYSCALL:
            let e = errno
            ERR_clear_error()
            isBroken = true
            return r == 0 || e == 0 || e == ECONNRESET || e == EPIPE ? .closed : .failed(String(cString: strerror(e)))
        default:
            isBroken = true
            return .failed(TLSContext.lastError())
        }
    }
}
