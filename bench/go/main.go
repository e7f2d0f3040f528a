// Go-side benchmark: mapcore through its Go binding against map[string][]byte,
// sync.Map, VictoriaMetrics/fastcache and allegro/bigcache, plus floors (an
// empty cgo call, a memcpy of the bytes a full iteration yields) and the GC
// cost of holding each map while the program churns garbage.
//
// `bench-go` is the driver: for every size and contestant it runs itself as
// `bench-go child NAME N Q REPS` (a fresh process, so RSS per entry and GC
// numbers belong to one map), forwarding the JSON result lines (bench/DATA.md)
// to stdout. Progress goes to stderr.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

var sinkV uint64

// libID is the checksum of the libmapcore.a this binary was linked with
// (set by bench/Makefile with -ldflags -X, which also forces the relink).
var libID = "not set"

func envFlag(name string) bool {
	v := os.Getenv(name)
	return v != "" && v != "0"
}

func contestants(n int) []contestant {
	cs := []contestant{
		{name: "floor"},
	}
	cs = append(cs, mapcoreContestants()...)
	cs = append(cs,
		contestant{name: "gomap", new: newGoMap, presize: true},
		contestant{name: "syncmap", new: newSyncMap},
		contestant{name: "fastcache", new: newFastcache(n)},
		contestant{name: "bigcache", new: newBigcache, presize: true},
	)
	return cs
}

func sizesAndPlan() ([]int, func(n int) (q, reps, heavy, churn int)) {
	smoke, quick := envFlag("BENCH_SMOKE"), envFlag("BENCH_QUICK")
	sizes := []int{1_000_000, 10_000_000}
	if smoke {
		sizes = []int{20_000}
	} else if quick {
		sizes = []int{1_000_000}
	}
	if s := os.Getenv("BENCH_N"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			v, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				panic("BENCH_N: " + err.Error())
			}
			sizes = append(sizes, v)
		}
	}
	// Same plan as bench/rust/src/main.rs: reps runs of the query-type
	// operations, heavy of them with a rebuild and delete/re-insert.
	plan := func(n int) (q, reps, heavy, churn int) {
		switch {
		case smoke:
			q, reps, heavy = min(n, 20_000), 1, 1
		case quick:
			q, reps, heavy = min(n, 250_000), 1, 1
		case n >= 5_000_000:
			q, reps, heavy = 500_000, 3, 1
		default:
			q, reps, heavy = min(n, 500_000), 3, 3
		}
		churn = n * 400
		if smoke {
			churn = 16 << 20
		}
		if v, err := strconv.Atoi(os.Getenv("BENCH_Q")); err == nil && v > 0 {
			q = v
		}
		if v, err := strconv.Atoi(os.Getenv("BENCH_REPS")); err == nil && v > 0 {
			reps = v
		}
		if v, err := strconv.Atoi(os.Getenv("BENCH_HEAVY_REPS")); err == nil && v > 0 {
			heavy = v
		}
		heavy = min(heavy, reps)
		return
	}
	return sizes, plan
}

