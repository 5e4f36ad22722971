package suite

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"

	"echoadd/suite/report"
)

// levels is each requirement's level, spelt as the labels spell it, from
// report.Catalogue (generated from PROTOCOL.md, and tested to match it).
var levels = func() map[string]string {
	m := make(map[string]string, len(report.Catalogue))
	for _, r := range report.Catalogue {
		m[r.ID] = r.Level
	}
	return m
}()

// Section labels: one per spec file, after PROTOCOL.md's sections.
const (
	sTransport   = "transport"
	sFraming     = "framing"
	sMessages    = "messages"
	sEcho        = "echo"
	sAdd         = "add"
	sOrdering    = "ordering"
	sErrors      = "errors"
	sMalformed   = "malformed"
	sLimits      = "limits"
	sConcurrency = "concurrency"
	sShutdown    = "shutdown"
	sLegacy      = "legacy"
)

// lifecycle labels the specs that start their own server process: they
// need a server command and skip against a target address.
const lifecycle = "lifecycle"

// req labels a spec: its requirement IDs, their level and its section (and
// any extra labels). It panics at tree construction when the IDs are
// unknown or of different levels: a spec has one level.
func req(section string, ids ...string) Labels {
	return Label(labels(section, ids)...)
}

func labels(section string, ids []string, extra ...string) []string {
	if len(ids) == 0 {
		panic("a spec needs a requirement ID")
	}
	level := ""
	for _, id := range ids {
		l, ok := levels[id]
		if !ok {
			panic(fmt.Sprintf("unknown requirement %s", id))
		}
		if level != "" && l != level {
			panic(fmt.Sprintf("requirements %v mix levels", ids))
		}
		level = l
	}
	out := append([]string(nil), ids...)
	return append(append(out, level, section), extra...)
}

// pieceIDs are the requirements for requests in pieces and requests
// together: SHOULD in raw framing (EA-FRAME-3), MUST with a length prefix
// (EA-FRAME-6).
func pieceIDs() []string {
	if Current().framed() {
		return []string{"EA-FRAME-6"}
	}
	return []string{"EA-FRAME-3"}
}

// specTimeout bounds every spec, scaled.
func specTimeout() SpecTimeout { return SpecTimeout(Current().windows().spec) }
