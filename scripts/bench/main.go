// Command bench is scripts/bench.sh's helper: what bash cannot do well
// (data files of a million lines, reading hyperfine's JSON, a free port),
// in Go, so the script needs nothing beyond Go and the tools it measures.
//
//	bench gen jsonl|resp|sql N OUT EXP   data files, keys key0000000.. (see gen)
//	bench hf FILE INDEX FIELD           a hyperfine result's field, in ms
//	bench noise FILE                    "pct command" per result: stddev/mean
//	bench json FIELD...                 fields of the JSON object on stdin
//	bench freeport                      a free TCP port on 127.0.0.1
//	bench paired RUNS NAME CMD... [-- NAME CMD...]...
//	                                    interleaved runs; see paired
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: bench gen|hf|noise|json|freeport ...")
	}
	var err error
	switch args := os.Args[2:]; os.Args[1] {
	case "gen":
		err = gen(args)
	case "hf":
		err = hf(args)
	case "noise":
		err = noise(args)
	case "json":
		err = jsonFields(args)
	case "freeport":
		err = freePort()
	case "paired":
		err = paired(args)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "bench:", msg)
	os.Exit(2)
}

// gen writes N entries key0000000.. with values value-0000000..:
// jsonl for livedict import (EXP: expires_at_ms, a number or null), resp
// for redis-cli --pipe (EXP: EX seconds), sql for sqlite3 (EXP: expiry ms,
// rows of kv(k, v, e) in one transaction).
func gen(args []string) error {
	if len(args) != 4 {
		return fmt.Errorf("usage: gen jsonl|resp|sql N OUT EXP")
	}
	kind, out, exp := args[0], args[2], args[3]
	n, err := strconv.Atoi(args[1])
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if kind == "sql" {
		w.WriteString("BEGIN;\n")
	}
	for i := 0; i < n; i++ {
		k, v := fmt.Sprintf("key%07d", i), fmt.Sprintf("value-%07d", i)
		switch kind {
		case "jsonl":
			fmt.Fprintf(w, `{"bucket":"main","key":"%s","value_b64":"%s","expires_at_ms":%s}`+"\n", k, base64.StdEncoding.EncodeToString([]byte(v)), exp)
		case "resp":
			fmt.Fprintf(w, "*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$2\r\nEX\r\n$%d\r\n%s\r\n", len(k), k, len(v), v, len(exp), exp)
		case "sql":
			fmt.Fprintf(w, "INSERT INTO kv VALUES('%s','%s',%s);\n", k, v, exp)
		default:
			return fmt.Errorf("gen: unknown kind %q", kind)
		}
	}
	if kind == "sql" {
		w.WriteString("COMMIT;\n")
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

type hyperfineResult struct {
	Command string   `json:"command"`
	Mean    float64  `json:"mean"`
	Stddev  *float64 `json:"stddev"`
	Median  float64  `json:"median"`
	Min     float64  `json:"min"`
	Max     float64  `json:"max"`
	User    float64  `json:"user"`
	System  float64  `json:"system"`
}

func readHyperfine(file string) ([]hyperfineResult, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var r struct {
		Results []hyperfineResult `json:"results"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	return r.Results, nil
}

// hf prints one field of one result of a hyperfine --export-json file, in
// milliseconds.
func hf(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("usage: hf FILE INDEX FIELD")
	}
	rs, err := readHyperfine(args[0])
	if err != nil {
		return err
	}
	i, err := strconv.Atoi(args[1])
	if err != nil || i < 0 || i >= len(rs) {
		return fmt.Errorf("hf: no result %q in %s", args[1], args[0])
	}
	r := rs[i]
	v, ok := map[string]float64{"mean": r.Mean, "median": r.Median, "min": r.Min, "max": r.Max, "user": r.User, "system": r.System}[args[2]]
	if !ok {
		return fmt.Errorf("hf: unknown field %q", args[2])
	}
	fmt.Printf("%.6f\n", v*1000)
	return nil
}

// noise prints, per result, its relative standard deviation (percent) and
// its command's program name.
func noise(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: noise FILE")
	}
	rs, err := readHyperfine(args[0])
	if err != nil {
		return err
	}
	for _, r := range rs {
		sd := 0.0
		if r.Stddev != nil {
			sd = *r.Stddev
		}
		prog := r.Command
		if f := strings.Fields(prog); len(f) > 0 {
			prog = filepath.Base(f[0])
		}
		fmt.Printf("%.1f %s\n", 100*sd/r.Mean, prog)
	}
	return nil
}

// jsonFields prints the named fields of the JSON object on stdin, space
// separated.
func jsonFields(names []string) error {
	var m map[string]any
	d := json.NewDecoder(os.Stdin)
	d.UseNumber() // 1000000, not 1e+06
	if err := d.Decode(&m); err != nil {
		return err
	}
	var out []string
	for _, n := range names {
		v, ok := m[n]
		if !ok {
			return fmt.Errorf("json: no field %q", n)
		}
		out = append(out, fmt.Sprint(v))
	}
	fmt.Println(strings.Join(out, " "))
	return nil
}

// freePort prints a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	return nil
}

// paired runs each of the commands once per round, in a fresh random order
// each round, RUNS rounds, so every command meets the same load drift as
// the others. It prints, per command, "NAME MEDIAN_MS RATIO", where RATIO
// is the median over the rounds of (the first command's time) / (this
// command's time in the same round): the first command's cost as a
// multiple of this one's, less noisy than a ratio of medians on a busy
// machine. Each command must exit 0; its output is discarded. With
// "-sep S" after RUNS, S separates the commands instead of "--" (for
// commands that take a "--" of their own, as lock does).
func paired(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: paired RUNS [-sep S] NAME CMD... [-- NAME CMD...]...")
	}
	runs, err := strconv.Atoi(args[0])
	if err != nil || runs < 1 {
		return fmt.Errorf("paired: bad RUNS %q", args[0])
	}
	sep := "--"
	if len(args) > 3 && args[1] == "-sep" {
		sep, args = args[2], append(args[:1:1], args[3:]...)
	}
	type cmd struct {
		name string
		argv []string
		ms   []float64
	}
	var cmds []*cmd
	for group := range strings.SplitSeq(strings.Join(args[1:], "\x00"), "\x00"+sep+"\x00") {
		f := strings.Split(group, "\x00")
		if len(f) < 2 {
			return fmt.Errorf("paired: %q: want NAME CMD...", group)
		}
		cmds = append(cmds, &cmd{name: f[0], argv: f[1:]})
	}
	order := make([]int, len(cmds))
	for i := range order {
		order[i] = i
	}
	for range runs {
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			c := cmds[i]
			x := exec.Command(c.argv[0], c.argv[1:]...)
			start := time.Now()
			if err := x.Run(); err != nil {
				return fmt.Errorf("paired: %s: %v", strings.Join(c.argv, " "), err)
			}
			c.ms = append(c.ms, float64(time.Since(start).Microseconds())/1000)
		}
	}
	for _, c := range cmds {
		ratios := make([]float64, runs)
		for r := range runs {
			ratios[r] = cmds[0].ms[r] / c.ms[r]
		}
		fmt.Printf("%s %.3f %.3f\n", c.name, median(c.ms), median(ratios))
	}
	return nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
