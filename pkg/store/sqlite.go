package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/livedict/livedict/pkg/ttl"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteAppID marks a SQLite file as a livedict store ("LDST"), so livedict
// never mistakes another program's database for its own.
const sqliteAppID = 0x4C445354

// sqliteSchema lists the migrations; the store's user_version is the number
// applied. Append only: never edit a migration that has shipped.
var sqliteSchema = []string{
	// 1: entries, their expiry index, bucket policies.
	`CREATE TABLE entries (
		bucket     TEXT NOT NULL,
		key        BLOB NOT NULL,
		value      BLOB NOT NULL,
		expires_at INTEGER,
		PRIMARY KEY (bucket, key)
	);
	CREATE INDEX entries_expiry ON entries (expires_at) WHERE expires_at IS NOT NULL;
	CREATE TABLE policies (
		bucket         TEXT PRIMARY KEY,
		max_keys       INTEGER NOT NULL,
		default_ttl_ms INTEGER NOT NULL,
		on_full        TEXT NOT NULL
	);`,
	// 2: livedict's own buckets (hooks, outbox, run log), apart from the
	// user's entries so no user-facing query, count or index sees them.
	// They never expire, so they need no deadline column.
	`CREATE TABLE internal (bucket TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, PRIMARY KEY (bucket, key)) WITHOUT ROWID;`,
}

type sqliteStore struct {
	// mu serialises transactions: they share one connection, and a daemon
	// or deliverer uses the store from several goroutines.
	mu   sync.Mutex
	path string // as named (absolute), for messages and Info
	// real is path with symlinks resolved: what SQLite opens and what the
	// trust checks look at, since SQLite keeps its journal beside the real
	// file, not beside a symlink to it.
	real string
	// sideChecked says open has just checked the side files, so the
	// first transaction need not look again.
	sideChecked bool
	// syncSet says the connection's synchronous setting is made (setSync).
	syncSet bool
	opts    Options
	db      *sql.DB
	conn    *sql.Conn
	stmts   map[string]*sql.Stmt // prepared once per process: imports run a few statements a million times
	// dev and ino identify the file SQLite has open, so that a process
	// that keeps the store open (the daemon) can tell when the path names
	// another file, or none (see Replaced).
	dev, ino uint64
	// testAfterSideCheck, when set, runs after the side files were
	// checked and before SQLite looks at them: where another user plants
	// a journal in a race with the check.
	testAfterSideCheck func()
}

