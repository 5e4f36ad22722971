//go:build ignore

// gen_catalogue writes catalogue_gen.go from PROTOCOL.md, so that the runner
// binary knows every requirement (including those no selected spec covers)
// without the source tree. Usage: go run gen_catalogue.go PROTOCOL.md OUT.go
package main

import (
	"bytes"
	"fmt"
	"go/format"
	"os"

	"echoadd/suite/report"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go run gen_catalogue.go PROTOCOL.md OUT.go")
		os.Exit(2)
	}
	if err := generate(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "gen_catalogue:", err)
		os.Exit(1)
	}
}

func generate(in, out string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	reqs, err := report.ParseCatalogue(f)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	src, err := format.Source(report.CatalogueSource(reqs))
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(out); err == nil && bytes.Equal(old, src) {
		return nil
	}
	return os.WriteFile(out, src, 0o644)
}
