package suite

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
)

// levels is each requirement's level as PROTOCOL.md states it (a test
// checks this copy against PROTOCOL.md), spelt as the labels spell it.
var levels = map[string]string{
	"EA-TRANS-1": "must",
	"EA-FRAME-1": "must", "EA-FRAME-2": "must", "EA-FRAME-3": "should",
	"EA-FRAME-4": "must", "EA-FRAME-5": "must", "EA-FRAME-6": "must",
	"EA-MSG-1":  "must",
	"EA-ECHO-1": "must", "EA-ECHO-2": "must", "EA-ECHO-3": "must",
	"EA-ADD-1": "must", "EA-ADD-2": "must", "EA-ADD-3": "must",
	"EA-CONN-1": "must", "EA-CONN-2": "must", "EA-CONN-3": "must",
	"EA-CONN-4": "must", "EA-CONN-5": "should", "EA-CONN-6": "must",
	"EA-ERR-1": "should", "EA-ERR-2": "should",
	"EA-MAL-1": "must", "EA-MAL-2": "must", "EA-MAL-3": "should", "EA-MAL-4": "should", "EA-MAL-5": "should",
	"EA-LIM-1": "must", "EA-LIM-2": "should", "EA-LIM-3": "should", "EA-LIM-4": "may", "EA-LIM-5": "may",
	"EA-CONC-1": "must", "EA-CONC-2": "must", "EA-CONC-3": "must", "EA-CONC-4": "should",
	"EA-STOP-1": "must", "EA-STOP-2": "must", "EA-STOP-3": "must", "EA-STOP-4": "must", "EA-STOP-5": "should",
}

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
