// bulkheadctl: the admin CLI; it talks to bulkheadd over the control socket.
import Glibc

exit(CLI.run(Array(CommandLine.arguments.dropFirst())))
