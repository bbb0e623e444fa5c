//go:build unix

package store

import (
	"fmt"
	"testing"
	"time"
)

// fillBucket puts n live keys into bucket in one commit.
func fillBucket(t *testing.T, s Store, bucket string, n int) {
	t.Helper()
	mustUpdate(t, s, func(tx Tx) error {
		for i := range n {
			if err := tx.Put(Entry{Bucket: bucket, Key: fmt.Sprintf("k%05d", i), Value: []byte("v")}); err != nil {
				return err
			}
		}
		return nil
	})
}

// TestFileDropReadsFirstLiveKey: learning whether a dropped bucket had a
// live key reads records only up to the first live one, not the whole
// bucket (a 50,000-key drop read every file under the lock); a bucket of
// expired keys is still read through and reports false.
func TestFileDropReadsFirstLiveKey(t *testing.T) {
	s, clock := newTestFile(t)
	fillBucket(t, s, "big", 500)
	mustUpdate(t, s, func(tx Tx) error {
		for i := range 20 {
			tx.Put(Entry{Bucket: "old", Key: fmt.Sprint("e", i), Value: []byte("v"), ExpiresAt: clock.Now().UnixMilli() + 10})
		}
		tx.Put(Entry{Bucket: "pol", Key: "a", Value: []byte("v")})
		return tx.SetPolicy("pol", Policy{MaxKeys: 5})
	})
	clock.Advance(time.Second)
	reads := 0
	s.testRecordRead = func() { reads++ }
	for _, c := range []struct {
		bucket   string
		had      bool
		maxReads int
	}{{"big", true, 1}, {"pol", true, 0}, {"old", false, 20}, {"none", false, 0}} {
		reads = 0
		var had bool
		mustUpdate(t, s, func(tx Tx) error {
			var err error
			had, err = tx.DropBucket(c.bucket)
			return err
		})
		if had != c.had || reads > c.maxReads {
			t.Errorf("DropBucket(%s) = %v reading %d records, want %v reading at most %d", c.bucket, had, reads, c.had, c.maxReads)
		}
	}
	// Buffered writes count as the merged view has them.
	fillBucket(t, s, "mix", 3)
	reads = 0
	mustUpdate(t, s, func(tx Tx) error {
		for i := range 3 {
			tx.Delete("mix", fmt.Sprintf("k%05d", i))
		}
		if had, err := tx.DropBucket("mix"); err != nil || had {
			t.Errorf("DropBucket of a bucket whose keys were all deleted = %v %v", had, err)
		}
		tx.Put(Entry{Bucket: "mix", Key: "n", Value: []byte("v")})
		if had, err := tx.DropBucket("mix"); err != nil || !had {
			t.Errorf("DropBucket of a bucket with a buffered put = %v %v", had, err)
		}
		return nil
	})
	mustView(t, s, func(tx Tx) error {
		if b, _ := tx.Buckets(); len(b) != 0 {
			t.Errorf("Buckets after the drops = %v", b)
		}
		return nil
	})
}