func openSQLite(path string, opts Options) (Store, error) {
	opts = opts.withDefaults()
	if path == "" {
		return nil, fmt.Errorf("%w: sqlite: needs a path", ErrBadURL)
	}
	abs, err := filepath.Abs(path)
	if err != nil { // a relative path in a working directory that was removed
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	real, exists, err := resolveStore(abs)
	if err != nil {
		return nil, err
	}
	if !exists && strings.HasSuffix(path, "/") {
		// A path ending in / names a folder: filepath.Abs dropped the
		// slash, and the first write would make a file there. coreutils
		// refuse too (cp f x/: "Not a directory"). A folder that is there
		// is refused as any folder is (exit 3).
		return nil, fmt.Errorf("%w %q: names a folder; a SQLite store is one file (a store in a folder is file:DIR)", ErrBadURL, path)
	}
	s := &sqliteStore{path: abs, real: real, opts: opts, stmts: map[string]*sql.Stmt{}}
	if !exists {
		// Reads create nothing: the store is made by the first write
		// (see run).
		return s, nil
	}
	if err := s.open(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// open checks the store file and its side files against the trust rule,
// then connects SQLite to it and brings the schema up to date. The common
// case, an up-to-date store, costs one open, two fstats and a small pread
// of the header, and no SQL.
// testBeforeMkdir, when set, runs before a new store's folders are made:
// where another user plants a symlink in their way.
var testBeforeMkdir func(real string)

// testBeforeConnect, when set, runs between the check of the store file
// and SQLite's open of it: where another user who can rename in its
// folder swaps it.
var testBeforeConnect func(real string)

func (s *sqliteStore) open() error {
	upToDate, err := s.checkFile(s.real)
	if err != nil {
		return err
	}
	if testBeforeConnect != nil {
		testBeforeConnect(s.real)
	}
	if err := s.connect(s.real); err != nil {
		return err
	}
	if upToDate {
		return nil
	}
	return s.migrate(context.Background())
}

// checkFile opens the store file without following a symlink, applies the
// trust rule to it, refuses what is not a store (a folder, an empty file),
// and reports whether its header says the schema is current.
func (s *sqliteStore) checkFile(real string) (upToDate bool, err error) {
	fd, st, err := openTrusted(real, syscall.O_RDONLY|syscall.O_NONBLOCK)
	if fi, lerr := os.Lstat(real); errors.Is(err, ErrUntrusted) && lerr == nil && fi.IsDir() {
		// A folder is no store whoever may write it: --store /tmp said
		// "/tmp is writable by every user", as if chmod would help.
		return false, fmt.Errorf("%w: %s is a directory", ErrNotStore, s.path)
	}
	if err != nil {
		return false, err
	}
	defer syscall.Close(fd)
	switch {
	case st.Mode&syscall.S_IFMT == syscall.S_IFDIR:
		return false, fmt.Errorf("%w: %s is a directory", ErrNotStore, s.path)
	case st.Size == 0:
		// livedict never leaves an empty store file: it makes a new store
		// under a temporary name and moves it into place complete (see
		// create), so an empty file here is someone else's.
		return false, fmt.Errorf("%w: %s is an empty file; livedict does not turn it into a store", ErrNotStore, s.path)
	case st.Size == 1:
		// SQLite's Unix VFS counts a 1-byte file as empty (it writes
		// one byte into a new file itself) and would write a new store
		// over it; a longer file that is not a database it refuses.
		return false, fmt.Errorf("%w: %s is not a SQLite database", ErrNotStore, s.path)
	}
	if err := checkStoreLinks(s.real, st); err != nil {
		return false, err
	}
	if err := s.checkSideFiles(); err != nil {
		return false, err
	}
	s.sideChecked = true
	s.dev, s.ino = uint64(st.Dev), uint64(st.Ino)
	var h [72]byte
	n, err := syscall.Pread(fd, h[:], 0)
	return err == nil && n == len(h) && headerCurrent(h), nil
}

// checkSideFiles refuses SQLite's -journal, -wal and -shm beside the store
// when they fail the trust rule. SQLite trusts them blindly: a hot journal
// (or a WAL) planted by another user would be rolled back into the store,
// replacing its data and hook definitions. It runs before every
// transaction, since SQLite looks for a hot journal at each one.
func (s *sqliteStore) checkSideFiles() error {
	for _, suffix := range []string{"-journal", "-wal", "-shm"} {
		if err := checkSideAbsent(s.real + suffix); err != nil {
			return err
		}
	}
	return s.checkJournal()
}

// checkJournal refuses a hot rollback journal that another database left
// (copied or restored beside the store, or the store file swapped under
// it): SQLite cannot tell, and rolling it back writes that database's
// pages over the store's, destroying it, on the first read. Every write
// transaction changes page 1 (its change counter), so a journal saves it,
// and in a journal of this store it is a livedict store's page 1 (its
// application id); the one exception, the first migration of an empty
// SQLite file, saved an empty page 1. A journal SQLite would not roll
// back (no magic), or whose first segment lacks page 1, is left to SQLite
// as before. It costs a failed open when there is no journal.
func (s *sqliteStore) checkJournal() error {
	fd, err := syscall.Open(s.real+"-journal", syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil // none (checkAbsent judged any other case)
	}
	defer syscall.Close(fd)
	// The header: magic, record count, nonce, initial size, sector size,
	// page size; the records (page number, page, checksum) start one
	// sector in. A count of 0 or -1 means "as many as the file holds".
	var h [28]byte
	if n, err := syscall.Pread(fd, h[:], 0); err != nil || n < len(h) || string(h[:8]) != "\xd9\xd5\x05\xf9\x20\xa1\x63\xd7" {
		return nil
	}
	nRec := binary.BigEndian.Uint32(h[8:12])
	sector, pageSize := int64(binary.BigEndian.Uint32(h[20:24])), int64(binary.BigEndian.Uint32(h[24:28]))
	if sector < 32 || sector > 65536 || pageSize < 512 || pageSize > 65536 {
		return nil
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil
	}
	if max := (st.Size - sector) / (pageSize + 8); nRec == 0 || nRec == math.MaxUint32 || int64(nRec) > max {
		nRec = uint32(max)
	}
	var pgno [4]byte
	for i := int64(0); i < int64(nRec); i++ {
		off := sector + i*(pageSize+8)
		if n, err := syscall.Pread(fd, pgno[:], off); err != nil || n < 4 {
			return nil
		}
		if binary.BigEndian.Uint32(pgno[:]) != 1 {
			continue
		}
		page := make([]byte, pageSize)
		if n, err := syscall.Pread(fd, page, off+4); err != nil || int64(n) < pageSize {
			return nil
		}
		appID, cells := binary.BigEndian.Uint32(page[68:72]), binary.BigEndian.Uint16(page[103:105])
		if string(page[:16]) != "SQLite format 3\x00" || appID == sqliteAppID || appID == 0 && cells == 0 {
			return nil
		}
		return fmt.Errorf("%w: %s-journal is another database's rollback journal, which SQLite would roll back over the store: move it aside", ErrCorrupt, s.path)
	}
	return nil
}

// connect opens SQLite's connection to the file at real.
func (s *sqliteStore) connect(real string) error {
	if err := guardSideFiles(); err != nil {
		return err
	}
	q := url.Values{}
	// SQLite keeps busy_timeout as a 32-bit count of ms and takes a
	// larger number as 0, no wait at all: a busy_timeout past 24.8 days
	// (30d, "forever") failed at once under any contention. It waits
	// those 24.8 days instead.
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", min(s.opts.BusyTimeout.Milliseconds(), math.MaxInt32)))
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: real}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	s.db = db
	if s.conn, err = db.Conn(context.Background()); err != nil {
		return s.wrap(err)
	}
	return nil
}

// create makes a new store at s.real, complete with its schema, and opens
// it. The new store is built under a temporary name (created O_EXCL,
// mode 0600) and moved into place unless something is there (see
// placeNewStore), so the store path never names an
// empty or half-made file: a concurrent opener finds either nothing or a
// whole store, and an empty file at the path can only be someone else's.
// When another process links its store first, that one is used.
func (s *sqliteStore) create() error {
	if testBeforeMkdir != nil {
		testBeforeMkdir(s.real)
	}
	if err := os.MkdirAll(filepath.Dir(s.real), 0o700); err != nil {
		return fmt.Errorf("cannot create store: %w", err)
	}
	// MkdirAll follows a folder on the way that another user made a
	// symlink (in a sticky /tmp) since resolveStore looked: the new store
	// would go wherever it points, say into one of the user's own folders.
	// Looked at again now that every folder is there: in a sticky folder
	// nobody else can replace them any more.
	if _, err := evalTrustedSymlinks(filepath.Dir(s.real)); err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.tmp-%d-%d", s.real, os.Getpid(), time.Now().UnixNano())
	fd, err := syscall.Open(tmp, syscall.O_CREAT|syscall.O_EXCL|syscall.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("cannot create store %s: %w", s.path, err)
	}
	syscall.Close(fd)
	defer os.Remove(tmp)
	t := &sqliteStore{path: s.path, real: tmp, opts: s.opts, stmts: map[string]*sql.Stmt{}}
	err = t.connect(tmp)
	if err == nil {
		err = t.migrate(context.Background())
	}
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := placeNewStore(tmp, s.real); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("cannot create store: %w", err)
	}
	return s.open()
}

// linkNewStore links tmp at real (fs.ErrExist when taken) and unlinks the
// temporary name at once, before the store is opened: with it the new
// store has two links, which checkStoreLinks refuses in a folder others
// can write (the first write of --store /tmp/job.db exited 3). A process
// that opens the store in the moment between accepts that one link of its
// creator's (creatorLinks).
func linkNewStore(tmp, real string) error {
	err := os.Link(tmp, real)
	os.Remove(tmp)
	return err
}

// ensure opens a store that did not exist when it was named: a write
// creates it, a read finds it if another process made it meanwhile.
// It reports whether the store is there.
func (s *sqliteStore) ensure(write bool) (bool, error) {
	if s.conn != nil {
		return true, nil
	}
	real, exists, err := resolveStore(s.path)
	if err != nil {
		return false, err
	}
	s.real = real
	switch {
	case exists:
		return true, s.open()
	case write:
		return true, s.create()
	}
	return false, nil
}

// migrate brings the schema up to date.
func (s *sqliteStore) migrate(ctx context.Context) error {
	// Not Update: open runs under run's lock when the store appeared
	// after openSQLite found nothing, and Update waited for it for ever.
	return s.inTx(ctx, beginWrite, func(Tx) error {
		// Read again under the write lock, all in one transaction:
		// another process may be creating or migrating the store right
		// now, and reads outside a transaction could see half of it.
		appID, version, err := s.schemaVersion(ctx)
		if err != nil {
			return err
		}
		if err := s.checkSchema(appID, version, ctx); err != nil {
			return err
		}
		for i := version; i < len(sqliteSchema); i++ {
			if _, err := s.conn.ExecContext(ctx, sqliteSchema[i]); err != nil {
				if strings.Contains(err.Error(), "already exists") {
					// user_version was lowered outside livedict (or the
					// header damaged): migrating again could only fail
					// half way, and guessing the version could be wrong.
					return fmt.Errorf("%w: %s says schema version %d but already holds tables of a later one", ErrCorrupt, s.path, version)
				}
				return s.wrap(fmt.Errorf("migration %d: %w", i+1, err))
			}
		}
		_, err = s.conn.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d; PRAGMA user_version = %d", sqliteAppID, len(sqliteSchema)))
		return s.wrap(err)
	})
}

// headerUpToDate reads the application id and schema version straight
// from the database header (SQLite file format: user_version at byte 60,
// application_id at byte 68, big-endian). Reading outside SQLite's lock is
// safe here: versions only grow, so "up to date" cannot be wrong, and any
// other answer is checked again under the write lock. A rollback journal
// left by a crashed writer means the header may be about to be rolled
// back, so that case takes the locked path too.
func headerUpToDate(path string) bool {
	if _, err := os.Lstat(path + "-journal"); err == nil {
		return false
	}
	h, ok := sqliteHeader(path)
	return ok && headerCurrent(h)
}

// headerCurrent reads the application id and schema version from a
// database header (user_version at byte 60, application_id at byte 68,
// big-endian).
func headerCurrent(h [72]byte) bool {
	version := binary.BigEndian.Uint32(h[60:64])
	appID := binary.BigEndian.Uint32(h[68:72])
	return string(h[:16]) == "SQLite format 3\x00" && appID == sqliteAppID && version == uint32(len(sqliteSchema))
}

// sqliteHeader reads the first 72 bytes of a SQLite file and reports
// whether they start with SQLite's magic string. It uses plain system calls:
// an *os.File would start Go's network poller, a cost every command paid.
func sqliteHeader(path string) (h [72]byte, ok bool) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return h, false
	}
	defer syscall.Close(fd)
	n, err := syscall.Pread(fd, h[:], 0)
	return h, err == nil && n == len(h) && string(h[:16]) == "SQLite format 3\x00"
}

