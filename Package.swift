// swift-tools-version:6.0
// Bulkhead: a multi-tenant isolation engine. Module graph (arrows point one way):
//
//   C shims / system libraries ─► Posix ─► EventLoop ─► Supervisor ─► bulkheadd
//                                   │                      ▲
//                                   ├──► Sandbox ─► WorkerKit ─► bulkhead-worker
//                Wire (pure) ───────┴──────────────────────┘
//                Config (inih) ─────────────────────────────────────► bulkheadd
import PackageDescription

let package = Package(
    name: "Bulkhead",
    products: [
        .executable(name: "bulkheadd", targets: ["bulkheadd"]),
        .executable(name: "bulkheadctl", targets: ["bulkheadctl"]),
        .executable(name: "bulkhead-worker", targets: ["bulkhead-worker"]),
        .library(name: "WorkerKit", targets: ["WorkerKit"]),
        .library(name: "JSON", targets: ["JSON"]),
    ],
    targets: [
        // C: what Glibc does not give Swift, and the Debian libraries we wrap.
        .target(name: "CBulkhead", cSettings: [.define("_GNU_SOURCE")]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CInih", pkgConfig: "inih", providers: [.apt(["libinih-dev"])]),

        // Core modules, each one responsibility.
        .target(name: "Posix", dependencies: ["CBulkhead"]),
        .target(name: "EventLoop", dependencies: ["Posix", "CBulkhead"]),
        .target(name: "Wire"),
        .target(name: "JSON"),
        .target(name: "Log", dependencies: ["JSON"]),
        .target(name: "Config", dependencies: ["CInih"]),
        .target(name: "Sandbox", dependencies: ["Posix", "CBulkhead", "CSeccomp"]),
        .target(name: "WorkerKit", dependencies: ["Wire", "Sandbox", "Posix", "CSQLite", "CBulkhead"]),
        .target(name: "Control", dependencies: ["EventLoop", "Posix", "Wire", "JSON", "Log", "CBulkhead"]),
        .target(name: "Store", dependencies: ["CSQLite"]),
        .target(name: "Auth", dependencies: ["COpenSSL", "JSON"]),
        .target(name: "Tenants", dependencies: ["Store", "Auth", "Control", "Supervisor", "RateLimit", "Metering", "EventLoop", "JSON", "Log", "Wire", "Archive", "CBulkhead"]),
        .target(name: "Metrics"),
        .target(name: "Metering", dependencies: ["Store", "EventLoop", "Log", "Posix", "JSON", "CBulkhead"]),
        .target(name: "RateLimit", dependencies: ["Config", "EventLoop", "Log", "Metrics", "CHiredis", "COpenSSL", "CBulkhead"]),
        .target(name: "HTTPParser"),
        .target(name: "HTTPServer", dependencies: ["HTTPParser", "EventLoop", "Posix", "Log", "JSON", "TLS", "CBulkhead"]),
        .target(name: "Dispatcher", dependencies: ["HTTPServer", "HTTPParser", "Tenants", "Log", "RateLimit", "Metrics", "Metering", "Supervisor", "Store", "JSON", "Wire", "EventLoop", "CBulkhead"]),
        .target(name: "Supervisor", dependencies: ["EventLoop", "Posix", "Wire", "Sandbox", "Log", "CBulkhead"]),
        .target(name: "Systemd"),
        .target(name: "Archive"),
        .target(name: "TLS", dependencies: ["COpenSSL"]),

        // Executables only wire modules together.
        .executableTarget(
            name: "bulkheadd",
            dependencies: ["Config", "EventLoop", "Supervisor", "Sandbox", "Posix", "Log", "Store", "Auth", "Control", "Tenants", "HTTPServer", "Dispatcher", "RateLimit", "Metering", "Systemd", "TLS"]),
        .executableTarget(name: "bulkheadctl", dependencies: ["Control", "Config", "JSON"]),
        .executableTarget(
            name: "bulkhead-worker", dependencies: ["WorkerKit", "JSON"],
            // The static stdlib halves exec time (STYLE.md), which is most of a cold start.
            linkerSettings: [.unsafeFlags(["-static-stdlib"])]),

        // An operator's own worker (docs/WORKERS.md), built by `make build` and tested.
        .executableTarget(
            name: "bulkhead-example-worker", dependencies: ["WorkerKit", "JSON"], path: "Examples/CustomWorker",
            linkerSettings: [.unsafeFlags(["-static-stdlib"])]),

        // A worker that attacks its own sandbox; built for the tests only, never shipped.
        .executableTarget(
            name: "bulkhead-hostile-worker", dependencies: ["WorkerKit", "CBulkhead"],
            path: "Tests/HostileWorker",
            linkerSettings: [.unsafeFlags(["-static-stdlib"])]),

        // Measurements run by hand (Benchmarks/README.md), never asserted in tests.
        .executableTarget(
            name: "bulkhead-bench-worker", dependencies: ["Supervisor", "Sandbox", "EventLoop", "Posix", "Log"],
            path: "Benchmarks/WorkerStart"),

        .executableTarget(name: "bulkhead-bench-auth", dependencies: ["Auth"], path: "Benchmarks/TokenVerify"),
        .executableTarget(name: "bulkhead-bench-http", dependencies: ["HTTPParser"], path: "Benchmarks/HTTPParse"),
        .executableTarget(name: "bulkhead-bench-ratelimit", dependencies: ["RateLimit", "Config", "Log"], path: "Benchmarks/RateLimitDecide"),
        .executableTarget(name: "bulkhead-bench-control", dependencies: ["Control", "JSON"], path: "Benchmarks/TenantCreate"),

        .testTarget(name: "WireTests", dependencies: ["Wire"], resources: [.copy("Golden")]),
        .testTarget(name: "ConfigTests", dependencies: ["Config"]),
        .testTarget(name: "JSONTests", dependencies: ["JSON"]),
        .testTarget(name: "HTTPParserTests", dependencies: ["HTTPParser"]),
        .testTarget(name: "AuthTests", dependencies: ["Auth", "JSON"]),
        .testTarget(name: "MetricsTests", dependencies: ["Metrics"]),
        .testTarget(name: "RateLimitTests", dependencies: ["RateLimit", "Config", "Log", "EventLoop"]),
        .testTarget(name: "StoreTests", dependencies: ["Store"]),
        .testTarget(name: "DaemonTests", dependencies: ["Store", "Auth", "Tenants", "RateLimit", "Config", "Log", "Control", "Archive"]),
        .testTarget(name: "TenantsTests", dependencies: ["Store", "Auth", "Tenants"]),
        .testTarget(name: "PosixTests", dependencies: ["Posix", "EventLoop"]),
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer", "TLS"]),
        .testTarget(name: "SandboxTests", dependencies: ["Supervisor", "Sandbox", "EventLoop", "Posix", "Wire", "Log"]),
    ],
    swiftLanguageModes: [.v6]
)