func main() {
	if len(os.Args) >= 7 && os.Args[1] == "child" {
		n, _ := strconv.Atoi(os.Args[3])
		q, _ := strconv.Atoi(os.Args[4])
		reps, _ := strconv.Atoi(os.Args[5])
		heavy, _ := strconv.Atoi(os.Args[6])
		child(os.Args[2], n, q, reps, heavy)
		return
	}
	sizes, plan := sizesAndPlan()
	var only map[string]bool
	if s := os.Getenv("BENCH_ONLY"); s != "" {
		only = map[string]bool{}
		for _, x := range strings.Split(s, ",") {
			only[x] = true
		}
	}
	fmt.Printf(`{"meta":true,"side":"go","lib_id":%q,"go":%q,"gomaxprocs":%d,"versions":%q}`+"\n", libID,
		runtime.Version(), runtime.GOMAXPROCS(0), depVersions())
	t0 := time.Now()
	for _, n := range sizes {
		q, reps, heavy, _ := plan(n)
		for _, c := range contestants(n) {
			if only != nil && !only[c.name] {
				continue
			}
			if c.name == "syncmap" && n >= 5_000_000 && only == nil && !envFlag("BENCH_ALL_PEERS") {
				// sync.Map alone takes about 4 minutes at 10M on the 2-core
				// machine (each forced GC of its heap takes ~20 s): it would
				// break the 15-minute budget of `make bench`.
				fmt.Fprintf(os.Stderr, "[go] syncmap N=%d skipped (set BENCH_ALL_PEERS=1 to run it)\n", n)
				continue
			}
			fmt.Fprintf(os.Stderr, "[go] %s N=%d Q=%d reps=%d heavy=%d\n", c.name, n, q, reps, heavy)
			cmd := exec.Command(os.Args[0], "child", c.name, strconv.Itoa(n), strconv.Itoa(q), strconv.Itoa(reps), strconv.Itoa(heavy))
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			tc := time.Now()
			if err := cmd.Run(); err != nil {
				fmt.Fprintf(os.Stderr, "[go] %s N=%d FAILED: %v\n", c.name, n, err)
				os.Exit(1)
			}
			fmt.Fprintf(os.Stderr, "[go] %s N=%d took %.1fs\n", c.name, n, time.Since(tc).Seconds())
		}
	}
	fmt.Printf(`{"meta":true,"side":"go","elapsed_s":%.1f}`+"\n", time.Since(t0).Seconds())
	fmt.Fprintf(os.Stderr, "[go] done in %.1fs\n", time.Since(t0).Seconds())
}

func depVersions() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var s []string
	for _, d := range bi.Deps {
		v := d.Version
		if d.Replace != nil {
			v = "=> " + d.Replace.Path
		}
		s = append(s, d.Path+" "+v)
	}
	return strings.Join(s, "; ")
}

// ------------------------------------------------------------------ results

type result struct {
	op, unit string
	threads  int
	runs     []float64
}

type results struct {
	contestant string
	n          int
	rs         []*result
}

func (r *results) add(op string, threads int, unit string, v float64) {
	for _, x := range r.rs {
		if x.op == op && x.threads == threads {
			x.runs = append(x.runs, v)
			return
		}
	}
	r.rs = append(r.rs, &result{op: op, unit: unit, threads: threads, runs: []float64{v}})
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

func (r *results) emit() {
	for _, x := range r.rs {
		runs := make([]string, len(x.runs))
		for i, v := range x.runs {
			runs[i] = strconv.FormatFloat(v, 'f', 3, 64)
		}
		fmt.Printf(`{"side":"go","contestant":%q,"op":%q,"n":%d,"threads":%d,"unit":%q,"median":%.3f,"runs":[%s]}`+"\n",
			r.contestant, x.op, r.n, x.threads, x.unit, median(x.runs), strings.Join(runs, ","))
		if !envFlag("BENCH_SMOKE") {
			fmt.Fprintf(os.Stderr, "  %-12s %-16s %dT %10.2f %s\n", r.contestant, x.op, x.threads, median(x.runs), x.unit)
		}
	}
}

func nsPer(t time.Time, ops int) float64 {
	return float64(time.Since(t).Nanoseconds()) / float64(max(ops, 1))
}

func rssBytes() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb * 1024
		}
	}
	return 0
}

func check(ok bool, what string, args ...any) {
	if !ok {
		fmt.Fprintf(os.Stderr, "CHECK FAILED: "+what+"\n", args...)
		os.Exit(2)
	}
}

// -------------------------------------------------------------------- child

func child(name string, n, q, reps, heavy int) {
	tg := time.Now()
	d := generate(n, q)
	sum := d.checksum()
	fmt.Fprintf(os.Stderr, "  data: N=%d Q=%d generated in %.2fs, checksum %016x\n", n, q, time.Since(tg).Seconds(), sum)
	fmt.Printf(`{"meta":true,"side":"go","contestant":%q,"n":%d,"q":%d,"reps":%d,"heavy_reps":%d,"data_checksum":"%016x"}`+"\n", name, n, q, reps, heavy, sum)
	out := &results{contestant: name, n: n}
	defer out.emit()
	if name == "floor" {
		floors(d, reps, out)
		return
	}
	for _, c := range contestants(n) {
		if c.name == name {
			run(c, d, reps, heavy, out)
			return
		}
	}
	check(false, "unknown contestant %s", name)
}

