// A worker that attacks its own sandbox, for the isolation tests. Never shipped.
HostileWorker.main()
