// Owns the JWS compact serialisation of received tokens: segments, strict base64url, and the JOSE header rules (RFC 7515, RFC 8725).
import JSON

/// A token split into its parts, with the header checked. Nothing here is trusted yet: the
/// signature over `signingInput` has not been verified.
struct CompactToken {
    enum Kind { case issued, external }

    let kind: Kind
    /// Length of "header.payload" at the start of the token: the bytes the signature covers.
    let signingInputLength: Int
    let payload: [UInt8]
    let signature: [UInt8]

    /// Header parameters that point at keys or certificates. A verifier that honours them lets the
    /// token choose its own key; they are refused outright rather than ignored (RFC 8725 §3.10).
    static let forbiddenParameters = ["jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256"]

    /// JSON limits for header and payload: real tokens nest a level or two.
    static let jsonOptions: JSONParser.Options = {
        var o = JSONParser.Options()
        o.maxDepth = 16
        o.allowDuplicateKeys = false
        return o
    }()

    /// Splits and decodes `token` and applies the header rules; `externalAlgorithm` is the one
    /// configured for the external issuer, if any. Errors never quote the token.
    init(_ token: UnsafeBufferPointer<UInt8>, externalAlgorithm: ExternalIssuer.Algorithm?) throws(AuthError) {
        var dots: [Int] = []
        for i in token.indices where token[i] == UInt8(ascii: ".") {
            dots.append(i)
            if dots.count > 2 { break }
        }
        guard dots.count == 2 else {
            throw AuthError(.malformed, "a token has exactly three segments separated by '.'")
        }
        let ranges = [0..<dots[0], dots[0] + 1..<dots[1], dots[1] + 1..<token.count]
        var decoded: [[UInt8]] = []
        for (range, name) in zip(ranges, ["header", "payload", "signature"]) {
            guard !range.isEmpty else { throw AuthError(.malformed, "the \(name) segment is empty") }
            guard let bytes = Base64URL.decode(UnsafeBufferPointer(rebasing: token[range])) else {
                throw AuthError(.malformed, "the \(name) segment is not canonical unpadded base64url")
            }
            decoded.append(bytes)
        }

        let parsed: JSONValue
        do throws(JSONError) {
            parsed = try JSONParser.parse(decoded[0], options: Self.jsonOptions)
        } catch {
            throw Self.jsonFailure("header", error)
        }
        guard let header = parsed.objectValue else { throw AuthError(.malformed, "the header is not a JSON object") }
        kind = try Self.checkHeader(header, externalAlgorithm: externalAlgorithm)
        signingInputLength = dots[1]
        payload = decoded[1]
        signature = decoded[2]
    }

    /// A JSON refusal as an AuthError. The JSON error's own text can quote the document (a
    /// duplicate name), which is part of the token, so only its offset is kept.
    static func jsonFailure(_ part: String, _ error: JSONError) -> AuthError {
        if case .duplicateKey = error.reason {
            return AuthError(.malformed, "the \(part) repeats a member name")
        }
        return AuthError(.malformed, "the \(part) is not valid JSON (byte \(error.offset) of the decoded \(part))")
    }

    /// The JOSE header rules, in order: alg is a string, typ (if any) is "JWT", no key-carrying
    /// parameter, no crit, and alg names exactly an algorithm that configuration accepts.
    static func checkHeader(_ header: JSONObject, externalAlgorithm: ExternalIssuer.Algorithm?) throws(AuthError) -> Kind {
        guard let alg = header["alg"]?.stringValue else {
            throw AuthError(.algorithmNotAllowed, "the header has no alg string")
        }
        if let typ = header["typ"] {
            guard let t = typ.stringValue, ClaimRules.same(t, "JWT") else {
                throw AuthError(.malformed, "typ must be \"JWT\" when present")
            }
        }
        for name in forbiddenParameters where header[name] != nil {
            throw AuthError(.forbiddenHeader, "header parameter \(name) is refused: keys are never taken from a token")
        }
        if header["crit"] != nil {
            throw AuthError(.unknownCritical, "crit is refused: no JWS extension is understood")
        }
        // The algorithm comes from configuration; the token's alg only selects which configured
        // key applies, and must name it exactly ("none", "hs256", "HS384" … are all refused).
        if ClaimRules.same(alg, "HS256") { return .issued }
        if let externalAlgorithm, ClaimRules.same(alg, externalAlgorithm.rawValue) { return .external }
        let accepted = ["HS256"] + (externalAlgorithm.map { [$0.rawValue] } ?? [])
        throw AuthError(.algorithmNotAllowed, "alg is not accepted (accepted: \(accepted.joined(separator: ", ")))")
    }
}