func (s *sqliteStore) schemaVersion(ctx context.Context) (appID, version int, err error) {
	err = s.conn.QueryRowContext(ctx, "SELECT (SELECT application_id FROM pragma_application_id), (SELECT user_version FROM pragma_user_version)").Scan(&appID, &version)
	return appID, version, s.wrap(err)
}

func (s *sqliteStore) checkSchema(appID, version int, ctx context.Context) error {
	switch {
	case appID == sqliteAppID && version > len(sqliteSchema):
		return fmt.Errorf("%w: %s has schema version %d, this livedict knows %d", ErrNewerStore, s.path, version, len(sqliteSchema))
	case appID == sqliteAppID:
		return nil
	case appID != 0:
		return fmt.Errorf("%w: %s is another program's SQLite database", ErrNotStore, s.path)
	}
	var tables int
	if err := s.conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&tables); err != nil {
		return s.wrap(err)
	}
	if tables > 0 {
		return fmt.Errorf("%w: %s is a SQLite database with tables of its own", ErrNotStore, s.path)
	}
	return nil
}

// wrap maps SQLite's result codes onto the package's sentinels.
func (s *sqliteStore) wrap(err error) error {
	var se *sqlite.Error
	if err != nil && !errors.Is(err, ErrCorrupt) && strings.Contains(err.Error(), "sql: Scan error") {
		// A column of a type livedict never writes there (sqlite3 set
		// expires_at to 'abc', or a NULL where a number belongs):
		// database/sql's conversion error has no type to match.
		return fmt.Errorf("%w: %s: a row livedict did not write: %s", ErrCorrupt, s.path,
			strings.TrimPrefix(err.Error()[strings.Index(err.Error(), "sql: Scan error"):], "sql: "))
	}
	if err == nil || !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return fmt.Errorf("%w: %s: another process held it for more than %s", ErrBusy, s.path, s.opts.busyFor())
	case sqlite3.SQLITE_NOTADB:
		if _, ok := sqliteHeader(s.real); !ok {
			// Not damaged: some other file was named as the store.
			return fmt.Errorf("%w: %s is not a SQLite database", ErrNotStore, s.path)
		}
		return fmt.Errorf("%w: %s: %s", ErrCorrupt, s.path, sqlite.ErrorCodeString[se.Code()&0xff])
	case sqlite3.SQLITE_CORRUPT:
		return fmt.Errorf("%w: %s: %s", ErrCorrupt, s.path, sqlite.ErrorCodeString[se.Code()&0xff])
	case sqlite3.SQLITE_FULL:
		// The disk (or quota) is full: SQLite's "database or disk is
		// full (13)" read as if the database had a size limit.
		return fmt.Errorf("%s: %w", s.path, syscall.ENOSPC)
	case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_AUTH:
		if err := takeRefused(s.real); err != nil {
			// A side file (or the store) planted after its check,
			// which SQLite's open refused (guardSideFiles).
			return err
		}
		if err := s.checkSideFiles(); err != nil {
			return err
		}
		if err := CheckPath(s.real); errors.Is(err, ErrUntrusted) {
			// Likewise the store file, swapped after its check.
			return err
		}
		if readOnlyFS(s.real) {
			return fmt.Errorf("%s: %w", s.path, syscall.EROFS)
		}
		if se.Code()&0xff == sqlite3.SQLITE_CANTOPEN && noSpaceFS(filepath.Dir(s.real)) {
			// The store or its -journal could not be created for want of
			// an inode or a block: not a permission to check.
			return fmt.Errorf("%s: %w", s.path, syscall.ENOSPC)
		}
		if err := noDescriptor(); se.Code()&0xff == sqlite3.SQLITE_CANTOPEN && err != nil {
			// ulimit -n ran out: no permission would help.
			return fmt.Errorf("%s: %w", s.path, err)
		}
		return fmt.Errorf("%s: %w", s.path, fs.ErrPermission)
	}
	return fmt.Errorf("%s: %s", s.path, strings.TrimSpace(se.Error()))
}

