// Package runcache caches a command's result (stdout bytes, stderr bytes,
// exit status) in an ordinary key, for `livedict run`, as bkt does, with
// single-flight: concurrent callers of a missing entry run the command
// once through a lease and the others wait (on a wake.Waker) for its
// result.
package runcache

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// magic starts every encoded Entry, so a key that holds something else
// (a user's value in the same bucket) is never replayed as a result.
const magic = "ldrun1\n"

// ErrNotEntry: the key holds something that is not a cached result.
var ErrNotEntry = errors.New("not a cached run result")

// Entry is one cached result.
type Entry struct {
	// Created is when the command finished (Unix ms); --stale measures
	// age from it.
	Created int64
	// Status is the exit status, as a shell reports it.
	Status int
	Stdout []byte
	Stderr []byte
}

// Encode returns e as a binary-safe record:
//
//	"ldrun1\n" | created int64 BE | status int32 BE |
//	uvarint len | stdout | uvarint len | stderr
func (e Entry) Encode() []byte {
	b := make([]byte, 0, len(magic)+12+2*binary.MaxVarintLen64+len(e.Stdout)+len(e.Stderr))
	b = append(b, magic...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Created))
	b = binary.BigEndian.AppendUint32(b, uint32(int32(e.Status)))
	b = binary.AppendUvarint(b, uint64(len(e.Stdout)))
	b = append(b, e.Stdout...)
	b = binary.AppendUvarint(b, uint64(len(e.Stderr)))
	return append(b, e.Stderr...)
}

// EncodedSize is len(e.Encode()) without encoding.
func EncodedSize(stdout, stderr int) int {
	return len(magic) + 12 + uvarintLen(uint64(stdout)) + stdout + uvarintLen(uint64(stderr)) + stderr
}

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}

// Decode parses a record made by Encode. It refuses anything else:
// another magic, lengths past the end, trailing bytes.
func Decode(b []byte) (Entry, error) {
	bad := func(why string) (Entry, error) { return Entry{}, fmt.Errorf("%w: %s", ErrNotEntry, why) }
	if len(b) < len(magic)+12 || string(b[:len(magic)]) != magic {
		return bad("no header")
	}
	b = b[len(magic):]
	e := Entry{Created: int64(binary.BigEndian.Uint64(b)), Status: int(int32(binary.BigEndian.Uint32(b[8:])))}
	b = b[12:]
	var err error
	if e.Stdout, b, err = chunk(b); err != nil {
		return bad("stdout: " + err.Error())
	}
	if e.Stderr, b, err = chunk(b); err != nil {
		return bad("stderr: " + err.Error())
	}
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	return e, nil
}

func chunk(b []byte) ([]byte, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || k != uvarintLen(n) { // one encoding per entry: no padded lengths
		return nil, nil, errors.New("bad length")
	}
	b = b[k:]
	if n > uint64(len(b)) {
		return nil, nil, errors.New("length past the end")
	}
	return b[:n:n], b[n:], nil
}
