// The HS256 secret: strength, environment over file, generated file (mode 0600, 32 bytes, reused), refused files, and that it never prints.

import Foundation
import Testing

@testable import Auth

@Suite struct SecretTests {
    static let envValue = "env-secret-env-secret-env-secret-0001"

    /// A fresh directory for `body`, removed afterwards.
    func inDirectory(_ body: (String) throws -> Void) rethrows {
        try OpenSSLCLI.withTemporaryDirectory { try body($0.path) }
    }

    func mode(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions]) as? Int) ?? -1
    }

    /// The refusal of `Secret.load`, or nil (and a recorded issue) when it loads.
    func loadFailure(_ env: String?, _ file: String, sourceLocation: SourceLocation = #_sourceLocation) -> AuthError? {
        do {
            _ = try Secret.load(environmentValue: env, file: file)
            Issue.record("\(file) was accepted", sourceLocation: sourceLocation)
            return nil
        } catch {
            return error
        }
    }

    func write(_ bytes: [UInt8], to path: String, mode: Int) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    }

    @Test func shortSecretsAreRefused() throws {
        for n in [0, 1, 16, 31] {
            #expect(throws: AuthError.self) { try Secret(bytes: [UInt8](repeating: 1, count: n)) }
            #expect(throws: AuthError(.weakSecret, "secret has \(n) bytes; at least 32 are required")) {
                try Secret(bytes: [UInt8](repeating: 1, count: n))
            }
        }
        _ = try Secret(bytes: [UInt8](repeating: 1, count: 32))
    }

    @Test func keyIDIsTheStartOfTheSHA256() throws {
        // SHA-256 of 32 zero bytes is 66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925.
        #expect(try Secret(bytes: [UInt8](repeating: 0, count: 32)).keyID == "66687aad")
        #expect(secret.keyID.count == 8)
    }

    @Test func secretNeverPrints() {
        for text in [String(describing: secret), String(reflecting: secret), "\(secret)"] {
            #expect(!text.contains(secretText))
            #expect(text.contains(secret.keyID))
        }
        var dumped = ""
        dump(secret, to: &dumped)
        #expect(!dumped.contains(secretText) && !dumped.contains("- 116"))  // 116 = "t", the first byte, as a dumped array element
    }

    @Test func environmentWinsOverTheFile() throws {
        try inDirectory { dir in
            let file = dir + "/jwt.key"
            try write([UInt8](repeating: 9, count: 32), to: file, mode: 0o600)
            let s = try Secret.load(environmentValue: Self.envValue, file: file)
            #expect(s.keyID == (try Secret(bytes: Array(Self.envValue.utf8))).keyID)
            // And with no file at all, nothing is generated.
            let absent = dir + "/absent.key"
            _ = try Secret.load(environmentValue: Self.envValue, file: absent)
            #expect(!FileManager.default.fileExists(atPath: absent))
        }
    }

    @Test func shortEnvironmentValueIsRefusedNotIgnored() throws {
        try inDirectory { dir in
            let file = dir + "/jwt.key"
            try write([UInt8](repeating: 9, count: 32), to: file, mode: 0o600)
            for value in ["", "short"] {
                let error = loadFailure(value, file)
                #expect(error?.code == .weakSecret)
                if !value.isEmpty { #expect(error?.detail.contains(value) == false) }
            }
        }
    }

    @Test func missingFileIsGeneratedWithMode0600AndReused() throws {
        try inDirectory { dir in
            let file = dir + "/jwt.key"
            let first = try Secret.load(environmentValue: nil, file: file)
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
            #expect(bytes.count == 32)
            #expect(mode(file) == 0o600)
            #expect(first.keyID == (try Secret(bytes: bytes)).keyID)
            // Only the key file is left behind (no temporary file).
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["jwt.key"])
            // The second load reads the same file and gets the same key.
            let second = try Secret.load(environmentValue: nil, file: file)
            #expect(second.keyID == first.keyID)
            #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: file))) == bytes)
            // Tokens issued under the first verify under the second.
            let token = TokenIssuer(secret: first).issue(claims())
            _ = try TokenVerifier(secret: second, policy: policy()).verify(token, now: now)
            // Two generated secrets differ.
            let other = try Secret.load(environmentValue: nil, file: dir + "/other.key")
            #expect(other.keyID != first.keyID)
        }
    }

    @Test func existingFileIsUsedByteForByte() throws {
        try inDirectory { dir in
            let file = dir + "/jwt.key"
            let text = Array("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n".utf8)
            try write(text, to: file, mode: 0o400)
            #expect(try Secret.load(environmentValue: nil, file: file).keyID == (try Secret(bytes: text)).keyID)
        }
    }

    @Test(arguments: [0o640, 0o644, 0o604, 0o660, 0o606, 0o611, 0o777])
    func fileAccessibleByOthersIsRefused(_ permissions: Int) throws {
        try inDirectory { dir in
            let file = dir + "/jwt.key"
            try write([UInt8](repeating: 3, count: 32), to: file, mode: permissions)
            let error = loadFailure(nil, file)
            #expect(error?.code == .secretUnavailable)
            #expect(error?.detail.contains("0\(String(permissions, radix: 8))") == true)
        }
    }

    @Test func shortFileIsRefused() throws {
        try inDirectory { dir in
            for n in [0, 31] {
                let file = dir + "/short\(n).key"
                try write([UInt8](repeating: 5, count: n), to: file, mode: 0o600)
                #expect(loadFailure(nil, file)?.code == .weakSecret)
            }
        }
    }

    @Test func unusableLocationsAreRefused() throws {
        try inDirectory { dir in
            // A directory, a path under a missing directory, an oversized file.
            try FileManager.default.createDirectory(atPath: dir + "/d", withIntermediateDirectories: false)
            try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: dir + "/d")
            try write([UInt8](repeating: 1, count: 5000), to: dir + "/big.key", mode: 0o600)
            for path in [dir + "/d", dir + "/missing/jwt.key", dir + "/big.key"] {
                let error = loadFailure(nil, path)
                #expect(error?.code == .secretUnavailable, "\(String(describing: error))")
            }
            #expect(!FileManager.default.fileExists(atPath: dir + "/missing"))
        }
    }

    @Test(.enabled(if: geteuid() == 0, "needs root to give the file away"))
    func fileOwnedBySomeoneElseIsRefused() throws {
        try inDirectory { dir in
            let file = dir + "/jwt.key"
            try write([UInt8](repeating: 4, count: 32), to: file, mode: 0o600)
            #expect(chown(file, 54321, 54321) == 0)
            let error = loadFailure(nil, file)
            #expect(error?.code == .secretUnavailable)
            #expect(error?.detail.contains("54321") == true)
        }
    }

    @Test func symlinkedFileIsFollowedButModeChecked() throws {
        try inDirectory { dir in
            // Mounted secrets (Kubernetes, systemd credentials) are often symlinks; the target counts.
            let target = dir + "/target.key"
            try write([UInt8](repeating: 8, count: 40), to: target, mode: 0o600)
            try FileManager.default.createSymbolicLink(atPath: dir + "/jwt.key", withDestinationPath: target)
            #expect(try Secret.load(environmentValue: nil, file: dir + "/jwt.key").keyID == (try Secret(bytes: [UInt8](repeating: 8, count: 40))).keyID)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: target)
            #expect(throws: AuthError.self) { try Secret.load(environmentValue: nil, file: dir + "/jwt.key") }
        }
    }
}