// beginWrite starts a write transaction: it takes SQLite's RESERVED lock at
// once, so two read-modify-writes cannot both read and then deadlock.
const beginWrite = "BEGIN IMMEDIATE"

func (s *sqliteStore) run(ctx context.Context, begin string, fn func(Tx) error) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok, err := s.ensure(begin == beginWrite); err != nil {
		return err
	} else if !ok {
		// A read of a store that does not exist sees an empty one.
		return NewMemory(s.opts).View(ctx, fn)
	}
	return s.inTx(ctx, begin, fn)
}

// inTx runs fn in a transaction of the open store, begun with begin. The
// caller holds s.mu (or is opening the store, which no other goroutine
// sees yet): migrate runs inside the first transaction of a store that
// appeared after openSQLite found nothing, from ensure, under run's lock.
func (s *sqliteStore) inTx(ctx context.Context, begin string, fn func(Tx) error) (err error) {
	if s.sideChecked {
		s.sideChecked = false // checked a moment ago, by open
	} else if err := s.checkSideFiles(); err != nil {
		return err
	}
	if s.testAfterSideCheck != nil {
		s.testAfterSideCheck()
	}
	if begin == beginWrite {
		if err := s.setSync(ctx); err != nil {
			return err
		}
		release, err := s.writeGate(ctx)
		if err != nil {
			return err
		}
		// Deferred first, so it runs after the COMMIT or ROLLBACK below.
		defer release()
	}
	// Registered before the BEGIN: a BEGIN cut short by ctx may still have
	// started the transaction on the connection, and the next BEGIN would
	// then fail ("cannot start a transaction within a transaction"). A
	// ROLLBACK with none active only fails, harmlessly.
	defer func() {
		if err != nil {
			s.conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	if _, err := s.conn.ExecContext(ctx, begin); err != nil {
		return s.wrap(err)
	}
	if err := fn(&sqliteTx{s: s, ctx: ctx, now: s.opts.Clock.Now().UnixMilli(), read: begin != beginWrite}); err != nil {
		return s.wrap(err)
	}
	_, err = s.conn.ExecContext(ctx, "COMMIT")
	return s.wrap(err)
}

// setSync sets the connection's durability before its first write, and
// only then: a read never syncs, so a get need not pay for the statement.
// Normal durability needs no fsync: a committed transaction is in the OS
// page cache and survives any process being killed. Full durability
// fsyncs every commit so it also survives power loss.
func (s *sqliteStore) setSync(ctx context.Context) error {
	if s.syncSet {
		return nil
	}
	sync := "OFF"
	if s.opts.Durability == Full {
		sync = "FULL"
	}
	if _, err := s.conn.ExecContext(ctx, "PRAGMA synchronous = "+sync); err != nil {
		return s.wrap(err)
	}
	s.syncSet = true
	return nil
}

func (s *sqliteStore) Update(ctx context.Context, fn func(Tx) error) error {
	if noCreate(ctx) {
		s.mu.Lock()
		ok, err := s.ensure(false)
		s.mu.Unlock()
		if err != nil {
			return err
		}
		if !ok {
			return NewMemory(s.opts).Update(ctx, fn) // see NoCreate
		}
	}
	return s.run(ctx, beginWrite, fn)
}

func (s *sqliteStore) View(ctx context.Context, fn func(Tx) error) error {
	return s.run(ctx, "BEGIN", fn)
}

// Locate says where the store is without a stat (see store.Locate).
func (s *sqliteStore) Locate() Info {
	info := Info{Backend: "sqlite", Location: s.path}
	if s.real != s.path {
		info.Real = s.real
	}
	return info
}

func (s *sqliteStore) Info() (Info, error) {
	info := s.Locate()
	fi, err := os.Stat(s.real)
	if errors.Is(err, fs.ErrNotExist) && s.conn == nil {
		return info, nil
	}
	if err != nil {
		return Info{}, err
	}
	info.SizeBytes = fi.Size()
	return info, nil
}

// Replaced reports, as an error naming the store, that its path no longer
// names the file this process has open: it was deleted, or another file
// (a restored backup, a new store) took its place. SQLite would go on
// reading the old file, which nobody else sees, and refuse every write.
func (s *sqliteStore) Replaced() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	fi, err := os.Stat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s was deleted after this process opened it", ErrStoreReplaced, s.path)
	}
	if err != nil {
		return nil // cannot tell; the next transaction says what is wrong
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && (uint64(st.Dev) != s.dev || uint64(st.Ino) != s.ino) {
		return fmt.Errorf("%w: %s is now another file than the one this process opened", ErrStoreReplaced, s.path)
	}
	return nil
}

func (s *sqliteStore) Close() error {
	for _, st := range s.stmts {
		st.Close()
	}
	if s.conn != nil {
		s.conn.Close()
	}
	if s.db == nil {
		return nil
	}
	return s.db.Close()
}

type sqliteTx struct {
	s   *sqliteStore
	ctx context.Context
	now int64
	// read: a View's transaction, which writes nothing (see Scan).
	read bool
}

const liveCond = "(expires_at IS NULL OR expires_at > ?)"

func (t *sqliteTx) Now() int64 { return t.now }

// stmt returns the prepared statement for q, preparing it on first use.
func (t *sqliteTx) stmt(q string) (*sql.Stmt, error) {
	if st, ok := t.s.stmts[q]; ok {
		return st, nil
	}
	st, err := t.s.conn.PrepareContext(t.ctx, q)
	if err != nil {
		return nil, err
	}
	t.s.stmts[q] = st
	return st, nil
}

func (t *sqliteTx) exec(q string, args ...any) (int64, error) {
	st, err := t.stmt(q)
	if err != nil {
		return 0, err
	}
	r, err := st.ExecContext(t.ctx, args...)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

// queryRow runs a one-row query through the statement cache.
func (t *sqliteTx) queryRow(q string, args ...any) *sql.Row {
	st, err := t.stmt(q)
	if err != nil {
		// sql.Row cannot carry an error of ours; an unpreparable query
		// fails the same way again without the cache.
		return t.s.conn.QueryRowContext(t.ctx, q, args...)
	}
	return st.QueryRowContext(t.ctx, args...)
}

func (t *sqliteTx) scanEntries(rows *sql.Rows, withValues bool, fn func(Entry) error) error {
	defer rows.Close()
	var bucket string // the last row's: rows come bucket by bucket
	for rows.Next() {
		var e Entry
		var b sql.RawBytes
		var key any
		var exp sql.NullInt64
		var err error
		if withValues {
			err = rows.Scan(&b, &key, &exp, &e.Size, &e.Value)
		} else {
			err = rows.Scan(&b, &key, &exp, &e.Size)
		}
		if err != nil {
			return err
		}
		if string(b) != bucket {
			bucket = string(b)
		}
		e.Bucket = bucket
		k, ok := key.([]byte)
		if !ok {
			// A TEXT key (sqlite3 INSERT without CAST(... AS BLOB)) is a
			// key no lookup finds (they bind BLOBs), beside which a set
			// makes a second one: listed as is, keys and export would
			// show the key twice, and get and del would not find it.
			return t.textKey(e.Bucket, fmt.Sprint(key))
		}
		// k is database/sql's copy of the column, ours alone: the key
		// can share its bytes (a million-key scan allocated each twice).
		e.Key, e.ExpiresAt = unsafe.String(unsafe.SliceData(k), len(k)), exp.Int64
		if withValues && e.Value == nil {
			e.Value = []byte{}
		}
		if err := fn(e); err == ErrStopScan {
			return nil
		} else if err != nil {
			return err
		}
	}
	return rows.Err()
}

// textKey is the error for a row whose key was stored as TEXT.
func (t *sqliteTx) textKey(bucket, key string) error {
	return fmt.Errorf("%w: %s: bucket %q has a key stored as TEXT, %q, written outside livedict; livedict keeps keys as BLOBs: fix it with sqlite3 (UPDATE entries SET key = CAST(key AS BLOB) WHERE typeof(key) = 'text'), or delete the row",
		ErrCorrupt, t.s.path, bucket, key)
}

// missTextKey, after a lookup of key found no row, looks for one whose key
// sqlite3 stored as TEXT (an INSERT without CAST(... AS BLOB)): no lookup,
// which binds BLOBs, finds it, so get would say "not found" (exit 1) for a
// key keys lists. One more indexed probe, only on a miss.
func (t *sqliteTx) missTextKey(bucket, key string) error {
	var one int
	err := t.queryRow("SELECT 1 FROM entries WHERE bucket = ? AND key = CAST(? AS TEXT)", bucket, []byte(key)).Scan(&one)
	if err == sql.ErrNoRows {
		return nil
	}
	if err != nil {
		return err
	}
	return t.textKey(bucket, key)
}

func (t *sqliteTx) Get(bucket, key string) (Entry, bool, error) {
	var e Entry
	var exp sql.NullInt64
	var err error
	if IsInternal(bucket) {
		if err := validateInternal(bucket); err != nil {
			return Entry{}, false, err
		}
		err = t.queryRow("SELECT value FROM internal WHERE bucket = ? AND key = ?", bucket, []byte(key)).Scan(&e.Value)
	} else {
		err = t.queryRow("SELECT value, expires_at FROM entries WHERE bucket = ? AND key = ? AND "+liveCond,
			bucket, []byte(key), t.now).Scan(&e.Value, &exp)
		if err == sql.ErrNoRows {
			return Entry{}, false, t.missTextKey(bucket, key)
		}
	}
	if err == sql.ErrNoRows {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, err
	}
	if e.Value == nil {
		e.Value = []byte{}
	}
	e.Bucket, e.Key, e.ExpiresAt, e.Size = bucket, key, exp.Int64, int64(len(e.Value))
	return e, true, nil
}

func nullable(ms int64) any {
	if ms == 0 {
		return nil
	}
	return ms
}

func (t *sqliteTx) Put(e Entry) error {
	v := e.Value
	if v == nil {
		v = []byte{} // NOT NULL: an empty value is a zero-length blob
	}
	if IsInternal(e.Bucket) {
		if err := checkInternalPut(e); err != nil {
			return err
		}
		_, err := t.exec("INSERT INTO internal (bucket, key, value) VALUES (?, ?, ?) ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value",
			e.Bucket, []byte(e.Key), v)
		return err
	}
	_, err := t.exec("INSERT INTO entries (bucket, key, value, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
		e.Bucket, []byte(e.Key), v, nullable(e.ExpiresAt))
	return err
}

func (t *sqliteTx) Delete(bucket, key string) (bool, error) {
	if IsInternal(bucket) {
		if err := validateInternal(bucket); err != nil {
			return false, err
		}
		n, err := t.exec("DELETE FROM internal WHERE bucket = ? AND key = ?", bucket, []byte(key))
		return n > 0, err
	}
	var exp sql.NullInt64
	err := t.queryRow("DELETE FROM entries WHERE bucket = ? AND key = ? RETURNING expires_at", bucket, []byte(key)).Scan(&exp)
	if err == sql.ErrNoRows {
		return false, t.missTextKey(bucket, key)
	}
	if err != nil {
		return false, err
	}
	return !exp.Valid || exp.Int64 > t.now, nil
}

// prefixEnd returns the smallest byte string greater than every string with
// the given prefix, or "" when there is none (a prefix of all 0xff bytes).
func prefixEnd(prefix string) string {
	b := []byte(prefix)
	for len(b) > 0 && b[len(b)-1] == 0xff {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return ""
	}
	b[len(b)-1]++
	return string(b)
}

// scanFrom starts a query over bucket's live entries, giving the columns
// scanEntries reads: internal buckets are read from their own table, where
// every entry is live.
func (t *sqliteTx) scanFrom(bucket string, withValues bool) (string, []any, error) {
	value := ""
	if withValues {
		value = ", value"
	}
	if IsInternal(bucket) {
		if err := validateInternal(bucket); err != nil {
			return "", nil, err
		}
		return "SELECT bucket, key, NULL, length(value)" + value + " FROM internal WHERE bucket = ?", []any{bucket}, nil
	}
	return "SELECT bucket, key, expires_at, length(value)" + value + " FROM entries WHERE bucket = ? AND " + liveCond, []any{bucket, t.now}, nil
}

func (t *sqliteTx) Scan(bucket, prefix string, withValues bool, fn func(Entry) error) error {
	q, args, err := t.scanFrom(bucket, withValues)
	if err != nil {
		return err
	}
	if prefix != "" {
		q += " AND key >= ?"
		args = append(args, []byte(prefix))
		if end := prefixEnd(prefix); end != "" {
			q += " AND key < ?"
			args = append(args, []byte(end))
		}
	}
	rows, err := t.s.conn.QueryContext(t.ctx, q+" ORDER BY key", args...)
	if err != nil {
		return err
	}
	if t.read {
		// A read transaction writes nothing: fn gets each row as it
		// comes, and a million-key keys or export holds no second copy
		// of the bucket (collecting it was a fifth of their time, and
		// the page faults and GC of 80 MB of entries).
		return t.scanEntries(rows, withValues, fn)
	}
	// Collect first: fn may write (e.g. delete what it sees), and a write
	// on the connection while a read cursor is open on it is an error.
	var entries []Entry
	if err := t.scanEntries(rows, withValues, func(e Entry) error {
		entries = append(entries, e)
		return nil
	}); err != nil {
		return err
	}
	for _, e := range entries {
		if err := fn(e); err == ErrStopScan {
			return nil
		} else if err != nil {
			return err
		}
	}
	return nil
}

// scanAfterPage is how many entries ScanAfter reads per query. It reads in
// pages rather than collecting everything first, as Scan does, because its
// callers (the outbox dispatcher) usually stop after a few.
const scanAfterPage = 256

// ScanAfter reads pages with "key > ?" on the primary key, so it costs
// the same wherever it resumes, and no cursor is open while fn runs.
func (t *sqliteTx) ScanAfter(bucket, after string, withValues bool, fn func(Entry) error) error {
	q, args, err := t.scanFrom(bucket, withValues)
	if err != nil {
		return err
	}
	st, err := t.stmt(q + " AND key > ? ORDER BY key LIMIT ?")
	if err != nil {
		return err
	}
	n := len(args)
	args = append(args, []byte(after), scanAfterPage)
	for {
		var page []Entry
		rows, err := st.QueryContext(t.ctx, args...)
		if err != nil {
			return err
		}
		if err := t.scanEntries(rows, withValues, func(e Entry) error {
			page = append(page, e)
			return nil
		}); err != nil {
			return err
		}
		for _, e := range page {
			if err := fn(e); err == ErrStopScan {
				return nil
			} else if err != nil {
				return err
			}
		}
		if len(page) < scanAfterPage {
			return nil
		}
		args[n] = []byte(page[len(page)-1].Key)
	}
}

// Deadlines reads the expiry index from a point: the index orders by
// expires_at and then rowid, so "after (At, ID)" is one range read
// whatever the store's size.
func (t *sqliteTx) Deadlines(after ttl.Due, limit int) ([]ttl.Due, error) {
	if limit <= 0 {
		return nil, nil
	}
	// Every rowid fits in int64, so a larger ID is past them all.
	id := int64(min(after.ID, math.MaxInt64))
	st, err := t.stmt(sqliteDeadlines)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(t.ctx, after.At, id, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]ttl.Due, 0, min(limit, 1024))
	for rows.Next() {
		var d ttl.Due
		var rowid int64
		if err := rows.Scan(&d.At, &rowid); err != nil {
			return nil, err
		}
		d.ID = uint64(rowid)
		out = append(out, d)
	}
	return out, rows.Err()
}

// sqliteDeadlines is the query behind Deadlines. "expires_at >= ?1" bounds
// the index range; the OR only filters within its first millisecond.
const sqliteDeadlines = `SELECT expires_at, rowid FROM entries
	WHERE expires_at IS NOT NULL AND expires_at >= ?1 AND (expires_at > ?1 OR rowid > ?2)
	ORDER BY expires_at, rowid LIMIT ?3`

func (t *sqliteTx) Count(bucket string) (n int64, err error) {
	if err := checkUserBucket(bucket); err != nil {
		return 0, err
	}
	err = t.s.conn.QueryRowContext(t.ctx, "SELECT count(*) FROM entries WHERE bucket = ? AND "+liveCond, bucket, t.now).Scan(&n)
	return n, err
}

// CountUpTo reads at most limit index entries, so a key limit costs the
// same on a store of a million keys as on a small one.
func (t *sqliteTx) CountUpTo(bucket string, limit int64) (n int64, err error) {
	if bucket == "" {
		err = t.queryRow("SELECT count(*) FROM (SELECT 1 FROM entries WHERE "+liveCond+" LIMIT ?)", t.now, limit).Scan(&n)
	} else {
		err = t.queryRow("SELECT count(*) FROM (SELECT 1 FROM entries WHERE bucket = ? AND "+liveCond+" LIMIT ?)", bucket, t.now, limit).Scan(&n)
	}
	return n, err
}

func (t *sqliteTx) CountAll() (n int64, err error) {
	err = t.s.conn.QueryRowContext(t.ctx, "SELECT count(*) FROM entries WHERE "+liveCond, t.now).Scan(&n)
	return n, err
}

func (t *sqliteTx) Soonest(bucket string) (Entry, bool, error) {
	if err := checkUserBucket(bucket); err != nil {
		return Entry{}, false, err
	}
	rows, err := t.s.conn.QueryContext(t.ctx, "SELECT bucket, key, expires_at, length(value), value FROM entries WHERE bucket = ? AND expires_at > ? ORDER BY expires_at, key LIMIT 1", bucket, t.now)
	if err != nil {
		return Entry{}, false, err
	}
	var e Entry
	found := false
	err = t.scanEntries(rows, true, func(x Entry) error { e, found = x, true; return nil })
	return e, found, err
}

func (t *sqliteTx) Buckets() ([]BucketInfo, error) {
	rows, err := t.s.conn.QueryContext(t.ctx, `
		SELECT name, sum(n) FROM (
			SELECT bucket AS name, count(*) AS n FROM entries WHERE `+liveCond+` GROUP BY bucket
			UNION ALL SELECT bucket, 0 FROM policies
		) GROUP BY name HAVING sum(n) > 0 OR name IN (SELECT bucket FROM policies) ORDER BY name`, t.now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []BucketInfo
	for rows.Next() {
		var b BucketInfo
		if err := rows.Scan(&b.Name, &b.Keys); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

func (t *sqliteTx) Policy(bucket string) (Policy, error) {
	if err := checkUserBucket(bucket); err != nil {
		return Policy{}, err
	}
	var p Policy
	var onFull string
	err := t.queryRow("SELECT max_keys, default_ttl_ms, on_full FROM policies WHERE bucket = ?", bucket).Scan(&p.MaxKeys, &p.DefaultTTL, &onFull)
	if err == sql.ErrNoRows {
		return Policy{}, nil
	}
	if err != nil {
		return Policy{}, err
	}
	p.OnFull = OnFull(onFull)
	if err := p.checkStored(bucket); err != nil {
		return Policy{}, fmt.Errorf("%s: %w", t.s.path, err)
	}
	return p, nil
}

func (t *sqliteTx) SetPolicy(bucket string, p Policy) error {
	if err := checkUserBucket(bucket); err != nil {
		return err
	}
	if p.IsZero() {
		_, err := t.exec("DELETE FROM policies WHERE bucket = ?", bucket)
		return err
	}
	if p.OnFull == "" {
		p.OnFull = Reject
	}
	_, err := t.exec("INSERT OR REPLACE INTO policies (bucket, max_keys, default_ttl_ms, on_full) VALUES (?, ?, ?, ?)",
		bucket, p.MaxKeys, p.DefaultTTL, string(p.OnFull))
	return err
}

func (t *sqliteTx) DropBucket(bucket string) (bool, error) {
	if err := checkUserBucket(bucket); err != nil {
		return false, err
	}
	live, err := t.Count(bucket)
	if err != nil {
		return false, err
	}
	if _, err := t.exec("DELETE FROM entries WHERE bucket = ?", bucket); err != nil {
		return false, err
	}
	had, err := t.exec("DELETE FROM policies WHERE bucket = ?", bucket)
	return live > 0 || had > 0, err
}

func (t *sqliteTx) HasExpired() (bool, error) {
	var one int
	err := t.s.conn.QueryRowContext(t.ctx, "SELECT 1 FROM entries WHERE expires_at <= ? LIMIT 1", t.now).Scan(&one)
	if err == sql.ErrNoRows {
		return false, nil
	}
	return err == nil, err
}

func (t *sqliteTx) Reap(limit int, fn func(Entry) error) (int, error) {
	if fn == nil && limit <= 0 {
		n, err := t.exec("DELETE FROM entries WHERE expires_at <= ?", t.now)
		return int(n), err
	}
	if fn == nil {
		n, err := t.exec("DELETE FROM entries WHERE rowid IN (SELECT rowid FROM entries WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)", t.now, limit)
		return int(n), err
	}
	q := "SELECT bucket, key, expires_at, length(value), value FROM entries WHERE expires_at <= ? ORDER BY expires_at"
	args := []any{t.now}
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := t.s.conn.QueryContext(t.ctx, q, args...)
	if err != nil {
		return 0, err
	}
	var due []Entry
	if err := t.scanEntries(rows, true, func(e Entry) error { due = append(due, e); return nil }); err != nil {
		return 0, err
	}
	for _, e := range due {
		if err := fn(e); err != nil {
			return 0, err
		}
		if _, err := t.exec("DELETE FROM entries WHERE bucket = ? AND key = ?", e.Bucket, []byte(e.Key)); err != nil {
			return 0, err
		}
	}
	return len(due), nil
}

func (t *sqliteTx) Stats() (Stats, error) {
	var s Stats
	var next sql.NullInt64
	err := t.s.conn.QueryRowContext(t.ctx, "SELECT count(*), count(DISTINCT bucket), count(expires_at), min(expires_at) FROM entries WHERE "+liveCond, t.now).
		Scan(&s.Keys, &s.Buckets, &s.KeysWithTTL, &next)
	s.NextExpiry = next.Int64
	return s, err
}

// loadBatch is how many rows one INSERT carries in LoadMany: enough to
// amortise statement overhead, well under SQLite's 32,766 parameters.
const loadBatch = 256

// LoadMany inserts entries with multi-row INSERTs. Loading into an empty
// store, it builds the expiry index once at the end rather than row by row,
// which is about three times faster for a million rows.
func (t *sqliteTx) LoadMany(entries []Entry, mode ImportMode) (int, error) {
	// Expired rows must not count as existing keys.
	if _, err := t.exec("DELETE FROM entries WHERE expires_at <= ?", t.now); err != nil {
		return 0, err
	}
	if _, err := t.exec("PRAGMA cache_size = -262144"); err != nil { // 256 MiB for this process
		return 0, err
	}
	var empty bool
	if err := t.queryRow("SELECT NOT EXISTS (SELECT 1 FROM entries)").Scan(&empty); err != nil {
		return 0, err
	}
	if empty && len(entries) >= 10000 {
		if _, err := t.exec("DROP INDEX entries_expiry"); err != nil {
			return 0, err
		}
	}
	conflict := ""
	switch mode {
	case SkipExisting:
		conflict = " ON CONFLICT (bucket, key) DO NOTHING"
	case ReplaceExisting:
		conflict = " ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
	}
	n := 0
	args := make([]any, 0, 4*loadBatch)
	for start := 0; start < len(entries); start += loadBatch {
		batch := entries[start:min(start+loadBatch, len(entries))]
		args = args[:0]
		for _, e := range batch {
			v := e.Value
			if v == nil {
				v = []byte{}
			}
			args = append(args, e.Bucket, []byte(e.Key), v, nullable(e.ExpiresAt))
		}
		q := "INSERT INTO entries (bucket, key, value, expires_at) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?), ", len(batch)), ", ") + conflict
		added, err := t.exec(q, args...)
		var se *sqlite.Error
		if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT {
			return 0, t.conflict(entries[:start], batch)
		}
		if err != nil {
			return 0, err
		}
		n += int(added)
	}
	if empty && len(entries) >= 10000 {
		if _, err := t.exec("CREATE INDEX entries_expiry ON entries (expires_at) WHERE expires_at IS NOT NULL"); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// conflict names the key that stopped a FailOnExisting load in batch. Only
// that batch was rolled back by its failed statement, so a key of it that
// exists now either existed before the load or came earlier in it. It runs
// only on that error path; the transaction is rolled back after it.
func (t *sqliteTx) conflict(earlier, batch []Entry) error {
	for i, e := range batch {
		same := func(x Entry) bool { return x.Bucket == e.Bucket && x.Key == e.Key }
		if slices.ContainsFunc(batch[:i], same) {
			return existsErrIn(batch[:i], e)
		}
		if _, ok, err := t.Get(e.Bucket, e.Key); err != nil {
			return err
		} else if ok {
			return existsErrIn(earlier, e)
		}
	}
	return fmt.Errorf("%w: a key of the import already exists", ErrKeyExists)
}

// EraseFreed turns SQLite's secure_delete on for this connection (see
// Eraser). It stays on for the rest of the connection's life: a process
// that has encrypted a bucket pays for zeroing what it frees from then on,
// others do not.
func (t *sqliteTx) EraseFreed() error {
	_, err := t.s.conn.ExecContext(t.ctx, "PRAGMA secure_delete = ON")
	return err
}

var _ Eraser = (*sqliteTx)(nil)

// Compact rewrites the database file from its live content (VACUUM; see
// Compacter), queued behind the store's other writers as a write is. It
// may renumber rowids: a daemon's schedule (which orders deadlines by
// rowid) reads its index again within a second, and every reap checks
// deadlines themselves.
func (s *sqliteStore) Compact(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok, err := s.ensure(false); err != nil || !ok {
		return err // no store: nothing to rewrite
	}
	release, err := s.writeGate(ctx)
	if err != nil {
		return err
	}
	defer release()
	_, err = s.conn.ExecContext(ctx, "VACUUM")
	return s.wrap(err)
}
