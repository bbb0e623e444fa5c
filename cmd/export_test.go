package cmd

import (
	"bytes"
	"testing"

	"github.com/livedict/livedict/pkg/store"
)

// FuzzExportLine: export's direct line writer makes exactly the bytes of
// the general JSON object, whatever the bucket, key, value and deadline.
func FuzzExportLine(f *testing.F) {
	for _, s := range []string{"", "k", "a b", `q"`, `b\s`, "<&>", "\x00", "\x7f", "é", "\xff", "\u2028", "\u202e", "~!#$%^*()"} {
		f.Add("main", s, []byte(s), int64(0), false)
		f.Add(s, "key", []byte{}, int64(1767225599000), true)
	}
	f.Add("b", "k", []byte("v"), int64(-1), false)
	f.Fuzz(func(t *testing.T, bucket, key string, value []byte, at int64, sealed bool) {
		e := store.Entry{Bucket: bucket, Key: key, Value: value, ExpiresAt: at}
		got := appendExportLine([]byte("prefix"), e, sealed)
		want := append([]byte("prefix"), objectExportLine(e, sealed)...)
		if !bytes.Equal(got, want) {
			t.Fatalf("export line of %q/%q:\n got %s\nwant %s", bucket, key, got, want)
		}
	})
}

// A large export's lines go in chunks; every line is kept, in order.
func TestExportLinesChunks(t *testing.T) {
	var l heldLines
	var want []byte
	value := bytes.Repeat([]byte("v"), 3000)
	for i := 0; i < 2000; i++ {
		e := store.Entry{Bucket: "main", Key: "k" + string(rune('a'+i%26)), Value: value, ExpiresAt: int64(i)}
		c := l.next()
		*c = appendExportLine(*c, e, false)
		want = append(want, objectExportLine(e, false)...)
	}
	if len(l.chunks) < 3 {
		t.Fatalf("%d chunks for %d bytes", len(l.chunks), len(want))
	}
	n := 0
	for _, c := range l.counts {
		n += c
	}
	if n != 2000 || l.n != 2000 {
		t.Fatalf("counted %d / %d lines, want 2000", n, l.n)
	}
	if got := bytes.Join(l.chunks, nil); !bytes.Equal(got, want) {
		t.Fatal("the chunks' lines differ from the lines written one by one")
	}
}

// FuzzKeyLine: keys --json's direct line writer makes exactly the bytes of
// the general JSON object, whatever the bucket and key.
func FuzzKeyLine(f *testing.F) {
	for _, s := range []string{"", "k", "a b", `q"`, `b\s`, "<&>", "\x00", "\x7f", "é", "\xff", "\u2028", "~!#$%^*()"} {
		f.Add("main", s)
		f.Add(s, "key")
	}
	a := &App{JSON: true, IO: &IOStreams{}}
	f.Fuzz(func(t *testing.T, bucket, key string) {
		got := a.appendKeyLine([]byte("prefix"), bucket, key, false, false)
		j, err := keyFields(bucket, key).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		want := append(append([]byte("prefix"), j...), '\n')
		if !bytes.Equal(got, want) {
			t.Fatalf("key line of %q/%q:\n got %s\nwant %s", bucket, key, got, want)
		}
	})
}
