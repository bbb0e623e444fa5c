package store

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
)

var fileRecordCases = []fileRecord{
	{Key: "k", Value: []byte{}},
	{Key: "key", Value: []byte("value\n"), ExpiresAt: 1700000000123},
	{Key: "\xff\x01/..", Value: []byte{0, 1, 2, 255}, ExpiresAt: -5},
	{Key: strings.Repeat("K", MaxKeyBytes), Value: bytes.Repeat([]byte("v"), 100000)},
}

func TestFileRecordRoundTrip(t *testing.T) {
	for _, want := range fileRecordCases {
		data := fileRecordEncode(want.ExpiresAt, want.Key, want.Value)
		got, err := fileRecordDecode(data)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if got.Key != want.Key || got.ExpiresAt != want.ExpiresAt || !bytes.Equal(got.Value, want.Value) || got.ValueLen != int64(len(want.Value)) {
			t.Fatalf("round trip: got %+v", got)
		}
		head, valueAt, err := fileRecordDecodeHeader(data[:min(len(data), fileRecordHeaderMax)], int64(len(data)))
		if err != nil || head.Key != want.Key || head.ExpiresAt != want.ExpiresAt || head.Value != nil || valueAt != len(data)-len(want.Value)-4 {
			t.Fatalf("header: %+v, %d, %v", head, valueAt, err)
		}
	}
}

func TestFileRecordTruncated(t *testing.T) {
	data := fileRecordEncode(42, "key", []byte("hello"))
	for n := 0; n < len(data); n++ {
		if _, err := fileRecordDecode(data[:n]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("truncated to %d bytes: err = %v", n, err)
		}
	}
	// Trailing garbage is damage too.
	if _, err := fileRecordDecode(append(data, 0)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("extra byte: err = %v", err)
	}
}

func TestFileRecordFlipped(t *testing.T) {
	data := fileRecordEncode(42, "key", []byte("hello"))
	for i := range data {
		for bit := 0; bit < 8; bit++ {
			bad := bytes.Clone(data)
			bad[i] ^= 1 << bit
			if _, err := fileRecordDecode(bad); !errors.Is(err, ErrCorrupt) {
				t.Errorf("bit %d of byte %d flipped: err = %v", bit, i, err)
			}
		}
	}
}

func TestFileRecordHugeLengths(t *testing.T) {
	// A damaged value length must not be trusted to size anything.
	data := fileRecordEncode(0, "k", []byte("v"))
	for _, b := range []byte{0x7f, 0xff} {
		bad := bytes.Clone(data)
		for i := 18; i < 26; i++ {
			bad[i] = b
		}
		if _, err := fileRecordDecode(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("value length %x: err = %v", bad[18:26], err)
		}
	}
	bad := bytes.Clone(data)
	copy(bad[13:17], []byte{0xff, 0xff, 0xff, 0xff})
	if _, err := fileRecordDecode(bad); !errors.Is(err, ErrCorrupt) {
		t.Errorf("key length: err = %v", err)
	}
	// The header alone must agree with the file size.
	if _, _, err := fileRecordDecodeHeader(data, int64(len(data))+1); !errors.Is(err, ErrCorrupt) {
		t.Errorf("size mismatch: err = %v", err)
	}
}

func FuzzFileRecordDecode(f *testing.F) {
	for _, r := range fileRecordCases[:3] {
		f.Add(fileRecordEncode(r.ExpiresAt, r.Key, r.Value))
	}
	f.Add([]byte("LDKV\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := fileRecordDecode(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
		} else if again := fileRecordEncode(rec.ExpiresAt, rec.Key, rec.Value); !bytes.Equal(again, data) {
			t.Fatalf("decoded record re-encodes differently")
		}
		// Any entry built from the fuzzed bytes round-trips.
		if key := strings.ReplaceAll(string(data[:min(len(data), 300)]), "\x00", ""); key != "" {
			exp := int64(len(data)) * -7919
			got, err := fileRecordDecode(fileRecordEncode(exp, key, data))
			if err != nil || got.Key != key || got.ExpiresAt != exp || !bytes.Equal(got.Value, data) {
				t.Fatalf("round trip of %q: %+v, %v", key, got, err)
			}
		}
		// The header path must be as safe, for any claimed size.
		for _, size := range []int64{int64(len(data)), int64(len(data)) + 1, 1 << 40} {
			head, _, err := fileRecordDecodeHeader(data, size)
			if err == nil && size == int64(len(data)) && (rec.Key != head.Key || rec.ExpiresAt != head.ExpiresAt) && rec.Key != "" {
				t.Fatalf("header and full decode disagree")
			}
		}
	})
}

// FuzzFileJournalParse: a journal whose checksum matched but whose body is
// arbitrary must fail cleanly, never panic or allocate past its own size.
func FuzzFileJournalParse(f *testing.F) {
	rec := fileRecordEncode(0, "k", []byte("v"))
	var ok []byte
	ok = append(ok, fileJournalMagic...)
	ok = append(ok, fileJournalVersion, fileOpPut, 4)
	ok = append(ok, "main"...)
	ok = append(ok, byte(len(rec)))
	ok = append(ok, rec...)
	ok = append(ok, fileOpEnd, 1)
	f.Add(ok)
	internal := append([]byte(fileJournalMagic), fileJournalVersionInternal, fileOpPut, 7)
	internal = append(internal, "!outbox"...)
	internal = append(internal, byte(len(rec)))
	internal = append(internal, rec...)
	internal = append(internal, fileOpDel, 7)
	internal = append(internal, "!outbox"...)
	internal = append(internal, 1, 'k', fileOpEnd, 2)
	f.Add(internal)
	f.Add([]byte(fileJournalMagic))
	f.Add(append([]byte(fileJournalMagic), fileJournalVersion, fileOpDel, 4, 'm', 'a', 'i', 'n', 0xff, 0xff, 0xff, 0xff, 0x0f))
	f.Fuzz(func(t *testing.T, body []byte) {
		jr := &fileJournalReader{r: bufio.NewReader(bytes.NewReader(body)), left: int64(len(body))}
		ops := 0
		err := jr.read(func(op fileOp) error {
			ops++
			if op.kind == fileOpPut && len(op.data) > len(body) {
				t.Fatalf("op larger than the journal")
			}
			return nil
		})
		if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNewerStore) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}
