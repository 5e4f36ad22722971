package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes v as indented JSON.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// WriteText writes the report for people: a summary for a single run, a
// table for several or with a baseline, then examples of any errors.
func (r Report) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "machine: %d CPUs, %s, %s; %s\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.Go, r.Machine.Shared)
	if len(r.Rows) > 0 {
		fmt.Fprintf(ew, "load generator: echoadd-bench %s, %s driver\n", r.Machine.Bench, r.Rows[0].Target.Driver)
	}
	if len(r.Rows) == 1 && r.Rows[0].Comparator == nil {
		fmt.Fprintf(ew, "server: %s\n", r.Server)
		writeSummary(ew, r.Rows[0].Target)
	} else {
		fmt.Fprintf(ew, "server: %s\n", r.Server)
		if r.Comparator != "" {
			fmt.Fprintf(ew, "comparator: %s (ratios are server/comparator)\n", r.Comparator)
		}
		if len(r.Rows) > 0 { // no header over nothing (an interrupt before the first case)
			writeTable(ew, r.Rows)
		}
	}
	for _, row := range r.Rows {
		writeErrors(ew, row.Name+" on "+r.Server, row.Target.Errors, row.Target.Hints)
		if row.Comparator != nil {
			writeErrors(ew, row.Name+" on "+r.Comparator, row.Comparator.Errors, row.Comparator.Hints)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(ew, "note: %s\n", n)
	}
	for _, f := range r.StopFailures {
		fmt.Fprintf(ew, "STOP FAILED: %s\n", f)
	}
	switch {
	case r.Interrupted && len(r.Rows) == 0:
		fmt.Fprintln(ew, "INTERRUPTED before any case was measured: no results")
	case r.Interrupted:
		fmt.Fprintf(ew, "INTERRUPTED: partial results, %d case(s); the last one's figures cover only the part it ran", len(r.Rows))
		if last := r.Rows[len(r.Rows)-1]; r.Comparator != "" && last.Comparator == nil {
			fmt.Fprint(ew, ", and it has none for the comparator")
		}
		fmt.Fprintln(ew)
	}
	return ew.err
}

func writeSummary(w io.Writer, res Result) {
	fmt.Fprintf(w, "target %s, %s framing, %d connections, mix echo:add %s, payload %d B, pipeline %d\n",
		res.Target, res.Framing, res.Conns, res.Mix, res.Payload, res.Pipeline)
	warmup := ""
	if res.Warmup > 0 {
		warmup = fmt.Sprintf(" (after a %.2f s warm-up)", res.Warmup)
	}
	fmt.Fprintf(w, "requests    %d in %.2f s%s, %d errors (%d invalid replies, %d connection errors)\n",
		res.Requests, res.Elapsed, warmup, res.Errors.Total(), res.Errors.Invalid, res.Errors.Connection)
	fmt.Fprintf(w, "throughput  %.0f req/s\n", res.Throughput)
	if l := res.Latency; l != nil {
		fmt.Fprintf(w, "latency     p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", us(l.P50), us(l.P90), us(l.P99), us(l.P999), us(l.Max))
	} else {
		fmt.Fprintln(w, "latency     none measured: no valid reply")
	}
	switch c := res.ServerCPU; {
	case c != nil:
		fmt.Fprintf(w, "server CPU  %.2f s (%.0f%% of one core), %.2f µs per request\n", c.Seconds, c.UtilisationPc, c.PerRequestUs)
	case strings.HasPrefix(res.CPUNotMeasured, "not measurable"):
		fmt.Fprintf(w, "server CPU  %s\n", res.CPUNotMeasured)
	default:
		fmt.Fprintf(w, "server CPU  not measured (%s)\n", res.CPUNotMeasured)
	}
	switch n := res.NewClient; {
	case n == nil:
		fmt.Fprintf(w, "new client  not measured (the load did not last half of a --duration)\n")
	case n.Served:
		fmt.Fprintf(w, "new client  connected and served halfway through, in %s\n", us(n.LatencyUs))
	default:
		fmt.Fprintf(w, "new client  NOT served halfway through: %s\n", n.Error)
	}
}

