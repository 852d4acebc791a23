// bulkheadd: the daemon. All logic lives in Daemon.swift.
Daemon.main(CommandLine.arguments)
