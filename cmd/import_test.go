package cmd

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/livedict/livedict/pkg/store"
)

// readImport parses in parallel chunks; order and line numbers must come
// out as if it read line by line (run under -race).
func TestReadImportOrderAndErrors(t *testing.T) {
	var in bytes.Buffer
	const n = 10000
	for i := 0; i < n; i++ {
		fmt.Fprintf(&in, `{"bucket":"b%d","key":"k%05d","value":"v%d","expires_at_ms":null}`+"\n", i%3, i, i)
		if i%1000 == 0 {
			in.WriteString("\n") // blank lines are skipped but counted
		}
	}
	entries, err := readImport(context.Background(), bytes.NewReader(in.Bytes()), "main", math.MaxInt64, store.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != n {
		t.Fatalf("%d entries, want %d", len(entries), n)
	}
	for i, e := range entries {
		if e.Key != fmt.Sprintf("k%05d", i) || e.Bucket != fmt.Sprintf("b%d", i%3) || string(e.Value) != fmt.Sprint("v", i) {
			t.Fatalf("entry %d = %+v", i, e)
		}
	}

	bad := in.String() + "{\"key\":\"x\",\"value\":\"v\",\"extra\":1}\n"
	_, err = readImport(context.Background(), strings.NewReader(bad), "main", math.MaxInt64, store.Limits{}, nil)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("line %d:", n+n/1000+1)) {
		t.Fatalf("error = %v, want one naming line %d", err, n+n/1000+1)
	}

	_, err = readImport(context.Background(), strings.NewReader(`{"key":"k","value":"12345"}`), "main", math.MaxInt64, store.Limits{MaxValueBytes: 4}, nil)
	if !errors.Is(err, store.ErrValueTooLarge) {
		t.Fatalf("over max_value_bytes: %v", err)
	}
}

// FuzzParseImportLine: any line either fails cleanly or yields an entry
// with a valid bucket and key; an exported entry always parses back to
// itself.
func FuzzParseImportLine(f *testing.F) {
	f.Add([]byte(`{"bucket":"main","key":"k","value_b64":"dg==","expires_at_ms":null}`), "k", []byte("v"))
	f.Add([]byte(`{"key_b64":"/w==","value":"x","expires_at_ms":5}`), "\xff", []byte{0, 1})
	f.Add([]byte(`{"key":"a"}{"key":"b"}`), "a b", []byte(""))
	f.Fuzz(func(t *testing.T, line []byte, key string, value []byte) {
		if e, err := parseImportLine(line, "main", math.MaxInt64); err == nil {
			if store.ValidateBucket(e.Bucket) != nil || store.ValidateKey(e.Key) != nil || e.ExpiresAt < 0 || e.Value == nil {
				t.Fatalf("accepted %q as %+v", line, e)
			}
		}
		if store.ValidateKey(key) != nil {
			return
		}
		o := keyFields("main", key)
		o = append(o, field{"value_b64", base64.StdEncoding.EncodeToString(value)}, field{"expires_at_ms", nil})
		exported, err := o.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		e, err := parseImportLine(exported, "other", math.MaxInt64)
		if err != nil || e.Key != key || e.Bucket != "main" || !bytes.Equal(e.Value, value) || e.ExpiresAt != 0 {
			t.Fatalf("export %s parsed back as %+v, %v", exported, e, err)
		}
	})
}

// FuzzFastImportLine: a line the direct reader takes means what the JSON
// decoder makes of it, entry and error alike.
func FuzzFastImportLine(f *testing.F) {
	f.Add([]byte(`{"bucket":"main","key":"k","value_b64":"dg==","expires_at_ms":null}`+"\n"), "main")
	f.Add([]byte(`{"bucket":"b","key":"a b","value_b64":"","expires_at_ms":1767225599000}`), "main")
	f.Add([]byte(`{"bucket":"b","key":"k","value_b64":"dg=","expires_at_ms":0}`), "b")
	f.Add([]byte(`{"bucket":"!x","key":"","value_b64":"dg==","expires_at_ms":007}`), "")
	f.Add([]byte(`{"bucket":"b","key":"k","value_b64":"dg==","expires_at_ms":999999999999999999}`), "b")
	f.Fuzz(func(t *testing.T, line []byte, prev string) {
		bucket := prev
		l, ok := fastImportLine(line, &bucket)
		if !ok {
			return
		}
		if *l.Bucket != bucket {
			t.Fatalf("bucket %q, kept %q", *l.Bucket, bucket)
		}
		const maxAt = 4102444800000
		fast, fastErr := l.entry("main", maxAt)
		slow, slowErr := parseImportLine(line, "main", maxAt)
		if (fastErr == nil) != (slowErr == nil) || fastErr != nil && fastErr.Error() != slowErr.Error() {
			t.Fatalf("%q: direct error %v, decoder error %v", line, fastErr, slowErr)
		}
		if fastErr == nil && (fast.Bucket != slow.Bucket || fast.Key != slow.Key || !bytes.Equal(fast.Value, slow.Value) || fast.ExpiresAt != slow.ExpiresAt) {
			t.Fatalf("%q: direct %+v, decoder %+v", line, fast, slow)
		}
	})
}

// Every export line takes the direct path, and a chunk with one line of
// another form is read whole by the decoder, to the same entries.
func TestFastImportChunk(t *testing.T) {
	var lines [][]byte
	for i, k := range []string{"a", "b c", "<&>", "k\x7f", "é", "\xff"} {
		e := store.Entry{Bucket: "main", Key: k, Value: []byte(k), ExpiresAt: int64(i)}
		lines = append(lines, appendExportLine(nil, e, false))
	}
	var got []store.Entry
	if !fastImportChunk(lines[:2], "main", math.MaxInt64, store.Limits{}, &got) || len(got) != 2 || got[1].Key != "b c" {
		t.Fatalf("export's own lines: %+v", got)
	}
	got = got[:0]
	if fastImportChunk(lines, "main", math.MaxInt64, store.Limits{}, &got) {
		t.Fatal("lines with escapes taken directly")
	}
	entries, err := readImport(context.Background(), bytes.NewReader(bytes.Join(lines, nil)), "main", math.MaxInt64, store.Limits{}, nil)
	if err != nil || len(entries) != len(lines) || entries[5].Key != "\xff" || entries[1].ExpiresAt != 1 {
		t.Fatalf("mixed chunk: %+v, %v", entries, err)
	}
}
