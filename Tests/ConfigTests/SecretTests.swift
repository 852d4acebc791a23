// Secrets in configuration values never reach a message: a refused `redis_url` is quoted
// with its password masked, whatever is wrong with it.
import Testing
@testable import Config

@Suite struct SecretTests {
    static let password = "hunter2-Secret"

    /// Broken in every way the parser knows, each with the password in it.
    static let broken = [
        "redis://:\(password)@ca che:6379/0",            // bad host
        "redis://:\(password)@cache:0/0",                // bad port
        "redis://:\(password)@cache:6379/x",             // bad database
        "redis://app:\(password)@cache:99999",           // with a user name
        "redis://\(password)@cache",                     // no ":" before the password
        "redis://:\(password)%zz@cache",                 // bad percent-encoding
        "redis://:\(password)/with-slash@cache",         // a "/" cuts the text before the "@"
        "redis://:\(password)@cache/0/1",                // a second "/"
        "redis://:\(password)@",                         // no host
        "redis://:\(password)@[::1",                     // unclosed IPv6
        "rediss://:\(password)@cache",                   // TLS
    ]

    @Test(arguments: broken)
    func aRefusedURLIsQuotedWithoutItsPassword(_ url: String) throws {
        let message = try #require(failure("[ratelimit]\nredis_url = \(url)\n"))
        #expect(!message.contains(Self.password), "\(message)")
        #expect(!message.contains("hunter2"), "\(message)")
        #expect(message.contains("***"), "\(message)")
        #expect(message.hasPrefix("test.conf:2: invalid Redis URL"), "\(message)")
    }

    @Test func theMaskKeepsWhatIsNotSecret() {
        #expect(ValueSyntax.redactingPassword("redis://:pw@cache:6380/3") == "redis://:***@cache:6380/3")
        #expect(ValueSyntax.redactingPassword("redis://app:pw@[::1]:6380") == "redis://app:***@[::1]:6380")
        #expect(ValueSyntax.redactingPassword("redis://pw@cache") == "redis://***@cache")
        #expect(ValueSyntax.redactingPassword("redis://:@cache") == "redis://:@cache")  // nothing to hide
        #expect(ValueSyntax.redactingPassword("redis://cache:6379/0") == "redis://cache:6379/0")
        #expect(ValueSyntax.redactingPassword("unix:/run/redis.sock") == "unix:/run/redis.sock")
        #expect(ValueSyntax.redactingPassword("@redis://x") == "@redis://x")
    }

    /// A URL built from REDIS_PASSWORD is refused (bad REDIS_HOST) without the password.
    @Test func theEnvironmentPasswordIsNotQuotedEither() throws {
        let message = try #require(failure("[ratelimit]\nbackend = redis\n",
                                           environment: ["REDIS_HOST": "bad host", "REDIS_PASSWORD": Self.password]))
        #expect(!message.contains(Self.password))
    }
}
