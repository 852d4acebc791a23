// Worker cold start, warm round trip and RSS, beside bubblewrap, in one run.
// Run: swift build -c release && .build/release/bulkhead-bench-worker [N] [--exec]
WorkerStartBenchmark.main()