func floors(d *benchData, reps int, out *results) {
	calls := max(d.q, 1_000_000)
	src := append(append(make([]byte, 0, d.n*(klen+vlen)), d.keys...), d.vals...)
	dst := make([]byte, len(src))
	for i := range dst {
		dst[i] = 1
	}
	for r := 0; r < reps; r++ {
		t := time.Now()
		for i := 0; i < calls; i++ {
			emptyCgo()
		}
		out.add("empty_call", 1, "ns/op", nsPer(t, calls))
		t = time.Now()
		copy(dst, src)
		out.add("memcpy", 1, "ns/op", nsPer(t, d.n))
		sinkV += uint64(dst[len(dst)/2])
	}
}

func build(c contestant, d *benchData, capacity int) Map {
	m := c.new(capacity)
	for i := 0; i < d.n; i++ {
		m.Insert(d.key(i), d.val(i))
	}
	return m
}

func getBatch(m Map, keys []byte, n int, out []byte, lens []uint32) int {
	if b, ok := m.(Batcher); ok {
		return b.GetBatch(keys, n, out, lens)
	}
	hits, off := 0, 0
	for i := 0; i < n; i++ {
		if m.Get(keys[i*klen:(i+1)*klen], out[off:off+vlen]) {
			lens[i] = vlen
			off += vlen
			hits++
		} else {
			lens[i] = ^uint32(0)
		}
	}
	return hits
}

// run does reps runs of the query-type operations; the first heavy of them
// also rebuild the map and run delete-half / re-insert.
func run(c contestant, d *benchData, reps, heavy int, out *results) {
	buf := make([]byte, 64)
	var m Map
	for rep := 0; rep < reps; rep++ {
		rebuild := rep < heavy || m == nil
		if rebuild {
			if m != nil {
				m.Close()
			}
			m = builds(c, d, rep, out)
		}
		if rep == 0 {
			for j := 0; j < min(d.q, 10000); j++ {
				check(m.Get(d.hit[j*klen:(j+1)*klen], buf), "hit query %d missing", j)
				check(string(buf[:vlen]) == string(d.val(int(d.hitIdx[j]))), "value of hit query %d", j)
			}
		}
		queries(m, d, out)
		if rebuild {
			deleteReinsert(m, d, out)
		}
	}
	gcCost(m, d, out)
	m.Close()
}

// builds measures the insert rows: a build not presized (RSS/entry from the
// first build in this fresh process), a build through the batch API where
// there is one, and a presized build (where the map can be presized), which
// is returned.
func builds(c contestant, d *benchData, rep int, out *results) Map {
	n := d.n
	var before float64
	if rep == 0 {
		debug.FreeOSMemory() // a full GC, then memory returned to the OS
		before = rssBytes()
	}
	t := time.Now()
	m := build(c, d, 0)
	out.add("insert", 1, "ns/op", nsPer(t, n))
	if rep == 0 {
		out.add("rss_per_entry_peak", 1, "B/entry", (rssBytes()-before)/float64(n))
		debug.FreeOSMemory()
		out.add("rss_per_entry", 1, "B/entry", (rssBytes()-before)/float64(n))
		check(m.Len() == n, "len after build: %d", m.Len())
	}
	if _, ok := m.(Batcher); ok {
		m.Close()
		t = time.Now()
		mb := c.new(0)
		b := mb.(Batcher)
		for i := 0; i < n; i += 256 {
			k := min(256, n-i)
			b.InsertBatch(d.keys[i*klen:(i+k)*klen], d.vals[i*vlen:(i+k)*vlen], k)
		}
		out.add("insert_batch", 1, "ns/op", nsPer(t, n))
		check(mb.Len() == n, "len after batch build")
		m = mb
	}
	if !c.presize {
		return m
	}
	m.Close()
	m = nil
	t = time.Now()
	m = build(c, d, n)
	out.add("insert_presized", 1, "ns/op", nsPer(t, n))
	return m
}

