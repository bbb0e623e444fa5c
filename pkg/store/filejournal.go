//go:build unix

package store

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// The redo journal makes a transaction with several writes all or nothing.
// The committing writer streams every write into DIR/.journal.tmp, fsyncs
// it and renames it to DIR/.journal: that rename is the commit point. It
// then applies the writes to the bucket folders and removes the journal.
// Every later transaction first replays a journal it finds (a writer was
// killed while applying); every write in it is idempotent (a whole file
// written, a file removed, a bucket's folder moved into DIR/.trash if it is
// still there), so replaying twice is harmless.
//
// Format:
//
//	magic "LDJL", version byte: 1, or 2 when it writes internal buckets
//	ops, each: kind byte, uvarint len + bucket, then by kind
//	  'D' drop bucket      (nothing more)
//	  'P' put              uvarint len + record bytes (the key is inside)
//	  'X' delete           uvarint len + key
//	  'Y' policy           uvarint len + JSON; length 0 removes the policy
//	  'H' expiry hint      8 bytes int64 big-endian (bucket empty)
//	'E', uvarint number of ops before it
//	CRC-32C of everything before it, 4 bytes big-endian
//
// No crash leaves a DIR/.journal whose checksum does not match (the rename
// comes after the fsync), so one that does not match was damaged after its
// commit, perhaps half applied: like one whose checksum matches but that
// does not parse, it is ErrCorrupt and left in place for a human to look
// at. A torn DIR/.journal.tmp was never committed and is removed.
//
// Version 2 differs only in allowing puts and deletes in internal buckets
// ("!outbox"). A commit writes it only when it touches one, so a livedict
// that predates them reports a newer store rather than a corrupt one.

const (
	fileJournalMagic           = "LDJL"
	fileJournalVersion         = 1
	fileJournalVersionInternal = 2
)

// The kinds of journal operation.
const (
	fileOpDrop   = 'D'
	fileOpPut    = 'P'
	fileOpDel    = 'X'
	fileOpPolicy = 'Y'
	fileOpHint   = 'H'
	fileOpEnd    = 'E'
)

// fileOp is one write of a committed transaction.
type fileOp struct {
	kind   byte
	bucket string
	key    string // put and delete
	data   []byte // put: the record; policy: JSON, nil to remove
	hint   int64
}

// fileOpSource calls yield with each op in order, stopping at its first
// error. Commit builds one from the transaction, replay from the journal, so
// both apply the writes with the same code.
type fileOpSource func(yield func(fileOp) error) error

// fileRoom is what a filesystem has left: its block size, the bytes this
// process may write, and the inodes (-1: not counted).
type fileRoom struct {
	bsize, bytes, inodes int64
}

// fileFreeSpace is fileStatFree; tests replace it to play a full disk.
var fileFreeSpace = fileStatFree

// errFileNoRoom is the error of a commit refused before its commit point
// because the filesystem cannot hold its writes.
type errFileNoRoom struct {
	dir        string
	what       string // "bytes" or "files"
	need, free int64
}

func (e *errFileNoRoom) Error() string {
	return fmt.Sprintf("commit to %s: no space left on device: the writes need about %d %s, %d are free; nothing was written", e.dir, e.need, e.what, e.free)
}

func (e *errFileNoRoom) Unwrap() error { return syscall.ENOSPC }

// fileBuckets counts the buckets puts write to.
func fileBuckets(puts []fileOp) int64 {
	seen := map[string]bool{}
	for _, op := range puts {
		seen[op.bucket] = true
	}
	return int64(len(seen))
}

// fileNewInodes counts the files and folders the puts will create: targets
// not there yet, or in a bucket this commit drops first.
func fileNewInodes(puts []fileOp, dropped map[string]bool, dirOf func(string) string) int64 {
	var n int64
	dirs := map[string]bool{}
	for _, op := range puts {
		dir := dirOf(op.bucket)
		if _, seen := dirs[dir]; !seen {
			_, err := os.Lstat(dir)
			dirs[dir] = err == nil && !dropped[op.bucket]
			if !dirs[dir] {
				n++
			}
		}
		if !dirs[dir] {
			n++
			continue
		}
		name := filePolicyName
		if op.kind == fileOpPut {
			name = fileKeyEncode(op.key)
		}
		if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
			n++
		}
	}
	return n
}