func writeTable(w io.Writer, rows []Row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	baseline := false
	for _, r := range rows {
		baseline = baseline || r.Comparator != nil
	}
	head := "case\tframing\tconns\trequests\treq/s\tp50 µs\tp99 µs\tp99.9 µs\tmax µs\tcpu µs/req\tnew client µs\terrors\t"
	if baseline {
		head += "cmp req/s\tcmp p99 µs\tcmp cpu µs/req\tcmp new client µs\tcmp errors\t× req/s\t× cpu/req\t× p99\t"
	}
	fmt.Fprintln(tw, head)
	for _, r := range rows {
		t := r.Target
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t", r.Name, t.Framing, t.Conns, t.Requests, t.Throughput,
			latencyCell(t, func(l *Latency) float64 { return l.P50 }), latencyCell(t, p99), latencyCell(t, func(l *Latency) float64 { return l.P999 }), latencyCell(t, func(l *Latency) float64 { return l.Max }), cpuPerReq(t), newClientUs(t), t.Errors.Total())
		if c := r.Comparator; c != nil {
			fmt.Fprintf(tw, "%.0f\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t", c.Throughput, latencyCell(*c, p99), cpuPerReq(*c), newClientUs(*c), c.Errors.Total(),
				times(r.Ratio.Throughput), times(r.Ratio.CPUPerRequest), times(r.Ratio.P99))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

func writeErrors(w io.Writer, what string, e ErrorCounts, hints []string) {
	if e.Total() > 0 {
		fmt.Fprintf(w, "ERRORS in %s: %d invalid replies, %d connection errors; first ones:\n", what, e.Invalid, e.Connection)
		for _, ex := range e.Examples {
			fmt.Fprintf(w, "  - %s\n", ex)
		}
	}
	for _, h := range hints {
		fmt.Fprintf(w, "hint: %s\n", h)
	}
}

// newClientUs is the new client's latency; "-" without one (a run without
// a duration, or ended by its request count before half of it), "FAILED"
// when it was not served.
func newClientUs(r Result) string {
	switch n := r.NewClient; {
	case n == nil:
		return "-"
	case !n.Served:
		return "FAILED"
	}
	return fmt.Sprintf("%.0f", r.NewClient.LatencyUs)
}

func cpuPerReq(r Result) string {
	if r.ServerCPU == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", r.ServerCPU.PerRequestUs)
}

func times(r *float64) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", *r)
}

// latencyCell is a latency in the table, "-" when no reply was measured.
// latencyCell is one of r's latency figures, or "-" when no reply was valid.
func latencyCell(r Result, figure func(*Latency) float64) string {
	if r.Latency == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", figure(r.Latency))
}

func p99(l *Latency) float64 { return l.P99 }

func us(v float64) string {
	if v >= 10000 {
		return fmt.Sprintf("%.1f ms", v/1000)
	}
	return fmt.Sprintf("%.1f µs", v)
}

// WriteText writes the idle run for people.
func (r IdleResult) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "target %s, %s framing: %d of %d idle connections opened and answered\n", r.Target, r.Framing, r.Opened, r.Conns)
	if r.PartialBytes > 0 {
		fmt.Fprintf(ew, "each then sent the first %d bytes of an echo request of %d bytes and stopped there\n", r.PartialBytes, r.RequestBytes)
	}
	if r.NewClientServed {
		fmt.Fprintf(ew, "a new client was served while they were open, in %s\n", us(r.NewClientUs))
	} else {
		fmt.Fprintf(ew, "FAILED: a new client was NOT served while they were open\n")
	}
	if r.RSSBefore != 0 {
		fmt.Fprintf(ew, "server RSS  %.1f MiB before, %.1f MiB after %.1f s idle: %.0f bytes (%.2f KiB) per connection\n",
			float64(r.RSSBefore)/(1<<20), float64(r.RSSAfter)/(1<<20), r.HoldSeconds, r.RSSPerConn, r.RSSPerConn/1024)
	} else {
		fmt.Fprintf(ew, "server RSS  not measured (the server is not a child of this process)\n")
	}
	fmt.Fprintf(ew, "%d of %d connections still answered after the hold\n", r.StillOpen, r.Opened)
	if len(r.Refused) > 0 {
		var parts []string
		for _, code := range slices.Sorted(maps.Keys(r.Refused)) {
			parts = append(parts, fmt.Sprintf("%s %d", code, r.Refused[code]))
		}
		fmt.Fprintf(ew, "partial requests the server refused: %s\n", strings.Join(parts, ", "))
	}
	writeErrors(ew, "the idle run", r.Errors, nil)
	return ew.err
}

