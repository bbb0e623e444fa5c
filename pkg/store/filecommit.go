//go:build unix

package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// Committing a file store transaction: one write renamed into place, or
// several through the redo journal (filejournal.go).

// ops lists the buffered writes; with withHint, a changed hint comes last.
func (tx *fileTx) ops(withHint bool) fileOpSource {
	return func(yield func(fileOp) error) error {
		names := make([]string, 0, len(tx.buckets))
		for name := range tx.buckets {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			tb := tx.buckets[name]
			if tb.dropped {
				if err := yield(fileOp{kind: fileOpDrop, bucket: name}); err != nil {
					return err
				}
			}
			for key, op := range tb.ops {
				o := fileOp{kind: fileOpDel, bucket: name, key: key}
				if !op.del {
					o.kind, o.data = fileOpPut, fileRecordEncode(op.expiresAt, key, op.value)
				}
				if err := yield(o); err != nil {
					return err
				}
			}
			if tb.policySet {
				o := fileOp{kind: fileOpPolicy, bucket: name}
				if !tb.policy.IsZero() {
					o.data = filePolicyEncode(tb.policy)
				}
				if err := yield(o); err != nil {
					return err
				}
			}
		}
		if withHint && tx.hintChanged() {
			return yield(fileOp{kind: fileOpHint, hint: tx.hint})
		}
		return nil
	}
}

func (tx *fileTx) hintChanged() bool { return tx.hintLoaded && tx.hint != tx.diskHint }

// commit applies the buffered writes. One write needs no journal: a rename
// or unlink is atomic by itself. Several (or a bucket drop, which removes
// many files) go through the journal.
func (tx *fileTx) commit() error {
	n, writes, journal, internal := 0, 0, false, false
	for name, tb := range tx.buckets {
		n += len(tb.ops)
		internal = internal || IsInternal(name) && len(tb.ops) > 0
		for _, op := range tb.ops {
			if !op.del {
				writes++
			}
		}
		if tb.policySet {
			n++
			writes++
		}
		journal = journal || tb.dropped
	}
	s := tx.s
	if journal || n > 1 {
		version := byte(fileJournalVersion)
		if internal {
			version = fileJournalVersionInternal
		}
		if err := s.writeJournal(tx.ops(true), version); err != nil {
			return err
		}
		if s.crashAfterJournal {
			return errFileTestCrash
		}
		// Deletes only need their folders synced, so a reap batch never
		// pays for a syncfs of the whole filesystem.
		return s.applyJournaled(tx.ops(true), writes <= fileSmallCommit, tx.trash)
	}
	full := s.opts.Durability == Full
	// The hint must stay a lower bound of every deadline on disk even if
	// we die half way, so a lower hint goes first and a higher one last.
	lowered := tx.hintChanged() && tx.hint != 0 && (tx.diskHint == 0 || tx.hint < tx.diskHint)
	if lowered {
		if err := s.writeHint(tx.hint, full); err != nil {
			return err
		}
	}
	err := tx.ops(false)(func(op fileOp) error { return s.applyOne(op, full) })
	if err != nil {
		return err
	}
	if tx.hintChanged() && !lowered {
		return s.writeHint(tx.hint, full)
	}
	return nil
}

// writeHint replaces DIR/.next-expiry.
func (s *fileStore) writeHint(v int64, full bool) error {
	return writeFileAtomic(s.dir, fileHintName, fileTempName, []byte(strconv.FormatInt(v, 10)+"\n"), full, full)
}

// applyOne applies the only write of a transaction atomically: the new
// file is written beside the old one, fsynced so a crash cannot leave it
// torn, and renamed over it.
func (s *fileStore) applyOne(op fileOp, full bool) error {
	dir := s.bucketDir(op.bucket)
	switch op.kind {
	case fileOpPut, fileOpPolicy:
		name := filePolicyName
		if op.kind == fileOpPut {
			name = fileKeyEncode(op.key)
		}
		if op.data == nil {
			return removeFile(filepath.Join(dir, name), full)
		}
		created, parentCreated, err := ensureDir(dir)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(dir, name, fileTempName, op.data, true, full); err != nil {
			return err
		}
		if parentCreated && full {
			if err := fileSyncDir(s.dir); err != nil {
				return err
			}
		}
		if created && full {
			return fileSyncDir(filepath.Dir(dir))
		}
		return nil
	case fileOpDel:
		return removeFile(filepath.Join(dir, fileKeyEncode(op.key)), full)
	}
	return fmt.Errorf("file store: cannot apply op %q alone", op.kind)
}

// applyJournaled applies the ops of a durable journal, makes them durable,
// then removes the journal. With small, files and folders are fsynced one
// by one; otherwise one syncfs covers them all. A dropped bucket's folder
// is moved into the trash, noted in trash for deletion once the lock is
// released (filetrash.go).
func (s *fileStore) applyJournaled(src fileOpSource, small bool, trash *fileTrash) error {
	made := map[string]bool{}
	touched := map[string]bool{}
	bdir := s.path(fileBucketsDir)
	ensure := func(dir string) error {
		if made[dir] {
			return nil
		}
		created, parentCreated, err := ensureDir(dir)
		if err != nil {
			return err
		}
		if created {
			touched[filepath.Dir(dir)] = true // DIR/b or DIR/i
		}
		if parentCreated {
			touched[s.dir] = true // DIR/i, on its first use
		}
		made[dir] = true
		return nil
	}
	write := func(path string, data []byte) error {
		// No temporary file: nobody reads while we hold the lock, and the
		// journal rewrites a file a crash tore.
		return fileWriteAll(path, data, small)
	}
	remove := func(path string) error {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", path, err)
		}
		return nil
	}
	err := src(func(op fileOp) error {
		dir := s.bucketDir(op.bucket)
		switch op.kind {
		case fileOpDrop:
			// One rename, however many keys: replayed after it happened,
			// there is no folder left to move and nothing to do.
			delete(made, dir)
			moved, err := s.moveToTrash(dir, trash)
			if err != nil {
				return fmt.Errorf("drop bucket %s: %w", op.bucket, err)
			}
			if moved {
				touched[bdir] = true
				touched[s.path(fileTrashDir)] = true
				touched[s.dir] = true // DIR/.trash, on its first use
			}
		case fileOpPut:
			touched[dir] = true
			if err := ensure(dir); err != nil {
				return err
			}
			return write(filepath.Join(dir, fileKeyEncode(op.key)), op.data)
		case fileOpDel:
			touched[dir] = true
			return remove(filepath.Join(dir, fileKeyEncode(op.key)))
		case fileOpPolicy:
			touched[dir] = true
			if op.data == nil {
				return remove(filepath.Join(dir, filePolicyName))
			}
			if err := ensure(dir); err != nil {
				return err
			}
			return write(filepath.Join(dir, filePolicyName), op.data)
		case fileOpHint:
			touched[s.dir] = true
			return write(s.path(fileHintName), []byte(strconv.FormatInt(op.hint, 10)+"\n"))
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Everything applied must be durable before the journal goes, or a
	// power loss could leave a torn file with nothing left to repair it.
	if small {
		for dir := range touched {
			if err := fileSyncDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	} else if err := fileSyncFS(s.dir); err != nil {
		return fmt.Errorf("sync store: %w", err)
	}
	if err := os.Remove(s.path(fileJournalName)); err != nil {
		return fmt.Errorf("remove journal: %w", err)
	}
	// A journal that came back after a power loss would replay old writes
	// over newer ones.
	return fileSyncDir(s.dir)
}
