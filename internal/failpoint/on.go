//go:build failpoints

package failpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Enabled reports whether this binary was built with failpoints.
const Enabled = true

// Environment variables read by Inject.
const (
	EnvSpec = "RDB_FAILPOINTS"
	EnvFile = "RDB_FAILPOINTS_FILE"
)

// term is one armed failpoint.
type term struct {
	action string        // panic, exit, kill, sleep
	sleep  time.Duration // for sleep
	at     int           // fire on this hit
	onward bool          // and every later one
	hits   int
}

var state struct {
	mu    sync.Mutex
	spec  string // the spec the terms were parsed from
	terms map[string]*term
}

// Inject runs the action armed for name, if any (see the package doc).
func Inject(name string) {
	spec := os.Getenv(EnvSpec)
	if path := os.Getenv(EnvFile); path != "" {
		if b, err := os.ReadFile(path); err == nil {
			spec = strings.TrimSpace(spec + ";" + string(b))
		}
	}
	state.mu.Lock()
	if spec != state.spec || state.terms == nil {
		terms, err := parse(spec)
		if err != nil {
			fmt.Fprintf(os.Stderr, "failpoint: ignoring bad spec %q: %v\n", spec, err)
			terms = map[string]*term{}
		}
		state.spec, state.terms = spec, terms
	}
	t, ok := state.terms[name]
	fire := false
	if ok {
		t.hits++
		fire = t.hits == t.at || (t.onward && t.hits > t.at)
	}
	state.mu.Unlock()
	if !fire {
		return
	}
	fmt.Fprintf(os.Stderr, "failpoint %s: %s (hit %d)\n", name, t.action, t.hits)
	switch t.action {
	case "panic":
		panic("failpoint " + name)
	case "exit":
		os.Exit(3)
	case "kill":
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Hour) // the signal is on its way
	case "sleep":
		time.Sleep(t.sleep)
	}
}

// parse parses a spec: terms name=action[@N[+]] separated by ';', ',' or
// newlines. Empty terms are ignored.
func parse(spec string) (map[string]*term, error) {
	out := map[string]*term{}
	for _, raw := range strings.FieldsFunc(spec, func(r rune) bool { return r == ';' || r == ',' || r == '\n' }) {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		name, act, ok := strings.Cut(raw, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("term %q: want name=action", raw)
		}
		t := &term{at: 1}
		if a, n, ok := strings.Cut(act, "@"); ok {
			act = a
			if strings.HasSuffix(n, "+") {
				t.onward, n = true, strings.TrimSuffix(n, "+")
			}
			at, err := strconv.Atoi(n)
			if err != nil || at < 1 {
				return nil, fmt.Errorf("term %q: bad hit number %q", raw, n)
			}
			t.at = at
		}
		switch {
		case act == "panic" || act == "exit" || act == "kill" || act == "off":
			t.action = act
		case strings.HasPrefix(act, "sleep(") && strings.HasSuffix(act, ")"):
			d, err := time.ParseDuration(act[len("sleep(") : len(act)-1])
			if err != nil {
				return nil, fmt.Errorf("term %q: %w", raw, err)
			}
			t.action, t.sleep = "sleep", d
		default:
			return nil, fmt.Errorf("term %q: unknown action %q (panic, exit, kill, sleep(d), off)", raw, act)
		}
		if t.action == "off" {
			continue
		}
		out[strings.TrimSpace(name)] = t
	}
	return out, nil
}