// WriteSVG draws the rows' throughput against connections, one line per
// workload (the case name without its " cN" suffix), dashed for the
// comparator: a small hand-written SVG.
func (r Report) WriteSVG(w io.Writer) error {
	type series struct {
		name   string
		dashed bool
		points map[int]float64
	}
	var all []*series
	byName := map[string]*series{}
	connSet := map[int]bool{}
	maxY, minY := 0.0, math.Inf(1)
	addPoint := func(name string, dashed bool, conns int, v float64) {
		s := byName[name]
		if s == nil {
			s = &series{name: name, dashed: dashed, points: map[int]float64{}}
			byName[name] = s
			all = append(all, s)
		}
		s.points[conns] = v
		connSet[conns] = true
		maxY = max(maxY, v)
		if v > 0 {
			minY = min(minY, v)
		}
	}
	for _, row := range r.Rows {
		workload := row.Name
		if i := strings.LastIndex(workload, " c"); i > 0 {
			workload = workload[:i]
		}
		addPoint(workload, false, row.Target.Conns, row.Target.Throughput)
		if row.Comparator != nil {
			addPoint(workload+" (comparator)", true, row.Comparator.Conns, row.Comparator.Throughput)
		}
	}
	var xs []int
	for c := range connSet {
		xs = append(xs, c)
	}
	slices.Sort(xs)
	if maxY == 0 {
		maxY = 1
	}
	// Pipelined rows run at ten times the others' rate or more: on a
	// linear axis every other line would lie flat along the bottom.
	logScale := minY < maxY/10
	var lo, hi float64 // log scale: the decades the axis spans
	if logScale {
		lo, hi = math.Floor(math.Log10(minY)), math.Ceil(math.Log10(maxY))
	} else {
		maxY = niceCeil(maxY)
	}

	const (
		width, height          = 760, 420
		left, right, top, bott = 80, 230, 40, 50
		plotW, plotH           = width - left - right, height - top - bott
	)
	xOf := func(i int) float64 {
		if len(xs) == 1 {
			return left + plotW/2
		}
		return left + float64(i)*plotW/float64(len(xs)-1)
	}
	yOf := func(v float64) float64 {
		if logScale {
			return top + plotH - (math.Log10(v)-lo)/(hi-lo)*plotH
		}
		return top + plotH - v/maxY*plotH
	}
	colors := []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

	ew := &errWriter{w: w}
	fmt.Fprintf(ew, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(ew, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	scale := ""
	if logScale {
		scale = " (log scale)"
	}
	fmt.Fprintf(ew, `<text x="%d" y="20" font-size="14">Throughput (req/s%s) by connections: %s</text>`+"\n", left, scale, xmlEscape(r.Server))
	var ticks []float64
	if logScale {
		for d := lo; d <= hi; d++ {
			for _, m := range []float64{1, 2, 5} {
				if v := m * math.Pow(10, d); d < hi || m == 1 {
					ticks = append(ticks, v)
				}
			}
		}
	} else {
		for i := 0; i <= 5; i++ {
			ticks = append(ticks, maxY*float64(i)/5)
		}
	}
	for _, v := range ticks {
		y := yOf(v)
		fmt.Fprintf(ew, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, left+plotW, y)
		fmt.Fprintf(ew, `<text x="%d" y="%.1f" text-anchor="end">%.0f</text>`+"\n", left-6, y+4, v)
	}
	for i, c := range xs {
		fmt.Fprintf(ew, `<text x="%.1f" y="%d" text-anchor="middle">%d</text>`+"\n", xOf(i), top+plotH+18, c)
	}
	fmt.Fprintf(ew, `<text x="%d" y="%d" text-anchor="middle">connections</text>`+"\n", left+plotW/2, height-10)
	fmt.Fprintf(ew, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, top+plotH, left+plotW, top+plotH)
	fmt.Fprintf(ew, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, top, left, top+plotH)
	colorOf := map[string]string{}
	next := 0
	for k, s := range all {
		base := strings.TrimSuffix(s.name, " (comparator)")
		col, ok := colorOf[base]
		if !ok {
			col = colors[next%len(colors)]
			colorOf[base] = col
			next++
		}
		var pts []string
		for i, c := range xs {
			if v, ok := s.points[c]; ok && (v > 0 || !logScale) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", xOf(i), yOf(v)))
			}
		}
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="6,4"`
		}
		fmt.Fprintf(ew, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", col, dash, strings.Join(pts, " "))
		for _, p := range pts {
			x, y, _ := strings.Cut(p, ",")
			fmt.Fprintf(ew, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", x, y, col)
		}
		ly := top + 10 + 18*k
		fmt.Fprintf(ew, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", width-right+15, ly, width-right+45, ly, col, dash)
		fmt.Fprintf(ew, `<text x="%d" y="%d">%s</text>`+"\n", width-right+50, ly+4, xmlEscape(s.name))
	}
	fmt.Fprintln(ew, `</svg>`)
	return ew.err
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := 1.0
	for p*10 <= v {
		p *= 10
	}
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func xmlEscape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
	return r.Replace(s)
}

// errWriter keeps the first write error so that a report's many Fprintf
// calls are checked once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
