// StoreError.swift owns the one error type of the store: a backend-neutral code for the
// caller to act on, and a message for the operator (SQLite's own text when it has one).

/// Why a store call failed. Callers switch on `code` (never on `message`); `message` is one
/// line for a log or for `bulkheadctl`'s stderr.
public struct StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: Code
    public var message: String

    /// What went wrong, in terms any backend (SQLite today, PostgreSQL later) can report.
    public enum Code: Sendable, Equatable {
        /// The tenant or key named in the call does not exist.
        case notFound
        /// A tenant or key with that id already exists.
        case alreadyExists
        /// The change contradicts the stored state: uid range exhausted, key already rotated…
        case conflict
        /// The database was written by a newer bulkheadd.
        case schemaTooNew
        /// The database could not be opened, read or written (permissions, disk full, locked).
        case io
        /// The file is not a database, or its content is damaged.
        case corrupt
        /// The call's arguments cannot be stored (a scope with a space, a negative quota…).
        case invalid
    }

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    init(_ code: Code, _ message: String) {
        self.init(code: code, message: message)
    }

    public var description: String { message }
}

extension StoreError {
    static func tenantNotFound(_ id: String) -> StoreError { StoreError(.notFound, "tenant \(quoted(id)) not found") }
    static func keyNotFound(_ jti: String) -> StoreError { StoreError(.notFound, "key \(quoted(jti)) not found") }
}

/// `"text"` with quotes and control characters escaped, so that a hostile id cannot forge
/// a second line in a log or in `bulkheadctl`'s one-line error.
func quoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20 || scalar.value == 0x7F:
            out += "\\u{" + String(scalar.value, radix: 16) + "}"
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
