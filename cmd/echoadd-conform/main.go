// Command echoadd-conform runs the Echo/Add conformance suite (package
// echoadd/suite) against a server: one already listening (--target), one it
// starts (--server-cmd), or the bundled reference server, and prints a verdict
// per requirement of PROTOCOL.md. It needs no Go toolchain at run time: the
// specs are compiled in.
package main

import (
	"os"

	"echoadd/reference/cli"
)

// referenceServerArg is the hidden first argument with which the runner
// re-executes itself as the bundled reference server.
const referenceServerArg = "__reference-server"

func main() {
	if len(os.Args) > 1 && os.Args[1] == referenceServerArg {
		os.Exit(cli.Main(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
