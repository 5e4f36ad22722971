// Package bench is the Echo/Add load generator: closed-loop load against a
// server reached over loopback TCP, every reply validated, with latency
// percentiles, throughput, and the server's CPU time and memory when it is a
// child process. cmd/echoadd-bench is its command line; bench/comparator is
// the minimal server it measures others against.
//
// Nothing here prints or exits: results are values, written out by their
// WriteText and JSON methods to the writer the caller gives.
package bench
