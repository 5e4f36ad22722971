// Command gendocs writes docs/REQUIREMENTS.md, the requirement → specs table,
// from the concatenated `echoadd-conform --list --framing F` outputs of every
// framing on its standard input.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"echoadd/suite/report"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stderr)) }

func run(args []string, stdin io.Reader, stderr io.Writer) int {
	fs := pflag.NewFlagSet("gendocs", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.StringP("output", "o", "", "write to `FILE` (required)")
	if err := fs.Parse(args); err != nil || *out == "" {
		fmt.Fprintln(stderr, "usage: echoadd-conform --list ... | gendocs -o FILE")
		return 2
	}
	specs, err := report.ParseListing(stdin)
	if err == nil && len(specs) == 0 {
		err = fmt.Errorf("no specs on standard input")
	}
	if err != nil {
		fmt.Fprintf(stderr, "gendocs: %v\n", err)
		return 1
	}
	var b bytes.Buffer
	if err := report.WriteRequirementsMarkdown(&b, report.Catalogue, specs); err != nil {
		fmt.Fprintf(stderr, "gendocs: %v\n", err)
		return 1
	}
	if err := os.WriteFile(*out, b.Bytes(), 0o644); err != nil {
		fmt.Fprintf(stderr, "gendocs: %v\n", err)
		return 1
	}
	return 0
}
