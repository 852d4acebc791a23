// Support.swift: helpers shared by the Config tests (parsing with a fixed working directory).

@testable import Config

/// Every test resolves relative paths against this directory.
let testWorkingDirectory = "/srv/bulkhead"

func parse(_ text: String, environment: [String: String] = [:]) throws(ConfigError) -> Config {
    try Config.parse(text: text, file: "test.conf", environment: environment, workingDirectory: testWorkingDirectory)
}

/// The `file:line: message` the text is refused with, or nil if it parses.
func failure(_ text: String, environment: [String: String] = [:]) -> String? {
    do {
        _ = try parse(text, environment: environment)
        return nil
    } catch {
        return error.description
    }
}

/// The package root, found from this file's path (Tests/ConfigTests/Support.swift).
func packageRoot(_ filePath: String = #filePath) -> String {
    var parts = filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}

/// Reads a text file of the package (docs, examples), or nil if it cannot be opened.
func packageFile(_ relativePath: String) -> String? {
    guard let bytes = try? ConfigLoader.readFile(packageRoot() + "/" + relativePath, reportedAs: relativePath) else {
        return nil
    }
    return String(decoding: bytes, as: UTF8.self)
}
