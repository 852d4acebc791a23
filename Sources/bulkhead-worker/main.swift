// bulkhead-worker: the stock tenant worker, with the built-in tasks of SPEC §4.
StockWorker.main()