func queries(m Map, d *benchData, out *results) {
	n, q := d.n, d.q
	buf := make([]byte, 64)
	bout := make([]byte, 256*vlen)
	lens := make([]uint32, 256)
	for _, o := range []struct {
		op   string
		keys []byte
		want int
	}{{"get_hit", d.hit, q}, {"get_zipf", d.zipf, q}, {"get_miss", d.miss, 0}} {
		hits := 0
		t := time.Now()
		for j := 0; j < q; j++ {
			if m.Get(o.keys[j*klen:(j+1)*klen:(j+1)*klen], buf) {
				hits++
			}
		}
		out.add(o.op, 1, "ns/op", nsPer(t, q))
		check(hits == o.want, "%s: %d hits, want %d", o.op, hits, o.want)
	}
	if _, ok := m.(*goMap); ok {
		// The cgo floor where it binds: the get_hit loop with one empty cgo
		// call per lookup. In a loop of cache-missing lookups the transition
		// costs several times the empty_call floor of a tight loop.
		hits := 0
		t := time.Now()
		for j := 0; j < q; j++ {
			emptyCgo()
			if m.Get(d.hit[j*klen:(j+1)*klen:(j+1)*klen], buf) {
				hits++
			}
		}
		out.add("get_hit_cgo", 1, "ns/op", nsPer(t, q))
		check(hits == q, "get_hit_cgo: %d hits", hits)
	}
	for _, o := range []struct {
		op string
		b  int
	}{{"get_batch64", 64}, {"get_batch256", 256}} {
		hits := 0
		t := time.Now()
		for j := 0; j < q; j += o.b {
			k := min(o.b, q-j)
			hits += getBatch(m, d.hit[j*klen:(j+k)*klen], k, bout, lens)
		}
		out.add(o.op, 1, "ns/op", nsPer(t, q))
		check(hits == q, "%s: %d hits", o.op, hits)
	}
	t := time.Now()
	cnt, acc := m.Iterate()
	if cnt >= 0 {
		out.add("iterate", 1, "ns/op", nsPer(t, n))
		check(cnt == n, "iterate count %d", cnt)
	}
	sinkV += acc
	if ia, ok := m.(interface{ IterateAll() (int, uint64) }); ok {
		t = time.Now()
		cnt, acc2 := ia.IterateAll()
		out.add("iterate_copy", 1, "ns/op", nsPer(t, n))
		check(cnt == n, "iterate (All) count %d", cnt)
		sinkV += acc2
	}

	t = time.Now()
	for _, op := range d.mixd {
		idx := int(op &^ setBit)
		if op&setBit != 0 {
			m.Set(d.key(idx), d.val((idx+1)%n))
		} else if m.Get(d.key(idx), buf) {
			acc++
		}
	}
	out.add("mixed", 1, "ns/op", nsPer(t, q))
	sinkV += acc

	if cm, ok := m.(Concurrent); ok {
		out.add("get_hit", 2, "ns/op", twoGoroutines(q, func(j int, buf []byte) {
			cm.CGet(d.hit[j*klen:(j+1)*klen], buf)
		}))
		out.add("mixed", 2, "ns/op", twoGoroutines(q, func(j int, buf []byte) {
			op := d.mixd[j]
			idx := int(op &^ setBit)
			if op&setBit != 0 {
				cm.CSet(d.key(idx), d.val((idx+1)%n))
			} else {
				cm.CGet(d.key(idx), buf)
			}
		}))
	}
}

func deleteReinsert(m Map, d *benchData, out *results) {
	n := d.n
	removed := 0
	t := time.Now()
	for i := 0; i < n; i += 2 {
		if m.Delete(d.key(i)) {
			removed++
		}
	}
	out.add("delete_half", 1, "ns/op", nsPer(t, removed))
	check(removed == (n+1)/2, "removed %d", removed)
	t = time.Now()
	for i := 0; i < n; i += 2 {
		m.Insert(d.key(i), d.val(i))
	}
	out.add("reinsert_half", 1, "ns/op", nsPer(t, removed))
	check(m.Len() == n, "len after reinsert %d", m.Len())
}

