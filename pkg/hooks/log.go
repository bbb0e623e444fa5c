package hooks

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/livedict/livedict/pkg/store"
)

// Run statuses in the log.
const (
	// StatusOK: the hook exited 0 in time; the event is delivered.
	StatusOK = "ok"
	// StatusRetry: the run failed or timed out; the event will be retried.
	StatusRetry = "retry"
	// StatusFailed: the last allowed run failed; the event is given up.
	StatusFailed = "failed"
	// StatusSkipped: the hook was removed or disabled before its event
	// was delivered; the event is dropped without a run.
	StatusSkipped = "skipped"
	// StatusRefused: on a shared store, this host's hook key does not
	// verify the definition, so its events are not run here (see
	// LoadHookKey). It is a state in 'hook list', and a record in the
	// log (no run: ExitCode -1, Error says why) once per version of the
	// definition, as well as a line in the daemon's log.
	StatusRefused = "refused"
)

// logKeep is how many runs the log keeps; older ones are dropped as new
// ones arrive.
const logKeep = 1000

// logOutputCap is how much of a run's output tail the log keeps.
const logOutputCap = 4 << 10

// Run is one logged hook run.
type Run struct {
	ID       uint64 `json:"id"`
	Time     int64  `json:"time"` // start, Unix ms
	HookID   int64  `json:"hook"`
	HookName string `json:"hook_name,omitempty"`
	Event    Event  `json:"event"`
	Bucket   string `json:"bucket"`
	Key      []byte `json:"key"`
	Attempt  int    `json:"attempt"` // 1 for the first run of an event
	// Events is how many events a batch run had (Event, Bucket and Key
	// are its first one's, Event all their kinds); 0 for a single event.
	Events int    `json:"events,omitempty"`
	Status string `json:"status"`
	// ExitCode is the hook's exit status; -1 when a signal ended it or it
	// never ran.
	ExitCode   int    `json:"exit_code"`
	Signal     string `json:"signal,omitempty"`
	TimedOut   bool   `json:"timed_out,omitempty"`
	DurationMs int64  `json:"duration_ms"`
	Output     []byte `json:"output,omitempty"`
	OutputCut  int64  `json:"output_cut,omitempty"` // bytes cut from the front
	Error      string `json:"error,omitempty"`
}

// appendRun adds r to the log, dropping the oldest entry beyond logKeep.
func appendRun(tx store.Tx, r *Run) error {
	id, err := nextSeq(tx, "run")
	if err != nil {
		return err
	}
	r.ID = id
	if n := len(r.Output); n > logOutputCap {
		r.OutputCut += int64(n - logOutputCap)
		r.Output = r.Output[n-logOutputCap:]
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := tx.Put(store.Entry{Bucket: runsBucket, Key: seqKey(id), Value: b}); err != nil {
		return err
	}
	if id > logKeep {
		_, err = tx.Delete(runsBucket, seqKey(id-logKeep))
	}
	return err
}

// Log returns the last n runs recorded (all when n <= 0), oldest first by
// the time each started, which is the time shown: runs are recorded as
// they end, so a long run recorded after shorter ones that started later
// listed its earlier time out of order; only failed ones when failedOnly.
func Log(tx store.Tx, n int, failedOnly bool) ([]Run, error) {
	var runs []Run
	err := tx.Scan(runsBucket, "", true, func(e store.Entry) error {
		var r Run
		if err := json.Unmarshal(e.Value, &r); err != nil {
			return fmt.Errorf("%w: hook log entry %s: %v", store.ErrCorrupt, e.Key, err)
		}
		if !failedOnly || r.Status == StatusFailed {
			runs = append(runs, r)
		}
		return nil
	})
	if n > 0 && len(runs) > n {
		runs = runs[len(runs)-n:]
	}
	slices.SortStableFunc(runs, func(a, b Run) int { return cmp.Compare(a.Time, b.Time) })
	return runs, err
}
