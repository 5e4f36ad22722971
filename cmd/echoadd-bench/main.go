// Command echoadd-bench puts closed-loop load on an Echo/Add server over
// loopback and reports throughput, latency percentiles, the server's CPU per
// request and, in --idle-conns mode, its memory per idle connection. With
// --baseline it runs the same load against the in-tree comparator and
// reports every figure as a ratio. `echoadd-bench comparator` runs the
// comparator alone.
package main

import (
	"os"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