// writeJournal streams ops into DIR/.journal and makes it durable.
//
// Renaming the journal into place commits the transaction, and the writes
// it then makes need room of their own. A commit the filesystem could not
// hold would fail half applied, leave its journal to be replayed by every
// later command (reads too), fail again the same way in each, and land
// once someone freed space, long after its command reported failure. So
// before the commit point the free space is measured against the files the
// writes will take, and a commit that cannot fit is refused with nothing
// written.
func (s *fileStore) writeJournal(src fileOpSource, version byte) error {
	room, measured := fileFreeSpace(s.dir)
	var need int64
	var puts []fileOp // with no data kept: only where they go
	dropped := map[string]bool{}
	tmp := s.path(fileJournalName + ".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	defer f.Close()
	// A journal that was not committed is garbage, and one that failed on
	// a full disk is what filled it: left there, it kept the filesystem
	// full (for every other program too) until the next write to the
	// store happened to replay.
	committed := false
	defer func() {
		if !committed {
			os.Remove(tmp)
		}
	}()
	crc := crc32.New(fileCRCTable())
	w := bufio.NewWriterSize(io.MultiWriter(f, crc), 256<<10)
	w.WriteString(fileJournalMagic)
	w.WriteByte(version)
	var n uint64
	var num [binary.MaxVarintLen64]byte
	putBytes := func(b []byte) {
		w.Write(num[:binary.PutUvarint(num[:], uint64(len(b)))])
		w.Write(b)
	}
	buckets := map[string]bool{} // the buckets the writes change, true if dropped
	err = src(func(op fileOp) error {
		n++
		if op.kind != fileOpHint {
			buckets[op.bucket] = buckets[op.bucket] || op.kind == fileOpDrop
		}
		w.WriteByte(op.kind)
		putBytes([]byte(op.bucket))
		switch op.kind {
		case fileOpPut, fileOpPolicy:
			putBytes(op.data)
			if measured && op.data != nil {
				need += (int64(len(op.data)) + room.bsize - 1) / room.bsize * room.bsize
				puts = append(puts, fileOp{kind: op.kind, bucket: op.bucket, key: op.key})
			}
		case fileOpDrop:
			dropped[op.bucket] = true
		case fileOpDel:
			putBytes([]byte(op.key))
		case fileOpHint:
			w.Write(binary.BigEndian.AppendUint64(nil, uint64(op.hint)))
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteByte(fileOpEnd)
	w.Write(num[:binary.PutUvarint(num[:], n)])
	if err := w.Flush(); err != nil { // bufio keeps the first write error
		return fmt.Errorf("write journal: %w", err)
	}
	if _, err := f.Write(binary.BigEndian.AppendUint32(nil, crc.Sum32())); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	if len(dropped) > 0 {
		// A drop moves folders into DIR/.trash after the commit point:
		// make it now, so a filesystem with no inode left refuses the
		// commit instead of failing it half applied.
		if err := MkdirTrusted(s.path(fileTrashDir)); err != nil {
			return fmt.Errorf("commit to %s: %w; nothing was written", s.dir, err)
		}
	}
	// Likewise a folder the writes cannot change (chmod a-w, chattr +i):
	// found after the commit point, the commit failed half applied, every
	// later command (reads of other buckets too) failed replaying it, and
	// once the folder was writable again the commit its command had
	// reported as failed landed. One access(2) per folder, not per key: a
	// record that cannot be opened for writing in a writable folder is
	// replaced (fileWriteAll), as a single write's rename replaces it.
	for bucket, drop := range buckets {
		if err := fileCheckWritable(s.bucketDir(bucket), drop); err != nil {
			return fmt.Errorf("commit to %s: %w; nothing was written", s.dir, err)
		}
	}
	if measured && len(puts) > 0 {
		var refuse error
		now, ok := fileFreeSpace(s.dir)
		switch {
		case !ok:
		case now.bytes < need:
			refuse = &errFileNoRoom{dir: s.dir, what: "bytes", need: need, free: now.bytes}
		case now.inodes >= 0 && now.inodes < int64(len(puts))+fileBuckets(puts):
			// Only now look at which files exist: most commits have
			// inodes to spare and need not stat every target. The
			// bound counts a folder for each bucket written, since a
			// new bucket's folder takes an inode too.
			if n := fileNewInodes(puts, dropped, s.bucketDir); now.inodes < n {
				refuse = &errFileNoRoom{dir: s.dir, what: "files", need: n, free: now.inodes}
			}
		}
		if refuse != nil {
			return refuse
		}
	}
	if err := os.Rename(tmp, s.path(fileJournalName)); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	committed = true
	// Make the commit point itself durable before any bucket file changes,
	// so a power loss cannot leave half the writes without their journal.
	return fileSyncDir(s.dir)
}

// fileCheckWritable reports whether a commit can create and remove files
// in the bucket folder dir, or, when it is not there yet, create it in the
// nearest folder above it that is. A dropped bucket's folder is renamed to
// another folder, which also needs its parent writable and, for its "..",
// the folder itself.
func fileCheckWritable(dir string, drop bool) error {
	for {
		err := unix.Access(dir, unix.W_OK|unix.X_OK)
		if err == nil && drop {
			drop, dir = false, filepath.Dir(dir)
			continue
		}
		if err == unix.ENOENT && !drop {
			if parent := filepath.Dir(dir); parent != dir {
				dir = parent
				continue
			}
		}
		if err == nil || err == unix.ENOENT {
			return nil
		}
		return &fs.PathError{Op: "write to", Path: dir, Err: err}
	}
}

// recoverJournal replays a committed journal left by a writer that died
// while applying it, and discards a torn one. It runs under the exclusive
// lock before a transaction reads anything.
func (s *fileStore) recoverJournal(trash *fileTrash) error {
	// A stale temporary journal is an uncommitted transaction; it can be
	// large (an import), so do not leave it around.
	if err := os.Remove(s.path(fileJournalName + ".tmp")); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("remove stale journal: %w", err)
	}
	path := s.path(fileJournalName)
	fd, err := OpenTrusted(path, syscall.O_RDONLY|syscall.O_NONBLOCK)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if errors.Is(err, ErrUntrusted) {
		return err
	}
	if err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	size := fi.Size()
	intact, err := fileJournalCheck(f, size)
	if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNewerStore) {
		return fmt.Errorf("read journal %s: %w", path, err)
	}
	if !intact {
		// The journal is renamed into place only once it is whole and
		// fsynced, so no crash leaves one that fails its checksum: this
		// one was damaged afterwards, and its writes may be half applied.
		// Discarding it would keep that half without a word.
		return fmt.Errorf("%w: journal %s fails its checksum, so a multi-key write may be half applied; move it aside to use the store as it is", ErrCorrupt, path)
	}
	if err != nil {
		return fmt.Errorf("journal %s: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	jr := &fileJournalReader{r: bufio.NewReaderSize(f, 256<<10), left: size - 4}
	src := func(yield func(fileOp) error) error {
		if err := jr.read(yield); err != nil {
			return fmt.Errorf("replay journal %s: %w", path, err)
		}
		return nil
	}
	// The journal may be huge; syncfs is cheaper than an fsync per file.
	return s.applyJournaled(src, false, trash)
}

// fileJournalCheck reads the whole journal once, checking its checksum and
// parsing every op without applying any, so a journal is applied either
// completely or not at all. intact is false for a torn journal (checksum
// mismatch); a journal that is intact but does not parse gives an error
// wrapping ErrCorrupt.
func fileJournalCheck(f *os.File, size int64) (intact bool, err error) {
	if size < int64(len(fileJournalMagic))+1+2+4 {
		return false, nil
	}
	crc := crc32.New(fileCRCTable())
	body := bufio.NewReaderSize(io.TeeReader(io.LimitReader(f, size-4), crc), 256<<10)
	jr := &fileJournalReader{r: body, left: size - 4}
	parseErr := jr.read(func(fileOp) error { return nil })
	// Checksum the rest too, whatever the parser made of it.
	if _, err := io.Copy(io.Discard, body); err != nil {
		return false, err
	}
	var sum [4]byte
	if _, err := io.ReadFull(f, sum[:]); err != nil {
		return false, err
	}
	if binary.BigEndian.Uint32(sum[:]) != crc.Sum32() {
		return false, nil
	}
	return true, parseErr
}

// fileJournalReader parses a journal whose checksum matched. left is the
// number of bytes before the checksum; no length may reach past it, so a
// damaged length cannot cause a huge allocation.
type fileJournalReader struct {
	r    *bufio.Reader
	left int64
}

var errFileJournalShort = fmt.Errorf("%w: journal ends early", ErrCorrupt)

func (j *fileJournalReader) byte() (byte, error) {
	if j.left < 1 {
		return 0, errFileJournalShort
	}
	j.left--
	b, err := j.r.ReadByte()
	if err != nil {
		return 0, errFileJournalShort
	}
	return b, nil
}

func (j *fileJournalReader) uvarint() (uint64, error) {
	var x uint64
	for shift := 0; shift < 64; shift += 7 {
		b, err := j.byte()
		if err != nil {
			return 0, err
		}
		x |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return x, nil
		}
	}
	return 0, fmt.Errorf("%w: journal length overflows", ErrCorrupt)
}

func (j *fileJournalReader) bytes(n uint64) ([]byte, error) {
	if n > uint64(j.left) {
		return nil, errFileJournalShort
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(j.r, buf); err != nil {
		return nil, errFileJournalShort
	}
	j.left -= int64(n)
	return buf, nil
}

func (j *fileJournalReader) lenBytes() ([]byte, error) {
	n, err := j.uvarint()
	if err != nil {
		return nil, err
	}
	return j.bytes(n)
}

// read parses the ops and yields each one.
func (j *fileJournalReader) read(yield func(fileOp) error) error {
	head, err := j.bytes(uint64(len(fileJournalMagic)) + 1)
	if err != nil {
		return err
	}
	if string(head[:len(fileJournalMagic)]) != fileJournalMagic {
		return fmt.Errorf("%w: not a livedict journal", ErrCorrupt)
	}
	version := head[len(fileJournalMagic)]
	if version != fileJournalVersion && version != fileJournalVersionInternal {
		return fmt.Errorf("%w: journal version %d", ErrNewerStore, version)
	}
	var n uint64
	for {
		kind, err := j.byte()
		if err != nil {
			return err
		}
		if kind == fileOpEnd {
			count, err := j.uvarint()
			if err != nil {
				return err
			}
			if count != n || j.left != 0 {
				return fmt.Errorf("%w: journal op count does not match", ErrCorrupt)
			}
			return nil
		}
		bucket, err := j.lenBytes()
		if err != nil {
			return err
		}
		op := fileOp{kind: kind, bucket: string(bucket)}
		if kind != fileOpHint && ValidateBucket(op.bucket) != nil {
			// Internal buckets are only ever written key by key: a drop
			// or policy naming one is no journal of ours.
			internalOK := version >= fileJournalVersionInternal && (kind == fileOpPut || kind == fileOpDel)
			if !internalOK || validateInternal(op.bucket) != nil {
				return fmt.Errorf("%w: journal names a bad bucket", ErrCorrupt)
			}
		}
		switch kind {
		case fileOpDrop:
		case fileOpPut:
			if op.data, err = j.lenBytes(); err != nil {
				return err
			}
			rec, err := fileRecordDecode(op.data)
			if err != nil {
				return err
			}
			op.key = rec.Key
		case fileOpDel:
			key, err := j.lenBytes()
			if err != nil {
				return err
			}
			op.key = string(key)
			if ValidateKey(op.key) != nil {
				return fmt.Errorf("%w: journal holds a bad key", ErrCorrupt)
			}
		case fileOpPolicy:
			if op.data, err = j.lenBytes(); err != nil {
				return err
			}
			if len(op.data) == 0 {
				op.data = nil
			} else if _, err := filePolicyDecode(op.data); err != nil {
				return err
			}
		case fileOpHint:
			b, err := j.bytes(8)
			if err != nil {
				return err
			}
			op.hint = int64(binary.BigEndian.Uint64(b))
		default:
			return fmt.Errorf("%w: unknown journal op %q", ErrCorrupt, kind)
		}
		n++
		if err := yield(op); err != nil {
			return err
		}
	}
}