// twoGoroutines splits q operations between two goroutines (even / odd
// indices); returns wall time per operation (aggregate throughput), from the
// first goroutine's start to the last one's end.
func twoGoroutines(q int, f func(j int, buf []byte)) float64 {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	var spans [2][2]time.Time
	ready.Add(2)
	done.Add(2)
	for th := 0; th < 2; th++ {
		go func(th int) {
			buf := make([]byte, 64)
			ready.Done()
			<-start
			spans[th][0] = time.Now()
			for j := th; j < q; j += 2 {
				f(j, buf)
			}
			spans[th][1] = time.Now()
			done.Done()
		}(th)
	}
	ready.Wait()
	close(start)
	done.Wait()
	t0, t1 := spans[0][0], spans[0][1]
	if spans[1][0].Before(t0) {
		t0 = spans[1][0]
	}
	if spans[1][1].After(t1) {
		t1 = spans[1][1]
	}
	return float64(t1.Sub(t0).Nanoseconds()) / float64(max(q, 1))
}

// gcCost measures what holding the map costs the Go garbage collector:
// the wall time of a forced full GC (mark time of the live heap), and the GC
// CPU (runtime/metrics) while the program churns garbage with the map alive.
func gcCost(m Map, d *benchData, out *results) {
	_, plan := sizesAndPlan()
	_, _, _, churn := plan(d.n)
	// Up to three forced collections (fewer when each takes seconds).
	var spent time.Duration
	for i := 0; i < 3 && spent < 3*time.Second; i++ {
		t := time.Now()
		runtime.GC()
		spent += time.Since(t)
		out.add("gc_forced_ms", 1, "ms", float64(time.Since(t).Microseconds())/1000)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	// Go heap held by the map: live heap less the benchmark's own data.
	data := len(d.keys) + len(d.vals) + len(d.hit) + len(d.zipf) + len(d.miss) + 4*len(d.hitIdx) + 4*len(d.mixd)
	out.add("gc_map_heap_mb", 1, "MB", max(0, float64(ms.HeapAlloc)-float64(data))/(1<<20))
	names := []string{"/cpu/classes/gc/total:cpu-seconds", "/gc/cycles/total:gc-cycles", "/cpu/classes/gc/mark/assist:cpu-seconds",
		"/cpu/classes/gc/mark/dedicated:cpu-seconds", "/cpu/classes/gc/mark/idle:cpu-seconds"}
	s0 := make([]metrics.Sample, len(names))
	s1 := make([]metrics.Sample, len(names))
	for i, nm := range names {
		s0[i].Name, s1[i].Name = nm, nm
	}
	metrics.Read(s0)
	ring := make([][]byte, 4096)
	buf := make([]byte, 64)
	t := time.Now()
	allocated := 0
	for i := 0; allocated < churn; i++ {
		sz := 64 + (i*37)%448
		b := make([]byte, sz)
		b[0] = byte(i)
		ring[i%len(ring)] = b
		allocated += sz
		if i%64 == 0 {
			j := (i / 64) % d.q
			m.Get(d.hit[j*klen:(j+1)*klen], buf)
		}
	}
	wall := time.Since(t)
	runtime.KeepAlive(ring)
	metrics.Read(s1)
	f := func(i int) float64 {
		if s0[i].Value.Kind() == metrics.KindFloat64 {
			return s1[i].Value.Float64() - s0[i].Value.Float64()
		}
		return float64(s1[i].Value.Uint64() - s0[i].Value.Uint64())
	}
	out.add("gc_churn_cpu_ms", 1, "ms", f(0)*1000)
	out.add("gc_churn_cycles", 1, "cycles", f(1))
	out.add("gc_churn_assist_ms", 1, "ms", f(2)*1000)
	mark := (f(2) + f(3) + f(4)) * 1000
	out.add("gc_churn_mark_ms", 1, "ms", mark)
	if f(1) > 0 {
		out.add("gc_mark_ms_per_cycle", 1, "ms", mark/f(1))
	}
	out.add("gc_churn_wall_ms", 1, "ms", float64(wall.Microseconds())/1000)
	runtime.KeepAlive(m)
}
